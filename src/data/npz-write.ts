/**
 * Writing uint8 arrays as numpy's np.savez does: an uncompressed (stored) zip of .npy members,
 * readable by `NpzFile` and by numpy.load. Used to cache data sets built on this machine.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

export interface NpzArray {
  data: Uint8Array;
  shape: readonly number[];
}

/** One .npy file (format 1.0, '|u1', C order); the header is padded so the data starts on 64 bytes. */
export function npyUint8Bytes(a: NpzArray): Uint8Array {
  const n = a.shape.reduce((x, y) => x * y, 1);
  if (n !== a.data.length) throw new RangeError(`npyUint8Bytes: ${a.data.length} values for shape (${a.shape.join(', ')})`);
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + n);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(a.data, 10 + header.length);
  return out;
}

/** A stored zip holding `<key>.npy` per array (no ZIP64: each member and the whole archive stay under 4 GiB). */
export function npzUint8Bytes(arrays: Record<string, NpzArray>): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [key, a] of Object.entries(arrays)) {
    const name = new TextEncoder().encode(`${key}.npy`);
    const body = npyUint8Bytes(a);
    const crc = crc32(body);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, body.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, body.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, body);
    centrals.push(central);
    offset += local.length + body.length;
  }
  const cdSize = centrals.reduce((s, c) => s + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, centrals.length, true);
  ev.setUint16(10, centrals.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const part of [...locals, ...centrals, end]) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

/** Write an .npz atomically (temporary file, then rename): a reader never sees half a cache. */
export async function writeNpzUint8(path: string, arrays: Record<string, NpzArray>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.part-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, npzUint8Bytes(arrays));
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}
