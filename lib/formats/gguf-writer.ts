// Writes GGUF v3 files: metadata, tensor infos, then each tensor's data at an aligned offset, streamed one tensor at a
// time (a 7B model is never whole in memory). What `mini-vllm quantize` writes and the tests build files with.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { GgufValue } from './gguf.js';

/** GGUF value types. */
export const GGUF = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

export interface GgufMetaEntry {
  key: string;
  type: number;
  /** For arrays. */
  itemType?: number;
  value: GgufValue;
}

export interface GgufTensorOut {
  /** GGUF's name (`blk.0.attn_q.weight`). */
  name: string;
  /** Row-major, outermost first (written reversed, as ggml's ne[]). */
  shape: readonly number[];
  /** ggml's type id. */
  typeId: number;
  bytes: number;
  /** The tensor's data, in pieces (called once, when its turn comes). */
  data: () => Iterable<Uint8Array>;
}

export const GGUF_ALIGNMENT = 32;

function encodeValue(type: number, v: GgufValue, itemType: number | undefined, out: Buffer[]): void {
  const fixed = (n: number, write: (b: Buffer) => void) => {
    const b = Buffer.alloc(n);
    write(b);
    out.push(b);
  };
  switch (type) {
    case GGUF.U8:
      return fixed(1, (b) => b.writeUInt8(Number(v)));
    case GGUF.I8:
      return fixed(1, (b) => b.writeInt8(Number(v)));
    case GGUF.U16:
      return fixed(2, (b) => b.writeUInt16LE(Number(v)));
    case GGUF.I16:
      return fixed(2, (b) => b.writeInt16LE(Number(v)));
    case GGUF.U32:
      return fixed(4, (b) => b.writeUInt32LE(Number(v)));
    case GGUF.I32:
      return fixed(4, (b) => b.writeInt32LE(Number(v)));
    case GGUF.F32:
      return fixed(4, (b) => b.writeFloatLE(Number(v)));
    case GGUF.BOOL:
      return fixed(1, (b) => b.writeUInt8(v ? 1 : 0));
    case GGUF.STRING: {
      const s = Buffer.from(String(v), 'utf8');
      fixed(8, (b) => b.writeBigUInt64LE(BigInt(s.length)));
      out.push(s);
      return;
    }
    case GGUF.ARRAY: {
      const items = v as GgufValue[];
      fixed(12, (b) => {
        b.writeUInt32LE(itemType!, 0);
        b.writeBigUInt64LE(BigInt(items.length), 4);
      });
      for (const item of items) encodeValue(itemType!, item, undefined, out);
      return;
    }
    case 10:
      return fixed(8, (b) => b.writeBigUInt64LE(BigInt(v as number | bigint)));
    case 11:
      return fixed(8, (b) => b.writeBigInt64LE(BigInt(v as number | bigint)));
    case 12:
      return fixed(8, (b) => b.writeDoubleLE(Number(v)));
    default:
      throw new RangeError(`GGUF writer: unknown value type ${type}`);
  }
}

/** Writes a GGUF v3 file at `path`. */
export function writeGguf(path: string, metadata: readonly GgufMetaEntry[], tensors: readonly GgufTensorOut[]): void {
  const head: Buffer[] = [];
  const u32 = (n: number) => encodeValue(GGUF.U32, n, undefined, head);
  const u64 = (n: number) => encodeValue(10, n, undefined, head);
  head.push(Buffer.from('GGUF', 'latin1'));
  u32(3);
  u64(tensors.length);
  u64(metadata.length);
  for (const m of metadata) {
    encodeValue(GGUF.STRING, m.key, undefined, head);
    u32(m.type);
    encodeValue(m.type, m.value, m.itemType, head);
  }
  const align = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  let offset = 0;
  for (const t of tensors) {
    encodeValue(GGUF.STRING, t.name, undefined, head);
    u32(t.shape.length);
    for (const d of [...t.shape].reverse()) u64(d);
    u32(t.typeId);
    u64(offset);
    offset += align(t.bytes);
  }
  const header = Buffer.concat(head);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    writeSync(fd, Buffer.alloc(align(header.length) - header.length));
    for (const t of tensors) {
      let n = 0;
      for (const piece of t.data()) {
        writeSync(fd, piece);
        n += piece.byteLength;
      }
      if (n !== t.bytes) throw new Error(`GGUF writer: tensor "${t.name}" gave ${n} bytes, declared ${t.bytes}`);
      writeSync(fd, Buffer.alloc(align(t.bytes) - t.bytes));
    }
  } finally {
    closeSync(fd);
  }
}
