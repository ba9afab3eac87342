/**
 * NumPy .npy and .npz files. Large C-order arrays (TinyImages-300k: 300,000 x 32 x 32 x 3 uint8,
 * about 0.9 GB) are opened lazily: only the header is read, and samples are later read by file
 * offset, so the array never enters the JavaScript heap. Fortran-order arrays and compressed .npz
 * members are read whole (converted to C order).
 */
import { open } from 'node:fs/promises';
import { DataError } from './errors.ts';
import type { ArraySource, Layout, NpySource } from './source.ts';
import { decodeNpyData, parseNpyHeader, type NpyArray, type NpyHeader, type NpyTypedArray } from './npy-decode.ts';
import { checkMemberCrc, listZip, readZipMember, type ZipMember } from './zip.ts';

export { decodeNpyData, parseNpyHeader, type NpyArray, type NpyHeader, type NpyTypedArray };

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
