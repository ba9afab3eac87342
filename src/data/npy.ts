/**
 * NumPy .npy and .npz files. Large C-order arrays (TinyImages-300k: 300,000 x 32 x 32 x 3 uint8,
 * about 0.9 GB) are opened lazily: only the header is read, and samples are later read by file
 * offset, so the array never enters the JavaScript heap. Fortran-order arrays and compressed .npz
 * members are read whole (converted to C order).
 */
import { open } from 'node:fs/promises';
import { DataError } from './errors.ts';
import type { ArraySource, Layout, NpySource } from './source.ts';
import { npyDataBytes, parseNpyHeaderText } from './npy-header.ts';
import { checkMemberCrc, listZip, readZipMember, type ZipMember } from './zip.ts';

export interface NpyHeader {
  /** numpy descr, e.g. '|u1', '<f4'. */
  descr: string;
  /** Type character and size without byte order, e.g. 'u1', 'f4'. */
  code: string;
  littleEndian: boolean;
  itemSize: number;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the first element, from the start of the .npy data (file or zip member). */
  headerLength: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const SUPPORTED = new Set(['u1', 'i1', 'b1', 'u2', 'i2', 'u4', 'i4', 'u8', 'i8', 'f4', 'f8']);

/** Parse the header at the start of `buf` (which must hold at least the whole header). */
export function parseNpyHeader(buf: Uint8Array, file = '<npy>'): NpyHeader {
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) throw new DataError('not a .npy file: missing the \\x93NUMPY magic', file);
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let len: number;
  let start: number;
  if (major === 1) {
    len = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new DataError('truncated .npy header', file);
    len = view.getUint32(8, true);
    start = 12;
  } else throw new DataError(`unsupported .npy format version ${major}.${buf[7]}`, file);
  if (buf.length < start + len) throw new DataError(`truncated .npy header: needs ${start + len} bytes, file has ${buf.length}`, file);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(start, start + len));
  const fail = (m: string): never => {
    throw new DataError(m, file);
  };
  const dict = parseNpyHeaderText(text, fail);
  if (typeof dict.descr !== 'string') throw new DataError('structured (record) dtypes are not supported', file);
  const descr = dict.descr;
  const order = descr[0] ?? '';
  const code = '<>|='.includes(order) ? descr.slice(1) : descr;
  const normalized = code === '?' ? 'b1' : code;
  if (!SUPPORTED.has(normalized)) throw new DataError(`unsupported dtype '${descr}' (supported: uint8/int8/bool, (u)int16/32/64, float32/64)`, file);
  const shape = dict.shape;
  npyDataBytes(shape, Number(normalized.slice(1)), fail);
  return {
    descr,
    code: normalized,
    littleEndian: order !== '>',
    itemSize: Number(normalized.slice(1)),
    fortranOrder: dict.fortranOrder,
    shape,
    headerLength: start + len,
  };
}

export type NpyTypedArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | BigUint64Array | BigInt64Array | Float32Array | Float64Array;

export interface NpyArray {
  header: NpyHeader;
  /** Elements in C order, native byte order. */
  data: NpyTypedArray;
  shape: number[];
}

/** Convert raw .npy element bytes to a C-order typed array. */
export function decodeNpyData(header: NpyHeader, raw: Uint8Array, file = '<npy>'): NpyArray {
  const count = header.shape.reduce((a, b) => a * b, 1);
  if (raw.length < count * header.itemSize) {
    throw new DataError(`truncated .npy data: shape (${header.shape.join(', ')}) of ${header.descr} needs ${count * header.itemSize} bytes, has ${raw.length}`, file);
  }
  if (raw.length > count * header.itemSize) {
    throw new DataError(`.npy data has ${raw.length - count * header.itemSize} bytes more than shape (${header.shape.join(', ')}) of ${header.descr} declares`, file);
  }
  const Ctor = {
    u1: Uint8Array,
    b1: Uint8Array,
    i1: Int8Array,
    u2: Uint16Array,
    i2: Int16Array,
    u4: Uint32Array,
    i4: Int32Array,
    u8: BigUint64Array,
    i8: BigInt64Array,
    f4: Float32Array,
    f8: Float64Array,
  }[header.code]!;
  const bytes = new Uint8Array(count * header.itemSize);
  bytes.set(raw.subarray(0, bytes.length));
  const nativeLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (header.itemSize > 1 && header.littleEndian !== nativeLE) {
    const s = header.itemSize;
    for (let i = 0; i < bytes.length; i += s) bytes.subarray(i, i + s).reverse();
  }
  let data = new Ctor(bytes.buffer, 0, count) as NpyTypedArray;
  if (header.fortranOrder && header.shape.length > 1) {
    // Permuted as unsigned integers of the item's width: copying through a Float32Array would
    // canonicalise NaN payloads (found by the fuzz suite).
    const Bits = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: BigUint64Array }[header.itemSize as 1 | 2 | 4 | 8];
    data = new Ctor(fortranToC(new Bits(bytes.buffer, 0, count), header.shape).buffer as ArrayBuffer, 0, count) as NpyTypedArray;
  }
  return { header, data, shape: header.shape };
}

