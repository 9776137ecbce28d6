// GGUF (versions 2 and 3): the header, metadata (the embedded vocabulary among it) and tensor infos, with F32 / F16 /
// BF16 tensors and the quantised block types Q8_0, Q4_0/1, Q5_0/1, Q4_K, Q5_K, Q6_K (kept quantised: lib/quant).
// Every count, length and offset is checked against the file size before anything is allocated. What a `llama` file
// means as a model (its config, its tensor names) is lib/model/gguf-model.ts.
import { MiniVllmError, ModelFormatError } from '../errors.js';
import { QUANT_FORMATS, type QuantType, quantRowBytes, quantTypeOfId } from '../quant/formats.js';
import { BinaryFile, parseFile, STORAGE_BYTES, type StorageType } from './file.js';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensorInfo {
  name: string;
  shape: number[];
  type: StorageType | QuantType;
  offset: number;
  /** Bytes of its data. */
  bytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  /** Byte offset where the tensor infos begin (the metadata ends). */
  tensorInfoStart: number;
  metadata: Map<string, GgufValue>;
  /** Each metadata key's GGUF value type (and, for an array, its item type): what a writer re-emits. */
  metadataTypes: Map<string, { type: number; itemType?: number }>;
  tensors: Map<string, GgufTensorInfo>;
  file: BinaryFile;
}

const GGML_TYPES: Record<number, StorageType> = { 0: 'F32', 1: 'F16', 30: 'BF16' };
// ggml's other types, named in the error that refuses them.
const GGML_TYPE_NAMES: Record<number, string> = {
  10: 'Q2_K',
  11: 'Q3_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
};

/** A forward-only cursor over the header, reading the file in pieces. */
class Cursor {
  pos = 0;
  constructor(private readonly f: BinaryFile) {}

