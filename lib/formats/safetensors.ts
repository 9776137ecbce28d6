// safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the
// raw tensors. Read by offset; every header entry is checked against the file before use.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFormatError } from '../errors.js';
import { BinaryFile, spanSource, STORAGE_BYTES, type StorageType, type TensorSpan, type WeightSource } from './file.js';

const MAX_HEADER = 100 << 20;

function parseHeader(file: BinaryFile, into: Map<string, TensorSpan>): void {
  if (file.size < 8) throw new ModelFormatError(file.path, `${file.size} bytes is too short for a safetensors header`);
  const n = Number(file.bytes(0, 8, 'the header length').readBigUInt64LE(0));
  if (n > MAX_HEADER || n > file.size - 8)
    throw new ModelFormatError(file.path, `header length ${n} is larger than the file (${file.size} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(file.bytes(8, n, 'the header').toString('utf8'));
  } catch (e) {
    throw new ModelFormatError(file.path, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new ModelFormatError(file.path, 'the header is not a JSON object');
  const dataStart = 8 + n;
  const dataBytes = file.size - dataStart;
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bad = (why: string) => new ModelFormatError(file.path, `tensor "${name}": ${why}`);
    if (typeof e !== 'object' || e === null) throw bad('the header entry is not an object');
    if (typeof e.dtype !== 'string') throw bad(`dtype ${JSON.stringify(e.dtype)} is not a string`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw bad(`shape ${JSON.stringify(e.shape)} is not a list of sizes`);
    const off = e.data_offsets as number[];
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      off[0]! > off[1]!
    )
      throw bad(`data_offsets ${JSON.stringify(off)} are not [start, end]`);
    if (off[1]! > dataBytes)
      throw bad(`data_offsets [${off[0]}, ${off[1]}] run past the end of the data (${dataBytes} bytes): truncated?`);
    const size = STORAGE_BYTES[e.dtype as StorageType];
    const numel = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (size !== undefined && off[1]! - off[0]! !== numel * size)
      throw bad(`${off[1]! - off[0]!} bytes do not hold shape [${(e.shape as number[]).join(', ')}] of ${e.dtype}`);
    if (into.has(name)) throw bad('appears in two files');
    into.set(name, { file, offset: dataStart + off[0]!, shape: e.shape as number[], type: e.dtype });
  }
}

/** Tensors of one or more safetensors files (a sharded checkpoint), by name. */
export function openSafetensors(paths: string[], label: string): WeightSource {
  const files: BinaryFile[] = [];
  const entries = new Map<string, TensorSpan>();
  try {
    for (const p of paths) {
      const f = new BinaryFile(p);
      files.push(f);
      parseHeader(f, entries);
    }
  } catch (e) {
    files.forEach((f) => f.close());
    throw e;
  }
  return spanSource(label, entries, () => files.forEach((f) => f.close()));
}

/** The safetensors files of a Hugging Face directory: model.safetensors, or the shards its index names. */
export function safetensorsFiles(dir: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  let text: string;
  try {
    text = readFileSync(index, 'utf8');
  } catch {
    return [join(dir, 'model.safetensors')];
  }
  let map: unknown;
  try {
    map = (JSON.parse(text) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new ModelFormatError(index, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof map !== 'object' || map === null) throw new ModelFormatError(index, 'has no "weight_map" object');
  const shards = new Set<string>();
  for (const v of Object.values(map)) {
    if (typeof v !== 'string' || v.includes('/') || v.includes('\\'))
      throw new ModelFormatError(index, `weight_map entry ${JSON.stringify(v)} is not a file name`);
    shards.add(v);
  }
  return [...shards].sort().map((s) => join(dir, s));
}

export interface SafetensorsEntry {
  name: string;
  shape: number[];
  data: Float32Array;
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** Writes tensors as one safetensors file (float32, or bf16 by truncation-free rounding, or f16). */
export function writeSafetensors(path: string, tensors: SafetensorsEntry[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const blobs: Buffer[] = [];
  let off = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const blob = encodeFloats(t.data, dtype);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + blob.length] };
    blobs.push(blob);
    off += blob.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...blobs]));
}

/** float32 values as little-endian F32, F16 or BF16 bytes (round to nearest even). */
export function encodeFloats(data: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Buffer {
  if (dtype === 'F32') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.length * 2);
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  for (let i = 0; i < data.length; ++i) {
    const b = bits[i]!;
    out.writeUInt16LE(
      dtype === 'BF16' ? ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff : floatToHalf(data[i]!),
      2 * i,
    );
  }
  return out;
}

function floatToHalf(f: number): number {
  const sign = f < 0 || Object.is(f, -0) ? 0x8000 : 0;
  const a = Math.abs(f);
  if (Number.isNaN(f)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -24 / 2) return sign;
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24);
  let e = Math.floor(Math.log2(a));
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e += 1;
  }
  return sign | ((e + 15) << 10) | m;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return x % 1 === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