function fortranToC(src: NpyTypedArray, shape: number[]): NpyTypedArray {
  const n = shape.length;
  const count = src.length;
  const dst = new (src.constructor as new (n: number) => NpyTypedArray)(count);
  // Fortran strides: first axis fastest. Walk C order with an index counter.
  const fStride: number[] = [];
  let s = 1;
  for (let d = 0; d < n; d++) {
    fStride.push(s);
    s *= shape[d]!;
  }
  const idx = new Array<number>(n).fill(0);
  let f = 0;
  for (let c = 0; c < count; c++) {
    (dst as Uint8Array)[c] = (src as Uint8Array)[f]!;
    for (let d = n - 1; d >= 0; d--) {
      idx[d]!++;
      f += fStride[d]!;
      if (idx[d]! < shape[d]!) break;
      f -= fStride[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return dst;
}

async function readRange(path: string, start: number, length: number): Promise<Uint8Array> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new DataError(`cannot open: ${(e as Error).message}`, path);
  });
  try {
    const out = new Uint8Array(length);
    let n = 0;
    while (n < length) {
      const { bytesRead } = await fh.read(out, n, length - n, start + n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return out.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/** Read only the header of a .npy file (or of a stored .npz member starting at `offset`). */
export async function readNpyHeader(path: string, offset = 0): Promise<NpyHeader> {
  let head = await readRange(path, offset, 4096);
  if (head.length >= 12) {
    const dv = new DataView(head.buffer, head.byteOffset);
    const total = head[6]! >= 2 ? dv.getUint32(8, true) + 12 : dv.getUint16(8, true) + 10;
    if (total > head.length && total < 1 << 26) head = await readRange(path, offset, total);
  }
  return parseNpyHeader(head, path);
}

/** Read a whole .npy file into memory (C order, native byte order). */
export async function readNpy(path: string): Promise<NpyArray> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new DataError(`cannot open: ${(e as Error).message}`, path);
  });
  const size = (await fh.stat()).size;
  await fh.close();
  const header = await readNpyHeader(path);
  const need = header.shape.reduce((a, b) => a * b, 1) * header.itemSize;
  if (size - header.headerLength < need) {
    throw new DataError(`truncated .npy data: shape (${header.shape.join(', ')}) of ${header.descr} needs ${need} bytes, file has ${Math.max(0, size - header.headerLength)}`, path);
  }
  const raw = await readRange(path, header.headerLength, size - header.headerLength);
  return decodeNpyData(header, raw, path);
}

export interface ImageSourceOptions {
  /** Sample layout; default: guessed from the shape ((N, C, H, W) with C in 1..4 is CHW, (N, H, W, C) with C in 1..4 is HWC). */
  layout?: Layout;
  /** Per-sample labels, or null (default) for unlabelled data such as outliers. */
  labels?: Int32Array | null;
  /** Name used in messages. */
  name?: string;
}

function imageGeometry(shape: number[], layout: Layout | undefined, file: string): { layout: Layout; sampleShape: number[] } {
  if (shape.length === 3) return { layout: 'CHW', sampleShape: [1, shape[1]!, shape[2]!] };
  if (shape.length !== 4) throw new DataError(`expected an image array of shape (N, C, H, W) or (N, H, W, C), got (${shape.join(', ')})`, file);
  const [, a, b, c] = shape as [number, number, number, number];
  const ch = (d: number): boolean => d === 1 || d === 3;
  const guess: Layout | undefined =
    layout ?? (ch(a) && !ch(c) ? 'CHW' : ch(c) && !ch(a) ? 'HWC' : a <= 4 && c > 4 ? 'CHW' : c <= 4 && a > 4 ? 'HWC' : undefined);
  if (guess === undefined) throw new DataError(`cannot tell the layout of shape (${shape.join(', ')}): pass layout 'CHW' or 'HWC'`, file);
  return guess === 'CHW' ? { layout: 'CHW', sampleShape: [a, b, c] } : { layout: 'HWC', sampleShape: [c, a, b] };
}

function checkLabels(labels: Int32Array | null | undefined, n: number, file: string): Int32Array | null {
  if (labels === undefined || labels === null) return null;
  if (labels.length !== n) throw new DataError(`${labels.length} labels given for ${n} samples`, file);
  return labels;
}

function sourceFromHeader(h: NpyHeader, path: string, dataOffset: number, fileSize: number, opts: ImageSourceOptions): NpySource {
  if (h.code !== 'u1' && h.code !== 'f4') throw new DataError(`image arrays must be uint8 or float32, this one is '${h.descr}'`, path);
  if (h.fortranOrder) throw new DataError('internal: Fortran-order arrays are read eagerly', path);
  const { layout, sampleShape } = imageGeometry(h.shape, opts.layout, path);
  const n = h.shape[0]!;
  const need = dataOffset + n * sampleShape.reduce((a, b) => a * b, 1) * h.itemSize;
  if (fileSize < need) throw new DataError(`truncated: shape (${h.shape.join(', ')}) of ${h.descr} needs ${need} bytes, file has ${fileSize}`, path);
  return {
    kind: 'npy',
    name: opts.name ?? path,
    length: n,
    sampleShape,
    layout,
    dtype: h.code === 'u1' ? 'uint8' : 'float32',
    littleEndian: h.littleEndian,
    path,
    dataOffset,
    labels: checkLabels(opts.labels, n, path),
  };
}

function sourceFromArray(a: NpyArray, path: string, opts: ImageSourceOptions): ArraySource {
  const h = a.header;
  if (h.code !== 'u1' && h.code !== 'f4') throw new DataError(`image arrays must be uint8 or float32, this one is '${h.descr}'`, path);
  const { layout, sampleShape } = imageGeometry(h.shape, opts.layout, path);
  const sab = new SharedArrayBuffer(a.data.byteLength);
  const data = h.code === 'u1' ? new Uint8Array(sab) : new Float32Array(sab);
  data.set(a.data as Uint8Array & Float32Array);
  return { kind: 'array', name: opts.name ?? path, length: h.shape[0]!, sampleShape, layout, dtype: h.code === 'u1' ? 'uint8' : 'float32', data, labels: checkLabels(opts.labels, h.shape[0]!, path) };
}

/**
 * An image dataset stored as one .npy array, e.g. TinyImages-300k. C-order arrays are read lazily by
 * offset (header only now); Fortran-order arrays are read whole and converted.
 */
export async function openNpyImages(path: string, opts: ImageSourceOptions = {}): Promise<NpySource | ArraySource> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new DataError(`cannot open: ${(e as Error).message}`, path);
  });
  const size = (await fh.stat()).size;
  await fh.close();
  const h = await readNpyHeader(path);
  if (h.fortranOrder) return sourceFromArray(await readNpy(path), path, opts);
  return sourceFromHeader(h, path, h.headerLength, size, opts);
}