  private take(n: number, what: string): Buffer {
    const b = this.f.bytes(this.pos, n, what);
    this.pos += n;
    return b;
  }
  u32(what: string): number {
    return this.take(4, what).readUInt32LE(0);
  }
  u64(what: string): number {
    const v = this.take(8, what).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFormatError(this.f.path, `${what} = ${v} is too large`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.u64(`the length of ${what}`);
    if (this.pos + n > this.f.size)
      throw new ModelFormatError(this.f.path, `${what} (${n} bytes) runs past the end of the file`);
    return this.take(n, what).toString('utf8');
  }
  value(type: number, what: string, depth = 0): GgufValue {
    if (type === 8) return this.string(what);
    if (type === 7) {
      const b = this.take(1, what).readUInt8(0);
      if (b > 1) throw new ModelFormatError(this.f.path, `${what}: bool byte ${b}`);
      return b === 1;
    }
    if (type === 9) return this.array(what, depth);
    const s = SCALARS[type];
    if (s === undefined) throw new ModelFormatError(this.f.path, `${what}: unknown value type ${type}`);
    return s.read(this.take(s.size, what), 0);
  }
  private array(what: string, depth: number): GgufValue[] {
    if (depth > 2) throw new ModelFormatError(this.f.path, `${what}: arrays nested too deep`);
    const itemType = this.u32(`${what} item type`);
    const n = this.u64(`${what} length`);
    // Every item takes at least one byte: a count past the rest of the file is corrupt.
    if (n > this.f.size - this.pos)
      throw new ModelFormatError(this.f.path, `${what}: array of ${n} items runs past the end of the file`);
    if (itemType === 8 || itemType === 9)
      return Array.from({ length: n }, (_, i) => this.value(itemType, `${what}[${i}]`, depth + 1));
    const s = SCALARS[itemType];
    if (s === undefined) throw new ModelFormatError(this.f.path, `${what}: unknown array item type ${itemType}`);
    if (n * s.size > this.f.size - this.pos)
      throw new ModelFormatError(this.f.path, `${what}: array of ${n} items runs past the end of the file`);
    const raw = this.take(n * s.size, what);
    const out = new Array<GgufValue>(n);
    for (let i = 0; i < n; ++i) out[i] = s.read(raw, i * s.size);
    return out;
  }
}

/** GGUF's fixed-size value types (a bool read inside an array is any nonzero byte). */
const SCALARS: Record<number, { size: number; read: (b: Buffer, o: number) => GgufValue }> = {
  0: { size: 1, read: (b, o) => b.readUInt8(o) },
  1: { size: 1, read: (b, o) => b.readInt8(o) },
  2: { size: 2, read: (b, o) => b.readUInt16LE(o) },
  3: { size: 2, read: (b, o) => b.readInt16LE(o) },
  4: { size: 4, read: (b, o) => b.readUInt32LE(o) },
  5: { size: 4, read: (b, o) => b.readInt32LE(o) },
  6: { size: 4, read: (b, o) => b.readFloatLE(o) },
  7: { size: 1, read: (b, o) => b.readUInt8(o) !== 0 },
  10: { size: 8, read: (b, o) => b.readBigUInt64LE(o) },
  11: { size: 8, read: (b, o) => b.readBigInt64LE(o) },
  12: { size: 8, read: (b, o) => b.readDoubleLE(o) },
};

export function openGguf(path: string): GgufFile {
  return parseFile(path, parse);
}

function parse(file: BinaryFile): GgufFile {
  const c = new Cursor(file);
  if (file.size < 24) throw new ModelFormatError(file.path, `${file.size} bytes is too short for a GGUF header`);
  const magic = file.bytes(0, 4, 'the magic').toString('latin1');
  if (magic !== 'GGUF') throw new ModelFormatError(file.path, `not a GGUF file (magic ${JSON.stringify(magic)})`);
  c.pos = 4;
  const version = c.u32('the version');
  if (version !== 2 && version !== 3)
    throw new ModelFormatError(file.path, `GGUF version ${version} is not supported (2 or 3)`);
  const nTensors = c.u64('the tensor count');
  const nKv = c.u64('the metadata count');
  if (nTensors > file.size / 24 || nKv > file.size / 12)
    throw new ModelFormatError(file.path, `tensor count ${nTensors} / metadata count ${nKv} cannot fit in the file`);
  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, { type: number; itemType?: number }>();
  for (let i = 0; i < nKv; ++i) {
    const key = c.string(`metadata key ${i}`);
    const type = c.u32(`the type of "${key}"`);
    const itemType = type === 9 ? file.bytes(c.pos, 4, `"${key}" item type`).readUInt32LE(0) : undefined;
    metadata.set(key, c.value(type, `"${key}"`));
    metadataTypes.set(key, itemType === undefined ? { type } : { type, itemType });
  }
  const align = metadata.get('general.alignment') ?? 32;
  if (typeof align !== 'number' || align <= 0 || (align & (align - 1)) !== 0)
    throw new ModelFormatError(file.path, `general.alignment ${String(align)} is not a power of two`);
  const tensorInfoStart = c.pos;
  const infos: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; ++i) {
    const name = c.string(`tensor name ${i}`);
    const nDims = c.u32(`the rank of tensor "${name}"`);
    if (nDims < 1 || nDims > 4) throw new ModelFormatError(file.path, `tensor "${name}" has rank ${nDims}`);
    const ne = Array.from({ length: nDims }, (_, d) => c.u64(`dim ${d} of tensor "${name}"`));
    const typeId = c.u32(`the type of tensor "${name}"`);
    const offset = c.u64(`the offset of tensor "${name}"`);
    const type = GGML_TYPES[typeId] ?? quantTypeOfId(typeId);
    if (type === undefined) {
      const known = GGML_TYPE_NAMES[typeId];
      throw new MiniVllmError(
        `${file.path}: tensor "${name}" has ${known ? `type ${known}` : `unknown type ${typeId}`}; supported are ` +
          `F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K`,
        'ERR_UNSUPPORTED',
      );
    }
    const count = ne.reduce((a, b) => a * b, 1);
    let bytes: number;
    if (type in QUANT_FORMATS) {
      const f = QUANT_FORMATS[type as QuantType];
      if (ne[0]! % f.block !== 0)
        throw new ModelFormatError(
          file.path,
          `tensor "${name}": rows of ${ne[0]} values are not a multiple of ${type}'s block of ${f.block}`,
        );
      bytes = (count / ne[0]!) * quantRowBytes(type as QuantType, ne[0]!);
    } else {
      bytes = count * STORAGE_BYTES[type as StorageType];
    }
    infos.push({ name, shape: [...ne].reverse(), type, offset, bytes });
  }
  const dataStart = Math.ceil(c.pos / align) * align;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of infos) {
    if (t.offset % align !== 0)
      throw new ModelFormatError(file.path, `tensor "${t.name}" offset ${t.offset} is not aligned to ${align}`);
    const start = dataStart + t.offset;
    if (!Number.isSafeInteger(t.bytes) || start + t.bytes > file.size)
      throw new ModelFormatError(
        file.path,
        `tensor "${t.name}" (${t.bytes} bytes at ${start}) lies past the end of the file (${file.size} bytes)`,
      );
    if (tensors.has(t.name)) throw new ModelFormatError(file.path, `tensor "${t.name}" appears twice`);

    tensors.set(t.name, { name: t.name, shape: t.shape, type: t.type, offset: start, bytes: t.bytes });
  }
  // A tensor whose type or shape claims more bytes than its slot holds runs into the next one.
  const spans = [...tensors.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < spans.length; ++i) {
    const prev = spans[i - 1]!;
    if (prev.offset + prev.bytes > spans[i]!.offset)
      throw new ModelFormatError(
        file.path,
        `tensor "${prev.name}" (${prev.type} [${prev.shape.join(', ')}], ${prev.bytes} bytes) runs into tensor ` +
          `"${spans[i]!.name}": its byte size does not match its type and shape`,
      );
  }
  return { path: file.path, version, tensorInfoStart, metadata, metadataTypes, tensors, file };
}
