/**
 * The user's image arrays (.npy, .npz, IDX) as sources, by these rules:
 *  - layout: (N, H, W) is grey. (N, A, B, C) is NCHW when only A is a channel count (1, 3 or 4), NHWC
 *    when only C is; when both are, the reading that gives square images wins ([N, 4, 4, 3] is NHWC),
 *    and when that does not decide ([N, 3, 32, 3], [N, 3, 3, 3]) the array is refused unless the
 *    caller names the layout. 4 channels are RGBA: alpha is dropped.
 *  - values: integer arrays (uint8 or wider) hold levels 0..255. Float arrays hold [0, 1] (torchvision
 *    ToTensor's range; with floatRange '-1..1', [-1, 1] mapped by (v + 1) / 2), taken to the nearest of
 *    the 256 levels (round(v * 255)). A value that would round outside 0..255, NaN or infinity is
 *    refused, naming the sample and the value. Booleans are refused.
 *  - sizes: a .npy header's declared shape is checked against the file's size before anything is read.
 * Then every image goes through convertPixels (user-pixels.ts). Arrays are read in chunks of samples,
 * so a float array is never held whole beside its uint8 copy. A C-order uint8 array (a .npy file or a
 * stored .npz member) already at the target's channels and size is not copied: it is returned as a
 * lazy NpySource read by file offset.
 */
import { open, stat } from 'node:fs/promises';
import { DataError } from './errors.ts';
import { readIdx } from './idx.ts';
import { decodeNpyData, NpzFile, readNpy, readNpyHeader, type NpyHeader } from './npy.ts';
import { sharedInt32, sharedUint8 } from './shared.ts';
import type { ArraySource, NpySource } from './source.ts';
import { checkMemberCrc } from './zip.ts';
import { convertPixels, type ImageTarget } from './user-pixels.ts';

export interface ArrayImageOptions {
  /** Layout of 4-D arrays when the shape does not decide it. */
  layout?: 'NCHW' | 'NHWC';
  /** Range of float arrays: '0..1' (default) or '-1..1'. */
  floatRange?: '0..1' | '-1..1';
  /** false: always copy into an ArraySource. Default: a uint8 file already at the target is read lazily. */
  lazy?: boolean | 'auto';
}

/** One image array, readable by ranges of samples. */
export interface ArrayInput {
  /** Name for messages: the path, or path[key] for an .npz member. */
  name: string;
  /** The file errors are about. */
  file: string;
  shape: number[];
  kind: 'int' | 'float';
  /** Values of samples [first, first + count) in C order. */
  read(first: number, count: number): Promise<ArrayLike<number>>;
  close(): Promise<void>;
  /** Where the raw uint8 C-order samples start in `file`, when they can be read by offset. */
  uint8Offset?: number;
}

interface Geometry {
  n: number;
  c: 1 | 3 | 4;
  h: number;
  w: number;
  layout: 'CHW' | 'HWC';
}

const isChannels = (d: number): d is 1 | 3 | 4 => d === 1 || d === 3 || d === 4;

