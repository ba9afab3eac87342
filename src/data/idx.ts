/**
 * IDX files (MNIST, Fashion-MNIST), plain or gzipped: magic 0x0000TTDD (TT = element type,
 * DD = number of dimensions), then DD big-endian uint32 sizes, then the elements big-endian.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError } from './errors.ts';
import { INFLATE_FLOOR_BYTES, inflateLimit, MAX_INFLATE_RATIO } from './inflate-limit.ts';
import { DEBIAN_FASHION_MNIST_DIR, dataDir, systemFashionMnistDir } from './paths.ts';
import { sharedInt32, sharedUint8 } from './shared.ts';
import type { ArraySource } from './source.ts';

export interface IdxArray {
  /** 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64' */
  type: IdxType;
  shape: number[];
  /** Elements in native byte order (uint8 data is a view, others converted from big-endian). */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
const TYPES: Record<number, [IdxType, number]> = {
  0x08: ['uint8', 1],
  0x09: ['int8', 1],
  0x0b: ['int16', 2],
  0x0c: ['int32', 4],
  0x0d: ['float32', 4],
  0x0e: ['float64', 8],
};

/** Parse an IDX file already in memory (gzip is detected by its magic bytes). */
export function parseIdx(input: Uint8Array, file = '<idx>'): IdxArray {
  let buf = input;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    // The output is capped while inflating (a bomb stops at the cap instead of filling memory);
    // the IDX header then has to match what came out exactly.
    const limit = inflateLimit(buf.length);
    try {
      buf = gunzipSync(buf, { maxOutputLength: limit });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new DataError(
          `gzip stream of ${buf.length} bytes inflates past ${limit} (over ${MAX_INFLATE_RATIO}:1 above ${INFLATE_FLOOR_BYTES >> 20} MiB: a decompression bomb or corrupt data); gunzip it yourself and read the plain file if it is real`,
          file,
        );
      }
      throw new DataError(`gzip stream is corrupt or truncated (${(e as Error).message})`, file);
    }
  }
  if (buf.length < 4) throw new DataError(`not an IDX file: ${buf.length} bytes is shorter than the 4-byte magic`, file);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  const typeCode = (magic >>> 8) & 0xff;
  const ndim = magic & 0xff;
  const t = TYPES[typeCode];
  if (magic >>> 16 !== 0 || t === undefined || ndim === 0) {
    throw new DataError(`not an IDX file: bad magic number 0x${magic.toString(16).padStart(8, '0')} (expected 0x0000TTDD with TT in 08,09,0B,0C,0D,0E)`, file);
  }
  const header = 4 + 4 * ndim;
  if (buf.length < header) throw new DataError(`truncated IDX header: needs ${header} bytes, file has ${buf.length}`, file);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const [type, size] = t;
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = header + count * size;
  if (buf.length < expected) {
    throw new DataError(`truncated IDX data: shape (${shape.join(', ')}) of ${type} needs ${expected} bytes, file has ${buf.length}`, file);
  }
  if (buf.length > expected) throw new DataError(`IDX file has ${buf.length - expected} bytes after the declared shape (${shape.join(', ')}) of ${type}`, file);
  let data: IdxArray['data'];
  const body = buf.subarray(header, expected);
  if (type === 'uint8') data = body;
  else if (type === 'int8') data = new Int8Array(body.buffer, body.byteOffset, count);
  else {
    const Ctor = { int16: Int16Array, int32: Int32Array, float32: Float32Array, float64: Float64Array }[type];
    const out = new Ctor(count);
    const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let i = 0; i < count; i++) {
      out[i] =
        type === 'int16' ? dv.getInt16(i * 2, false) : type === 'int32' ? dv.getInt32(i * 4, false) : type === 'float32' ? dv.getFloat32(i * 4, false) : dv.getFloat64(i * 8, false);
    }
    data = out;
  }
  return { type, shape, data };
}

export async function readIdx(file: string): Promise<IdxArray> {
  const buf = await readFile(file).catch((e: unknown) => {
    throw new DataError(`cannot read IDX file: ${(e as Error).message}`, file);
  });
  return parseIdx(buf, file);
}

/** An images IDX file (N, H, W) of uint8 plus a labels IDX file (N) of uint8, as one source of shape [1, H, W]. */
export async function readIdxPair(imagesFile: string, labelsFile: string, numClasses = 10): Promise<ArraySource> {
  const images = await readIdx(imagesFile);
  const labels = await readIdx(labelsFile);
  if (images.type !== 'uint8' || images.shape.length !== 3) {
    throw new DataError(`expected uint8 images of shape (N, H, W), got ${images.type} (${images.shape.join(', ')})`, imagesFile);
  }
  if (labels.type !== 'uint8' || labels.shape.length !== 1) {
    throw new DataError(`expected uint8 labels of shape (N), got ${labels.type} (${labels.shape.join(', ')})`, labelsFile);
  }
  const [n, h, w] = images.shape as [number, number, number];
  if (labels.shape[0] !== n) throw new DataError(`${labels.shape[0]} labels for ${n} images in ${imagesFile}`, labelsFile);
  const data = sharedUint8(n * h * w);
  data.set(images.data as Uint8Array);
  const lab = sharedInt32(n);
  for (let i = 0; i < n; i++) {
    const v = (labels.data as Uint8Array)[i]!;
    if (v >= numClasses) throw new DataError(`label ${i} is ${v}, outside 0..${numClasses - 1}`, labelsFile);
    lab[i] = v;
  }
  return { kind: 'array', name: imagesFile, length: n, sampleShape: [1, h, w], layout: 'CHW', dtype: 'uint8', data, labels: lab };
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/**
 * MNIST or Fashion-MNIST. Looks in `root` (default `dataDir()/<name>`) for the four standard files,
 * gzipped or not; for Fashion-MNIST, Debian's `dataset-fashion-mnist` package folder
 * (/usr/share/datasets/fashion-mnist) is used when the data folder does not have them (always with
 * the default root; with an explicit root only if `systemPackage` is true).
 */
export async function readMnist(opts: { name: 'mnist' | 'fashion-mnist'; split: 'train' | 'test'; root?: string; systemPackage?: boolean }): Promise<ArraySource> {
  const prefix = opts.split === 'train' ? 'train' : 't10k';
  const roots = [opts.root ?? join(dataDir(), opts.name)];
  const system = systemFashionMnistDir();
  if (opts.name === 'fashion-mnist' && system !== null && (opts.systemPackage ?? opts.root === undefined)) roots.push(system);
  for (const root of roots) {
    const find = (base: string): string | undefined => [base, `${base}.gz`].map((f) => join(root, f)).find((p) => existsSync(p));
    const img = find(`${prefix}-images-idx3-ubyte`);
    const lab = find(`${prefix}-labels-idx1-ubyte`);
    if (img !== undefined && lab !== undefined) {
      const s = await readIdxPair(img, lab, 10);
      if (opts.name === 'fashion-mnist') s.classes = FASHION_MNIST_CLASSES;
      return s;
    }
  }
  const hint = opts.name === 'fashion-mnist' ? ` (or install Debian's dataset-fashion-mnist package, which fills ${DEBIAN_FASHION_MNIST_DIR})` : '';
  throw new DataError(`no ${opts.name} ${opts.split} files (${prefix}-images-idx3-ubyte[.gz], ${prefix}-labels-idx1-ubyte[.gz]) in ${roots.join(' or ')}${hint}`);
}
