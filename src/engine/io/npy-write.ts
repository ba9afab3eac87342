/**
 * The one writer of numpy files: .npy (format 1.0, C order, little-endian) and .npz (np.savez's
 * layout: an uncompressed "stored" zip of `<key>.npy` members), read back by numpy (np.load) and
 * by the data layer's NpzFile (lazily, by offset). Platform-free; `saveNpz` (node-files.ts)
 * writes a file atomically. Outlier sets (samples-50.0.npz: "x" uint8 NCHW, "y" int32), score
 * files and the offline data caches are all written through here.
 */
import { crc32 } from './safetensors.ts';

export type NpyData = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/** An array to write: its elements in C order, and its shape (numel(shape) === data.length). */
export interface NpyArrayIn {
  readonly data: NpyData;
  readonly shape: readonly number[];
}

/** numpy's dtype string for a typed array. */
export function npyDescr(data: NpyData): string {
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Uint32Array) return '<u4';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  throw new TypeError('npyBytes: data must be a Uint8/Int8/Uint16/Int16/Uint32/Int32/Float32/Float64Array');
}

/** One array as a .npy file; the header is padded with spaces so the data starts on 64 bytes. */
export function npyBytes(arr: NpyArrayIn): Uint8Array {
  const { data, shape } = arr;
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`npyBytes: shape (${shape.join(', ')}) must be non-negative integers`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new RangeError(`npyBytes: shape (${shape.join(', ')}) needs ${n} values, got ${data.length}`);
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${npyDescr(data)}', 'fortran_order': False, 'shape': ${shp}, }`;
  // magic (6) + version (2) + header length (2) + header + '\n': a multiple of 64
  header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 11, ' ') + '\n';
  if (header.length > 0xffff) throw new RangeError(`npyBytes: a header of ${header.length} bytes does not fit format 1.0`);
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** A stored zip of `<key>.npy` members, as np.savez writes (no zip64: every offset below 4 GiB). */
export function npzBytes(arrays: Readonly<Record<string, NpyArrayIn>> | ReadonlyMap<string, NpyArrayIn>): Uint8Array {
  const entries: [string, NpyArrayIn][] = arrays instanceof Map ? [...arrays] : Object.entries(arrays);
  const enc = new TextEncoder();
  const members = entries.map(([key, arr]) => {
    const name = enc.encode(`${key}.npy`);
    const data = npyBytes(arr);
    return { key, name, data, crc: crc32(data) >>> 0 };
  });
  const localSize = members.reduce((s, m) => s + 30 + m.name.length + m.data.length, 0);
  const centralSize = members.reduce((s, m) => s + 46 + m.name.length, 0);
  if (localSize + centralSize >= 0xffffffff || members.length > 0xffff) {
    throw new RangeError(`npzBytes: ${members.length} members of ${localSize} bytes need zip64, which is not supported`);
  }
  const out = new Uint8Array(localSize + centralSize + 22);
  const v = new DataView(out.buffer);
  const DOS_DATE_1980_01_01 = 0x21;
  let at = 0;
  const offsets: number[] = [];
  for (const m of members) {
    offsets.push(at);
    v.setUint32(at, 0x04034b50, true); // local file header
    v.setUint16(at + 4, 20, true); // version needed: 2.0
    v.setUint16(at + 12, DOS_DATE_1980_01_01, true); // flags, method (stored), time: 0
    v.setUint32(at + 14, m.crc, true);
    v.setUint32(at + 18, m.data.length, true);
    v.setUint32(at + 22, m.data.length, true);
    v.setUint16(at + 26, m.name.length, true);
    out.set(m.name, at + 30);
    out.set(m.data, at + 30 + m.name.length);
    at += 30 + m.name.length + m.data.length;
  }
  const cdStart = at;
  members.forEach((m, i) => {
    v.setUint32(at, 0x02014b50, true); // central directory header
    v.setUint16(at + 4, 20, true); // made by
    v.setUint16(at + 6, 20, true); // needed
    v.setUint16(at + 14, DOS_DATE_1980_01_01, true);
    v.setUint32(at + 16, m.crc, true);
    v.setUint32(at + 20, m.data.length, true);
    v.setUint32(at + 24, m.data.length, true);
    v.setUint16(at + 28, m.name.length, true);
    v.setUint32(at + 42, offsets[i]!, true);
    out.set(m.name, at + 46);
    at += 46 + m.name.length;
  });
  v.setUint32(at, 0x06054b50, true); // end of central directory
  v.setUint16(at + 8, members.length, true);
  v.setUint16(at + 10, members.length, true);
  v.setUint32(at + 12, at - cdStart, true);
  v.setUint32(at + 16, cdStart, true);
  return out;
}
