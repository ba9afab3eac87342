/**
 * Writing .npy arrays and .npz archives (numpy's np.savez layout: an uncompressed zip of .npy
 * members), so generated outlier sets can be saved once and reused, by this project (the data
 * layer's NpzFile reads them lazily by offset) or by numpy (`np.load(path)["x"]`). Files are
 * written atomically (temporary file + rename).
 */
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from '../../engine/index.ts';

export type NpyWritable = Uint8Array | Int32Array | Float32Array | Float64Array;

export interface NpyArrayIn {
  data: NpyWritable;
  shape: readonly number[];
}

function descr(a: NpyWritable): string {
  if (a instanceof Uint8Array) return '|u1';
  if (a instanceof Int32Array) return '<i4';
  if (a instanceof Float64Array) return '<f8';
  return '<f4';
}

/** One array as .npy (format 1.0, C order, little-endian). */
export function npyBytes(arr: NpyArrayIn): Uint8Array {
  const n = arr.shape.reduce((a, b) => a * b, 1);
  if (n !== arr.data.length) throw new RangeError(`npyBytes: shape (${arr.shape.join(', ')}) needs ${n} values, got ${arr.data.length}`);
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${descr(arr.data)}', 'fortran_order': False, 'shape': ${shape}, }`;
  // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const body = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  const out = new Uint8Array(total + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(body, total);
  return out;
}

/** A stored (uncompressed) zip of `name.npy` members, as np.savez writes. Members under 4 GiB. */
export function npzBytes(arrays: Readonly<Record<string, NpyArrayIn>>): Uint8Array {
  const enc = new TextEncoder();
  const members = Object.entries(arrays).map(([key, arr]) => {
    const name = enc.encode(`${key}.npy`);
    const data = npyBytes(arr);
    if (data.length >= 0xffffffff) throw new RangeError(`npzBytes: member ${key} is ${data.length} bytes; zip64 is not supported`);
    return { name, data, crc: crc32(data) >>> 0 };
  });
  const localSize = members.reduce((s, m) => s + 30 + m.name.length + m.data.length, 0);
  const centralSize = members.reduce((s, m) => s + 46 + m.name.length, 0);
  const out = new Uint8Array(localSize + centralSize + 22);
  const v = new DataView(out.buffer);
  let at = 0;
  const offsets: number[] = [];
  for (const m of members) {
    offsets.push(at);
    v.setUint32(at, 0x04034b50, true);
    v.setUint16(at + 4, 20, true); // version needed
    v.setUint16(at + 6, 0, true); // flags
    v.setUint16(at + 8, 0, true); // stored
    v.setUint16(at + 10, 0, true); // time
    v.setUint16(at + 12, 0x21, true); // date 1980-01-01
    v.setUint32(at + 14, m.crc, true);
    v.setUint32(at + 18, m.data.length, true);
    v.setUint32(at + 22, m.data.length, true);
    v.setUint16(at + 26, m.name.length, true);
    v.setUint16(at + 28, 0, true);
    out.set(m.name, at + 30);
    out.set(m.data, at + 30 + m.name.length);
    at += 30 + m.name.length + m.data.length;
  }
  const cdStart = at;
  members.forEach((m, i) => {
    v.setUint32(at, 0x02014b50, true);
    v.setUint16(at + 4, 20, true); // made by
    v.setUint16(at + 6, 20, true); // needed
    v.setUint16(at + 8, 0, true);
    v.setUint16(at + 10, 0, true);
    v.setUint16(at + 12, 0, true);
    v.setUint16(at + 14, 0x21, true);
    v.setUint32(at + 16, m.crc, true);
    v.setUint32(at + 20, m.data.length, true);
    v.setUint32(at + 24, m.data.length, true);
    v.setUint16(at + 28, m.name.length, true);
    // extra, comment, disk, internal attributes: 0
    v.setUint32(at + 38, 0, true); // external attributes
    v.setUint32(at + 42, offsets[i]!, true);
    out.set(m.name, at + 46);
    at += 46 + m.name.length;
  });
  v.setUint32(at, 0x06054b50, true);
  v.setUint16(at + 8, members.length, true);
  v.setUint16(at + 10, members.length, true);
  v.setUint32(at + 12, at - cdStart, true);
  v.setUint32(at + 16, cdStart, true);
  return out;
}

/** Writes an .npz atomically. */
export async function saveNpz(path: string, arrays: Readonly<Record<string, NpyArrayIn>>): Promise<void> {
  await writeFileAtomic(path, npzBytes(arrays));
}