/** The samples' geometry by the layout rule above. */
export function arrayGeometry(shape: number[], layout: 'NCHW' | 'NHWC' | undefined, file: string): Geometry {
  const shown = `(${shape.join(', ')})`;
  let g: Geometry;
  if (shape.length === 3) g = { n: shape[0]!, c: 1, h: shape[1]!, w: shape[2]!, layout: 'CHW' };
  else if (shape.length === 4) {
    const [n, a, b, c] = shape as [number, number, number, number];
    const chw: Geometry | undefined = isChannels(a) ? { n, c: a, h: b, w: c, layout: 'CHW' } : undefined;
    const hwc: Geometry | undefined = isChannels(c) ? { n, c, h: a, w: b, layout: 'HWC' } : undefined;
    let pick = layout === 'NCHW' ? chw : layout === 'NHWC' ? hwc : chw !== undefined && hwc !== undefined ? undefined : (chw ?? hwc);
    if (layout === undefined && chw !== undefined && hwc !== undefined) {
      const chwSquare = chw.h === chw.w;
      const hwcSquare = hwc.h === hwc.w;
      if (chwSquare !== hwcSquare) pick = chwSquare ? chw : hwc;
      else {
        throw new DataError(
          `cannot tell whether shape ${shown} is NCHW (${a}-channel ${b}x${c} images) or NHWC (${c}-channel ${a}x${b} images): transpose it so only one of axes 1 and 3 is 1, 3 or 4, or name the layout`,
          file,
        );
      }
    }
    if (pick === undefined) {
      const wanted = layout === undefined ? 'axis 1 (NCHW) or axis 3 (NHWC)' : layout === 'NCHW' ? 'axis 1 (NCHW)' : 'axis 3 (NHWC)';
      throw new DataError(`shape ${shown} has no channel axis: ${wanted} must be 1 (grey), 3 (RGB) or 4 (RGBA)`, file);
    }
    g = pick;
  } else {
    throw new DataError(`expected images of shape (N, H, W), (N, C, H, W) or (N, H, W, C) with C in 1, 3, 4; got ${shown}`, file);
  }
  if (g.n === 0) throw new DataError(`the array ${shown} holds no images`, file);
  if (g.h === 0 || g.w === 0) throw new DataError(`the array ${shown} holds empty ${g.h}x${g.w} images`, file);
  return g;
}

function kindOf(code: string, descr: string, file: string): 'int' | 'float' {
  if (code[0] === 'u' || code[0] === 'i') return 'int';
  if (code[0] === 'f') return 'float';
  throw new DataError(`dtype '${descr}' is not an image dtype: save uint8 levels 0..255 or floats in [0, 1]`, file);
}

/** Element values of raw little- or big-endian bytes. */
function decodeValues(raw: Uint8Array, code: string, le: boolean): ArrayLike<number> {
  if (code === 'u1') return raw;
  if (code === 'i1') return new Int8Array(raw.buffer, raw.byteOffset, raw.length);
  const size = Number(code.slice(1));
  const n = raw.length / size;
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const get: (o: number) => number = {
    u2: (o: number) => dv.getUint16(o, le),
    i2: (o: number) => dv.getInt16(o, le),
    u4: (o: number) => dv.getUint32(o, le),
    i4: (o: number) => dv.getInt32(o, le),
    u8: (o: number) => Number(dv.getBigUint64(o, le)),
    i8: (o: number) => Number(dv.getBigInt64(o, le)),
    f4: (o: number) => dv.getFloat32(o, le),
    f8: (o: number) => dv.getFloat64(o, le),
  }[code]!;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = get(i * size);
  return out;
}

/** An in-memory C-order array (BigInt elements become numbers chunk by chunk). */
function memoryInput(name: string, file: string, shape: number[], kind: 'int' | 'float', data: ArrayLike<number | bigint> & { subarray(a: number, b: number): ArrayLike<number | bigint> }): ArrayInput {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    name,
    file,
    shape,
    kind,
    read: async (first, count) => {
      const part = data.subarray(first * per, (first + count) * per);
      return typeof part[0] === 'bigint' ? Float64Array.from(part as ArrayLike<bigint>, Number) : (part as ArrayLike<number>);
    },
    close: async () => {},
  };
}

/** C-order elements at `offset` in `file`, read by ranges of samples. */
async function fileInput(name: string, file: string, h: NpyHeader, offset: number): Promise<ArrayInput> {
  const kind = kindOf(h.code, h.descr, file);
  const fh = await open(file, 'r').catch((e: unknown) => {
    throw new DataError(`cannot open: ${(e as Error).message}`, file);
  });
  const sampleBytes = h.shape.slice(1).reduce((a, b) => a * b, 1) * h.itemSize;
  return {
    name,
    file,
    shape: h.shape,
    kind,
    read: async (first, count) => {
      const raw = new Uint8Array(count * sampleBytes);
      let got = 0;
      while (got < raw.length) {
        const { bytesRead } = await fh.read(raw, got, raw.length - got, offset + first * sampleBytes + got);
        if (bytesRead === 0) throw new DataError(`file ended while reading sample ${first + Math.floor(got / sampleBytes)}`, file);
        got += bytesRead;
      }
      return decodeValues(raw, h.code, h.littleEndian);
    },
    close: () => fh.close(),
    uint8Offset: h.code === 'u1' ? offset : undefined,
  };
}

