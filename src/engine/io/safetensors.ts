/**
 * The safetensors format (huggingface/safetensors), platform-free (bytes in, bytes out):
 *
 *   [u64 little-endian N][N bytes of JSON header, space-padded][data section]
 *   header: { "__metadata__": { string: string }?, name: { dtype, shape, data_offsets: [begin, end] } }
 *   offsets are relative to the data section; tensors are row-major, little-endian, and their
 *   byte ranges tile the data section with no gap or overlap.
 *
 * Read: F32, F64, I32, U32, I64, U8, F16, BF16 (half types can be decoded to f32). Write: F32,
 * I32, U32, U8. Every structural problem (truncated file, header beyond the end, bad JSON, a
 * size that does not match the shape, overlapping ranges) is a SafetensorsError saying what and
 * where.
 *
 * Checksums: every file written here carries the CRC-32 of each tensor's bytes in
 * `__metadata__["goe.crc32"]` (a JSON object, tensor name -> 8 hex digits, and "__metadata__" ->
 * the CRC-32 of the other metadata as JSON with sorted keys); reading verifies them before
 * returning anything, and a mismatch is a ChecksumError naming the file and the tensor (a flipped
 * bit is never loaded silently). The value is written twice (also under "goe.crc32-copy"), so a
 * flipped bit in a key's name cannot turn verification off. Files without the key (PyTorch's, ours from before checksums) load unverified
 * (`verified: false`). The key is taken out of the returned metadata. PyTorch ignores it.
 */

export type SafeDType = 'F32' | 'F64' | 'I32' | 'U32' | 'I64' | 'U8' | 'F16' | 'BF16';

export type SafeData = Float32Array | Float64Array | Int32Array | Uint32Array | BigInt64Array | Uint8Array | Uint16Array;

/** One tensor: F16/BF16 data are raw Uint16 bit patterns unless decoded (`decodeHalf`). */
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: SafeData;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  /** The caller's metadata (without the checksum key). */
  metadata: Record<string, string>;
  /** True when the file carried checksums and every tensor matched them. */
  verified?: boolean;
}