/** A .npz archive: a zip of .npy members (np.savez stores them, np.savez_compressed deflates them). */
export class NpzFile {
  readonly path: string;
  readonly members: ZipMember[];
  private readonly fileSize: number;

  private constructor(path: string, members: ZipMember[], fileSize: number) {
    this.path = path;
    this.members = members;
    this.fileSize = fileSize;
  }

  static async open(path: string): Promise<NpzFile> {
    const fh = await open(path, 'r').catch((e: unknown) => {
      throw new DataError(`cannot open: ${(e as Error).message}`, path);
    });
    const size = (await fh.stat()).size;
    await fh.close();
    return new NpzFile(path, await listZip(path), size);
  }

  /** Array names (member names without '.npy'). */
  get keys(): string[] {
    return this.members.filter((m) => !m.isDirectory).map((m) => m.name.replace(/\.npy$/, ''));
  }

  private member(key: string): ZipMember {
    const m = this.members.find((x) => x.name === `${key}.npy` || x.name === key);
    if (m === undefined) throw new DataError(`no array '${key}' in the archive (has: ${this.keys.join(', ')})`, this.path);
    return m;
  }

  /** One array, read whole. */
  async array(key: string): Promise<NpyArray> {
    const m = this.member(key);
    const raw = await readZipMember(this.path, m.name);
    const name = `${this.path}[${key}]`;
    const h = parseNpyHeader(raw, name);
    return decodeNpyData(h, raw.subarray(h.headerLength), name);
  }

  /** One image array as a source: lazy by offset when the member is stored uncompressed and C-order, otherwise read whole. */
  async images(key: string, opts: ImageSourceOptions = {}): Promise<NpySource | ArraySource> {
    const m = this.member(key);
    const name = `${this.path}[${key}]`;
    if (m.method === 0) {
      const h = await readNpyHeader(this.path, m.dataStart);
      if (!h.fortranOrder) {
        const need = h.headerLength + h.shape.reduce((a, b) => a * b, 1) * h.itemSize;
        if (need > m.size) throw new DataError(`member '${m.name}' is ${m.size} bytes but its shape (${h.shape.join(', ')}) needs ${need}`, this.path);
        await checkMemberCrc(this.path, m);
        return sourceFromHeader(h, this.path, m.dataStart + h.headerLength, Math.min(this.fileSize, m.dataStart + m.size), { name, ...opts });
      }
    }
    return sourceFromArray(await this.array(key), this.path, { name, ...opts });
  }
}

/** Labels from any integer array, validated against a class count. */
export function toLabels(a: NpyArray, numClasses: number, file = '<npy>'): Int32Array {
  if (a.shape.length !== 1) throw new DataError(`labels must be one-dimensional, got shape (${a.shape.join(', ')})`, file);
  const out = new Int32Array(new SharedArrayBuffer(a.data.length * 4));
  for (let i = 0; i < a.data.length; i++) {
    const v = Number(a.data[i]);
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) throw new DataError(`label ${i} is ${v}, outside 0..${numClasses - 1}`, file);
    out[i] = v;
  }
  return out;
}