function checkDeclaredSize(h: NpyHeader, have: number, file: string, what: string): void {
  const need = h.shape.reduce((a, b) => a * b, 1) * h.itemSize;
  const shape = `(${h.shape.join(', ')}) of ${h.descr}`;
  if (have < need) throw new DataError(`truncated ${what}: its header declares shape ${shape}, ${need} bytes of data, but only ${have} follow the header (re-save it with numpy.save)`, file);
  if (have > need) throw new DataError(`${what} has ${have - need} bytes after the ${need} bytes its header declares for shape ${shape}`, file);
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    throw new DataError(`cannot read: ${(e as Error).message}`, path);
  }
}

/** A .npy file: header checked against the file size, then read in chunks (Fortran order: whole). */
export async function npyInput(path: string): Promise<ArrayInput> {
  const size = await fileSize(path);
  const h = await readNpyHeader(path);
  checkDeclaredSize(h, size - h.headerLength, path, '.npy file');
  if (!h.fortranOrder) return fileInput(path, path, h, h.headerLength);
  const a = await readNpy(path);
  return memoryInput(path, path, a.shape, kindOf(h.code, h.descr, path), a.data);
}

/** An .npz member: `key`, else "x", else the first member. Stored C-order members are read in chunks. */
export async function npzInput(path: string, key?: string): Promise<ArrayInput> {
  const npz = await NpzFile.open(path);
  const keys = npz.keys;
  if (keys.length === 0) throw new DataError('the .npz archive holds no arrays', path);
  const k = key ?? (keys.includes('x') ? 'x' : keys[0]!);
  if (!keys.includes(k)) throw new DataError(`no array '${k}' in the archive (it has: ${keys.join(', ')})`, path);
  const m = npz.members.find((x) => x.name === `${k}.npy` || x.name === k)!;
  const name = `${path}[${k}]`;
  if (m.method === 0) {
    const h = await readNpyHeader(path, m.dataStart);
    checkDeclaredSize(h, m.size - h.headerLength, name, 'member');
    if (!h.fortranOrder) {
      await checkMemberCrc(path, m);
      return fileInput(name, path, h, m.dataStart + h.headerLength);
    }
  }
  const a = await npz.array(k);
  return memoryInput(name, path, a.shape, kindOf(a.header.code, a.header.descr, name), a.data);
}

const IDX_KIND = { uint8: 'int', int8: 'int', int16: 'int', int32: 'int', float32: 'float', float64: 'float' } as const;

/** An IDX file, plain or gzipped (read whole; parseIdx checks the declared shape against the bytes). */
export async function idxInput(path: string): Promise<ArrayInput> {
  const a = await readIdx(path).catch((e: unknown) => {
    if (!(e instanceof DataError) || !e.message.includes('not an IDX file')) throw e;
    throw new DataError(`${e.message.slice(path.length + 2)}; IDX files are MNIST's format (e.g. train-images-idx3-ubyte[.gz]), and a .gz must be a gzipped IDX file`, path);
  });
  return memoryInput(path, path, a.shape, IDX_KIND[a.type], a.data);
}

/** Integer class labels (1-D, non-negative), from an IDX labels file or an .npz member. */
export async function readLabels(input: ArrayInput, expected: number, imagesName: string): Promise<{ labels: Int32Array; count: number }> {
  if (input.shape.length !== 1) throw new DataError(`labels must be one-dimensional (N,), got shape (${input.shape.join(', ')})`, input.name);
  if (input.kind !== 'int') throw new DataError('labels must be integers 0, 1, 2, ...; this array holds floats', input.name);
  const n = input.shape[0]!;
  if (n !== expected) throw new DataError(`${n} labels for the ${expected} images of ${imagesName}: both must have the same length`, input.name);
  const values = await input.read(0, n);
  const labels = sharedInt32(n);
  let max = -1;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < 0 || v > 1_000_000) throw new DataError(`label ${i} is ${v}: labels are class indices 0, 1, 2, ...`, input.name);
    labels[i] = v;
    if (v > max) max = v;
  }
  return { labels, count: max + 1 };
}

