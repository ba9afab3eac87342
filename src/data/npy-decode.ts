/**
 * Decoding NumPy .npy bytes: the header (versions 1.0 to 3.0, parsed as the Python literal numpy
 * writes, npy-header.ts) and the elements (any byte order, C or Fortran order, to C order and
 * native byte order). Platform-free: the score reader uses it in the browser too; the file and
 * .npz readers around it are in npy.ts.
 */
import { DataError } from './errors.ts';
import { npyDataBytes, parseNpyHeaderText } from './npy-header.ts';

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