export class SafetensorsError extends Error {
  /** The file that did not read back (set when a reader was given its name): a bad input, not a bug. */
  file: string | undefined;

  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** A tensor's bytes do not match the CRC-32 written with them: the file is corrupt. */
export class ChecksumError extends SafetensorsError {
  constructor(message: string) {
    super(message);
    this.name = 'ChecksumError';
  }
}

/** The metadata key holding the tensors' CRC-32s. */
export const CHECKSUM_KEY = 'goe.crc32';
/** The same value again: a flipped bit in one key's name leaves the other, so verification is never skipped silently. */
const CHECKSUM_COPY_KEY = 'goe.crc32-copy';

let crcTables: Uint32Array[] | null = null;

/**
 * CRC-32 (IEEE 802.3, zlib's crc32) of `bytes`, continuing from `crc`. Slicing-by-8 (eight
 * 256-entry tables, 8 bytes per round): about 4x the one-table loop in V8.
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (crcTables === null) {
    const t0 = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t0[i] = c >>> 0;
    }
    crcTables = [t0];
    for (let j = 1; j < 8; j++) {
      const prev = crcTables[j - 1]!;
      const t = new Uint32Array(256);
      for (let i = 0; i < 256; i++) t[i] = (prev[i]! >>> 8) ^ t0[prev[i]! & 0xff]!;
      crcTables.push(t);
    }
  }
  const [t0, t1, t2, t3, t4, t5, t6, t7] = crcTables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = ~crc >>> 0;
  let i = 0;
  const n8 = bytes.length - (bytes.length % 8);
  for (; i < n8; i += 8) {
    const a = (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    c = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
      t3[bytes[i + 4]!]! ^ t2[bytes[i + 5]!]! ^ t1[bytes[i + 6]!]! ^ t0[bytes[i + 7]!]!;
  }
  for (; i < bytes.length; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** The CRC-32 of the metadata (without the checksum key) as JSON with sorted keys. */
function metadataCrc(metadata: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(metadata).filter((k) => k !== CHECKSUM_KEY && k !== CHECKSUM_COPY_KEY).sort().map((k) => [k, metadata[k]]);
  return hex8(crc32(new TextEncoder().encode(JSON.stringify(sorted))));
}

const BYTES: Record<SafeDType, number> = { F32: 4, F64: 8, I32: 4, U32: 4, I64: 8, U8: 1, F16: 2, BF16: 2 };
const WRITABLE = new Set<SafeDType>(['F32', 'I32', 'U32', 'U8']);
/** The reference implementation refuses headers above 100 MB. */
const MAX_HEADER = 100_000_000;

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

function asBytes(buf: ArrayBuffer | Uint8Array): Uint8Array {
  return buf instanceof Uint8Array ? buf : new Uint8Array(buf);
}

/** Parses a whole safetensors file. The returned arrays are copies (aligned, independent). */
export function parseSafetensors(buf: ArrayBuffer | Uint8Array, opts: { decodeHalf?: boolean; source?: string } = {}): SafetensorsFile {
  try {
    return parse(buf, opts);
  } catch (e) {
    if (e instanceof SafetensorsError) e.file ??= opts.source;
    throw e;
  }
}

function parse(buf: ArrayBuffer | Uint8Array, opts: { decodeHalf?: boolean; source?: string }): SafetensorsFile {
  const bytes = asBytes(buf);
  const where = opts.source ? `${opts.source}: ` : '';
  if (bytes.length < 8) throw new SafetensorsError(`${where}file is ${bytes.length} bytes, shorter than the 8-byte header length (truncated or not a safetensors file)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) throw new SafetensorsError(`${where}header length ${n64} is implausible (over ${MAX_HEADER} bytes): not a safetensors file?`);
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw new SafetensorsError(`${where}header of ${n} bytes runs past the end of the ${bytes.length}-byte file (truncated file?)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`${where}header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError(`${where}header is not a JSON object`);
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: [string, SafeDType, number[], number, number][] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SafetensorsError(`${where}__metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(`${where}__metadata__.${k} must be a string, got ${typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!info || typeof info !== 'object') throw new SafetensorsError(`${where}tensor "${name}": entry is not an object`);
    const dtype = info.dtype as SafeDType;
    if (typeof dtype !== 'string' || !Object.hasOwn(BYTES, dtype)) throw new SafetensorsError(`${where}tensor "${name}": unsupported dtype ${brief(info.dtype)} (supported: ${Object.keys(BYTES).join(', ')})`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(`${where}tensor "${name}": shape ${brief(shape)} is not a list of non-negative integers`);
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      throw new SafetensorsError(`${where}tensor "${name}": data_offsets ${brief(off)} must be [begin, end] with 0 <= begin <= end`);
    }
    const [b, e] = off as number[];
    const need = numelOf(shape as number[]) * BYTES[dtype];
    if (e - b !== need) throw new SafetensorsError(`${where}tensor "${name}": ${dtype}[${(shape as number[]).join(', ')}] needs ${need} bytes, data_offsets [${b}, ${e}] give ${e - b}`);
    if (e > dataLen) throw new SafetensorsError(`${where}tensor "${name}": data_offsets [${b}, ${e}] run past the ${dataLen}-byte data section (truncated file?)`);
    entries.push([name, dtype, shape as number[], b, e]);
  }
  // The byte ranges must tile the data section exactly (as the reference implementation checks).
  const sorted = [...entries].sort((x, y) => x[3] - y[3] || x[4] - y[4]);
  let cursor = 0;
  for (const [name, , , b, e] of sorted) {
    if (b !== cursor) throw new SafetensorsError(`${where}tensor "${name}" starts at byte ${b} of the data section, expected ${cursor} (${b < cursor ? 'overlapping' : 'gap between'} tensors)`);
    cursor = e;
  }
  if (cursor !== dataLen) throw new SafetensorsError(`${where}data section is ${dataLen} bytes but the tensors cover ${cursor} (trailing bytes or a corrupt header)`);
  let sums: Record<string, unknown> | null = null;
  if (Object.hasOwn(metadata, CHECKSUM_KEY) || Object.hasOwn(metadata, CHECKSUM_COPY_KEY)) {
    if (metadata[CHECKSUM_KEY] !== metadata[CHECKSUM_COPY_KEY]) throw new ChecksumError(`${where}its two copies of the checksums (__metadata__["${CHECKSUM_KEY}"] and ["${CHECKSUM_COPY_KEY}"]) differ: the file is corrupt`);
    try {
      const v = JSON.parse(metadata[CHECKSUM_KEY]!) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) sums = v as Record<string, unknown>;
    } catch {
      // reported below
    }
    if (sums === null) throw new ChecksumError(`${where}its checksums (__metadata__["${CHECKSUM_KEY}"]) are unreadable: the file is corrupt`);
    delete metadata[CHECKSUM_KEY];
    delete metadata[CHECKSUM_COPY_KEY];
    if (Object.keys(sums).length !== entries.length + 1) throw new ChecksumError(`${where}${Object.keys(sums).length} checksums for ${entries.length} tensors and the metadata: the file is corrupt`);
    const got = metadataCrc(metadata);
    if (sums.__metadata__ !== got) throw new ChecksumError(`${where}its metadata fails its CRC-32 check (stored ${brief(sums.__metadata__)}, computed ${got}): the file is corrupt`);
  }
  const tensors = new Map<string, SafeTensor>();
  for (const [name, dtype, shape, b, e] of entries) {
    if (sums !== null) {
      const want = Object.hasOwn(sums, name) ? sums[name] : undefined;
      const got = hex8(crc32(bytes.subarray(dataStart + b, dataStart + e)));
      if (want !== got) throw new ChecksumError(`${where}tensor "${name}" ${typeof want === 'string' ? `fails its CRC-32 check (stored ${brief(want)}, computed ${got})` : 'has no checksum'}: the file is corrupt`);
    }
    // A copy, so the data is aligned for any typed array. Uint8Array.prototype.slice is called
    // explicitly: Node's Buffer overrides slice() to return a view into its (shared) pool.
    const chunk = Uint8Array.prototype.slice.call(bytes, dataStart + b, dataStart + e).buffer;
    let t: SafeTensor = { dtype, shape, data: typed(dtype, chunk) };
    if (opts.decodeHalf && (dtype === 'F16' || dtype === 'BF16')) t = { dtype: 'F32', shape, data: toFloat32(t) };
    tensors.set(name, t);
  }
  return sums === null ? { tensors, metadata } : { tensors, metadata, verified: true };
}

/** A header value for an error message, never serialised whole (a value nested 10^5 deep would overflow the stack). */
function brief(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    const s = JSON.stringify(v) ?? String(v);
    return s.length > 80 ? `${s.slice(0, 80)}...` : s;
  }
  if (Array.isArray(v) && v.length <= 16 && v.every((x) => x === null || typeof x !== 'object')) return `[${v.map(brief).join(',')}]`;
  return Array.isArray(v) ? `an array of ${v.length} items` : 'an object';
}

function typed(dtype: SafeDType, b: ArrayBuffer): SafeData {
  if (!littleEndian()) throw new SafetensorsError('big-endian hosts are not supported');
  switch (dtype) {
    case 'F32':
      return new Float32Array(b);
    case 'F64':
      return new Float64Array(b);
    case 'I32':
      return new Int32Array(b);
    case 'U32':
      return new Uint32Array(b);
    case 'I64':
      return new BigInt64Array(b);
    case 'U8':
      return new Uint8Array(b);
    case 'F16':
    case 'BF16':
      return new Uint16Array(b);
  }
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/** IEEE half -> float. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Any tensor's values as f32 (I64 beyond 2^24 loses precision, as any f32 conversion does). */
export function toFloat32(t: SafeTensor): Float32Array {
  const d = t.data;
  if (t.dtype === 'F32') return d as Float32Array;
  if (t.dtype === 'F16') return Float32Array.from(d as Uint16Array, halfToFloat);
  if (t.dtype === 'BF16') {
    const u = new Uint32Array(d.length);
    (d as Uint16Array).forEach((v, i) => (u[i] = v << 16));
    return new Float32Array(u.buffer);
  }
  if (t.dtype === 'I64') return Float32Array.from(d as BigInt64Array, Number);
  return Float32Array.from(d as ArrayLike<number>);
}

/** A tensor to write: F32/I32/U32/U8 data (the dtype follows the array unless given). */
export interface WritableTensor {
  shape: readonly number[];
  data: Float32Array | Int32Array | Uint32Array | Uint8Array;
  dtype?: SafeDType;
}

function dtypeOf(name: string, t: WritableTensor): SafeDType {
  const d: SafeDType = t.dtype ?? (t.data instanceof Float32Array ? 'F32' : t.data instanceof Int32Array ? 'I32' : t.data instanceof Uint32Array ? 'U32' : 'U8');
  if (!WRITABLE.has(d)) throw new SafetensorsError(`tensor "${name}": writing ${d} is not supported (write F32, I32, U32 or U8)`);
  const ok = (d === 'F32' && t.data instanceof Float32Array) || (d === 'I32' && t.data instanceof Int32Array) || (d === 'U32' && t.data instanceof Uint32Array) || (d === 'U8' && t.data instanceof Uint8Array);
  if (!ok) throw new SafetensorsError(`tensor "${name}": dtype ${d} does not match its ${t.data.constructor.name}`);
  return d;
}

/**
 * Serializes tensors (in the given order) and string metadata, with each tensor's CRC-32 (see the
 * file comment). The header is space-padded so the data section starts 8-byte aligned, as the
 * reference writer does.
 */
export function serializeSafetensors(tensors: ReadonlyMap<string, WritableTensor> | Readonly<Record<string, WritableTensor>>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, WritableTensor>);
  const header: Record<string, unknown> = {};
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(`metadata "${k}" must be a string, got ${typeof v}`);
    meta[k] = v;
  }
  header.__metadata__ = meta; // first in the header, as the reference writer puts it; the checksums join it below
  let offset = 0;
  const parts: Uint8Array[] = [];
  const sums: Record<string, string> = {};
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError('"__metadata__" cannot be a tensor name');
    const dtype = dtypeOf(name, t);
    const shape = [...t.shape];
    if (numelOf(shape) !== t.data.length) throw new SafetensorsError(`tensor "${name}": ${t.data.length} values for shape [${shape.join(', ')}]`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    parts.push(bytes);
    sums[name] = hex8(crc32(bytes));
  }
  sums.__metadata__ = metadataCrc(meta);
  meta[CHECKSUM_KEY] = JSON.stringify(sums);
  meta[CHECKSUM_COPY_KEY] = meta[CHECKSUM_KEY];
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