const LEVELS = 255;

function refuseValue(input: ArrayInput, floatRange: '0..1' | '-1..1', sample: number, element: number, v: number): never {
  const where = `sample ${sample}, element ${element} is ${v}`;
  if (input.kind === 'int') throw new DataError(`${where}: integer images must hold levels 0..255`, input.name);
  let hint = '';
  if (floatRange === '0..1' && v >= -1 && v < 0) hint = "; values in [-1, 1] (e.g. tanh outputs) need floatRange '-1..1', or save (x + 1) / 2";
  else if (v > 1 && v <= 255) hint = '; levels 0..255 should be saved as uint8 (x.astype(numpy.uint8))';
  throw new DataError(`${where}: float images must hold values in [${floatRange === '0..1' ? '0, 1' : '-1, 1'}]${hint}`, input.name);
}

/**
 * The array's images converted to `target` (default: native size, RGBA -> RGB) as an ArraySource of
 * uint8 CHW, or a lazy NpySource when the file already holds uint8 at the target (see the header).
 */
export async function arrayImages(
  input: ArrayInput,
  target: ImageTarget | undefined,
  opts: ArrayImageOptions & { labels?: Int32Array | null; classes?: string[] } = {},
): Promise<ArraySource | NpySource> {
  try {
    const g = arrayGeometry(input.shape, opts.layout, input.name);
    const t: ImageTarget = target ?? { channels: g.c === 1 ? 1 : 3, height: g.h, width: g.w };
    const labels = opts.labels ?? null;
    if (labels !== null && labels.length !== g.n) throw new DataError(`${labels.length} labels for ${g.n} images`, input.name);
    const sampleShape = [t.channels, t.height, t.width];
    const base = { name: input.name, length: g.n, sampleShape, labels, ...(opts.classes ? { classes: opts.classes } : {}) };
    if (opts.lazy !== false && input.uint8Offset !== undefined && g.c === t.channels && g.h === t.height && g.w === t.width) {
      return { ...base, kind: 'npy', layout: g.layout, dtype: 'uint8', littleEndian: true, path: input.file, dataOffset: input.uint8Offset };
    }
    const floatRange = opts.floatRange ?? '0..1';
    const per = g.c * g.h * g.w;
    const outPer = t.channels * t.height * t.width;
    const data = sharedUint8(g.n * outPer);
    const hwc = new Uint8Array(per);
    const chunk = Math.max(1, Math.floor((8 << 20) / per));
    for (let first = 0; first < g.n; first += chunk) {
      const count = Math.min(chunk, g.n - first);
      const values = await input.read(first, count);
      for (let s = 0; s < count; s++) {
        const off = s * per;
        for (let e = 0; e < per; e++) {
          // e walks the stored order; j is the same element's place in interleaved HWC.
          const j = g.layout === 'HWC' ? e : ((e % (g.h * g.w)) * g.c + Math.floor(e / (g.h * g.w)));
          const v = values[off + e]!;
          let level: number;
          if (input.kind === 'int') level = v;
          else level = Math.round((floatRange === '0..1' ? v : (v + 1) / 2) * LEVELS);
          if (!(level >= 0 && level <= LEVELS) || (input.kind === 'int' && !Number.isInteger(v))) refuseValue(input, floatRange, first + s, e, v);
          hwc[j] = level;
        }
        convertPixels(hwc, g.w, g.h, g.c, t, data, (first + s) * outPer);
      }
    }
    return { ...base, kind: 'array', layout: 'CHW', dtype: 'uint8', data };
  } finally {
    await input.close();
  }
}
