/**
 * A minimal .npy / .npz writer for generated outlier sets: numpy's format 1.0 header and an
 * uncompressed ("stored") zip, which np.load reads as it reads the paper's samples-50.0.npz
 * (key "x": uint8 NCHW; sample.py also stores the labels as "y").
 */

export type NpyData = Uint8Array | Int32Array | Float32Array | Int8Array | Int16Array | Uint16Array | Float64Array;

function descrOf(data: NpyData): string {
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Float32Array) return '<f4';
  return '<f8';
}

/** An .npy file (version 1.0, C order, little-endian) holding `data` with `shape`. */
export function npyBytes(data: NpyData, shape: readonly number[]): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`npyBytes: ${data.length} values for shape [${shape.join(', ')}]`);
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shp}, }`;
  // magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

let crcTable: Uint32Array | null = null;

function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** An .npz (zip, stored) of named arrays: entries become `<name>.npy`. Sizes below 4 GiB. */
export function npzBytes(arrays: ReadonlyMap<string, { data: NpyData; shape: readonly number[] }> | Readonly<Record<string, { data: NpyData; shape: readonly number[] }>>): Uint8Array {
  const entries = arrays instanceof Map ? [...arrays] : Object.entries(arrays);
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, a] of entries) {
    const body = npyBytes(a.data, a.shape);
    if (body.length >= 0xffffffff) throw new Error(`npzBytes: ${name} is too large for a zip without zip64`);
    const fname = new TextEncoder().encode(`${name}.npy`);
    const crc = crc32(body);
    const local = new Uint8Array(30 + fname.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, 0, true); // stored
    lv.setUint16(12, 0x21, true); // date 1980-01-01
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, body.length, true);
    lv.setUint16(26, fname.length, true);
    local.set(fname, 30);
    const central = new Uint8Array(46 + fname.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, body.length, true);
    cv.setUint16(28, fname.length, true);
    cv.setUint32(42, offset, true);
    central.set(fname, 46);
    locals.push(local, body);
    centrals.push(central);
    offset += local.length + body.length;
  }
  const cdSize = centrals.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
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

/**
 * Writes an outlier set as samples-50.0.npz is laid out ("x": uint8 NCHW, plus "y": int32 classes
 * when given), atomically (temporary file + rename).
 */
export async function saveOutliersNpz(path: string, set: { x: Uint8Array; shape: readonly number[]; y?: Int32Array }): Promise<void> {
  const { writeFileAtomic } = await import('../engine/io/node-files.ts');
  const arrays: Record<string, { data: NpyData; shape: readonly number[] }> = { x: { data: set.x, shape: set.shape } };
  if (set.y) arrays.y = { data: set.y, shape: [set.y.length] };
  await writeFileAtomic(path, npzBytes(arrays));
}
