/**
 * Image files (PNG, JPEG; also WebP and TIFF) as datasets: folders with one sub-folder per class
 * (torchvision ImageFolder: classes are the sorted sub-folder names) or flat folders, and explicit
 * file lists. Decoding goes through sharp (libvips, libjpeg-turbo, libspng), then torchvision's
 * Resize and CenterCrop are applied with the bit-exact Pillow resampler in resize.ts. Decoding runs
 * in the loader's worker threads.
 *
 * Pixel conventions follow PIL's `Image.open(f).convert('RGB')`: alpha is dropped (not composited),
 * grey is replicated to three channels, embedded ICC profiles are ignored, EXIF orientation is
 * ignored, and truncated or corrupt files are errors.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { DataError } from './errors.ts';
import { centerCrop, type Interpolation, resample, resizeOutputSize } from './resize.ts';
import type { ImageFilesSource } from './source.ts';

export interface DecodeOptions {
  /** torchvision Resize: a number sets the shorter side (aspect kept), [h, w] sets both. Omit to keep the decoded size. */
  resize?: number | [number, number];
  /** torchvision CenterCrop to [h, w] (a number: square). */
  centerCrop?: number | [number, number];
  /** Resampling filter for resize (torchvision's default is bilinear). */
  interpolation?: Interpolation;
  /**
   * 'pil' (default): the bit-exact Pillow resampler in JavaScript, so pixels equal torchvision's.
   * 'libvips': resize inside sharp/libvips (SIMD, about twice the throughput for ImageNet-sized JPEGs);
   * same geometry, pixels within a few levels of Pillow's. For training input pipelines where speed matters.
   */
  resampler?: 'pil' | 'libvips';
  /** Output [h, w] of every sample; derived from centerCrop or a [h, w] resize when omitted. */
  size?: [number, number];
}

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff'];

/** The fixed output [h, w] these options produce, or an error if they do not fix one. */
export function outputSize(opts: DecodeOptions, where = 'image folder'): [number, number] {
  if (opts.centerCrop !== undefined) return typeof opts.centerCrop === 'number' ? [opts.centerCrop, opts.centerCrop] : opts.centerCrop;
  if (opts.resize !== undefined && typeof opts.resize !== 'number') return opts.resize;
  if (opts.size !== undefined) return opts.size;
  throw new DataError(
    'images of different sizes cannot be batched: give centerCrop (e.g. { resize: 256, centerCrop: 224 }), a [h, w] resize, or the common size of the files',
    where,
  );
}

type SharpModule = typeof import('sharp');
let sharpPromise: Promise<SharpModule['default']> | undefined;
function loadSharp(): Promise<SharpModule['default']> {
  sharpPromise ??= import('sharp').then((m) => {
    // The loader already runs one decode per worker thread; keep libvips from oversubscribing the cores.
    m.default.concurrency(1);
    return m.default;
  });
  return sharpPromise;
}

/** Decode one file to interleaved RGB uint8 at its own size, as PIL's `Image.open(f).convert('RGB')`. */
export async function decodeImage(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  return decode(file, undefined);
}

/** Decode, optionally resizing inside libvips (resampler 'libvips'); grey becomes RGB, alpha is dropped. */
async function decode(file: string, resize: DecodeOptions | undefined): Promise<{ data: Uint8Array; width: number; height: number }> {
  const sharp = await loadSharp();
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new DataError(`cannot read image: ${(e as Error).message}`, file);
  }
  let r;
  try {
    let img = sharp(bytes, { failOn: 'warning', ignoreIcc: true, limitInputPixels: 1 << 28 });
    if (resize?.resize !== undefined) {
      const meta = await img.metadata();
      const [rw, rh] = resizeOutputSize(meta.width!, meta.height!, resize.resize);
      img = img.resize(rw, rh, { fit: 'fill', kernel: resize.interpolation === 'bicubic' ? 'cubic' : 'linear' });
    }
    r = await img.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new DataError(`image failed to decode (${(e as Error).message.split('\n')[0]})`, file);
  }
  const { width, height, channels } = r.info;
  // A plain Uint8Array view (not a Buffer) keeps the resampler's element accesses monomorphic.
  const data = new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.length);
  if (channels === 3) return { data, width, height };
  if (channels !== 1) throw new DataError(`image decodes to ${channels} channels (expected grey or RGB)`, file);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += 3) rgb[j] = rgb[j + 1] = rgb[j + 2] = data[i]!;
  return { data: rgb, width, height };
}

/**
 * Decode one file to interleaved RGB uint8, resized and centre-cropped to `[outH, outW]`, written into
 * `out` (length outH * outW * 3). Throws DataError naming the file on any failure.
 */
export async function decodeImageInto(file: string, opts: DecodeOptions, out: Uint8Array, outH: number, outW: number): Promise<void> {
  const inVips = opts.resampler === 'libvips';
  const img = await decode(file, inVips ? opts : undefined);
  let rgb = img.data;
  let w = img.width;
  let h = img.height;
  if (opts.resize !== undefined && !inVips) {
    const [rw, rh] = resizeOutputSize(w, h, opts.resize);
    rgb = resample(rgb, w, h, 3, rw, rh, opts.interpolation ?? 'bilinear');
    w = rw;
    h = rh;
  }
  if (opts.centerCrop !== undefined) {
    rgb = centerCrop(rgb, w, h, 3, outW, outH);
    w = outW;
    h = outH;
  }
  if (w !== outW || h !== outH) {
    throw new DataError(`image is ${w}x${h} (w x h) after resize/crop, the dataset's samples are ${outW}x${outH}: add resize/centerCrop options`, file);
  }
  out.set(rgb.subarray(0, outW * outH * 3));
}

async function listImages(dir: string, recursive: boolean, extensions: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      throw new DataError(`cannot list folder: ${(e as Error).message}`, d);
    }
    const names = entries.map((e) => e.name).sort();
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const p = join(d, name);
      const e = entries.find((x) => x.name === name)!;
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) isDir = (await stat(p)).isDirectory();
      if (isDir) {
        if (recursive) await walk(p);
      } else if (extensions.includes(extname(name).toLowerCase())) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

export interface ImageFolderOptions extends DecodeOptions {
  /** 'subfolders' (default): one sub-folder per class, as torchvision's ImageFolder. 'flat': every image below the folder, unlabelled. */
  structure?: 'subfolders' | 'flat';
  /**
   * Map from sub-folder name to label, e.g. ImageNet-A/-R/-O's WordNet ids to ImageNet-1k indices.
   * Default: the sorted sub-folder names numbered 0, 1, 2, ...
   */
  classIndex?: Record<string, number>;
  /** Label for every image of a flat folder (default: none, i.e. null labels). */
  label?: number;
  /** 'throw' (default): a file that fails to decode is an error. 'skip': it is replaced by the next good sample and reported. */
  onError?: 'throw' | 'skip';
  extensions?: string[];
}

/**
 * An image folder as a source. Lists files now (sorted, as torchvision does); decodes them later,
 * in the loader's workers.
 */
export async function imageFolder(root: string, opts: ImageFolderOptions = {}): Promise<ImageFilesSource> {
  const extensions = opts.extensions ?? IMAGE_EXTENSIONS;
  const size = outputSize(opts, root);
  const decodeOpts: DecodeOptions = { resize: opts.resize, centerCrop: opts.centerCrop, interpolation: opts.interpolation, resampler: opts.resampler, size };
  let files: string[];
  let labels: Int32Array | null;
  let classes: string[] | undefined;
  if ((opts.structure ?? 'subfolders') === 'flat') {
    files = await listImages(root, true, extensions);
    labels = opts.label === undefined ? null : new Int32Array(new SharedArrayBuffer(files.length * 4)).fill(opts.label);
  } else {
    let entries;
    try {
      entries = await readdir(root, { withFileTypes: true });
    } catch (e) {
      throw new DataError(`cannot list image folder: ${(e as Error).message}`, root);
    }
    classes = entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
    if (classes.length === 0) throw new DataError("no class sub-folders (use structure: 'flat' for a folder of images)", root);
    const index = opts.classIndex ?? Object.fromEntries(classes.map((c, i) => [c, i]));
    files = [];
    const lab: number[] = [];
    for (const c of classes) {
      const label = index[c];
      if (label === undefined) throw new DataError(`sub-folder '${c}' has no entry in classIndex`, root);
      const inClass = await listImages(join(root, c), true, extensions);
      for (const f of inClass) {
        files.push(f);
        lab.push(label);
      }
    }
    labels = new Int32Array(new SharedArrayBuffer(lab.length * 4));
    labels.set(lab);
  }
  if (files.length === 0) throw new DataError(`no image files (${extensions.join(', ')}) found`, root);
  return {
    kind: 'images',
    name: root,
    length: files.length,
    sampleShape: [3, size[0], size[1]],
    layout: 'HWC',
    dtype: 'uint8',
    files,
    labels,
    classes,
    decode: decodeOpts,
    onError: opts.onError ?? 'throw',
  };
}

/** An explicit list of image files (e.g. ImageNet validation with a separate label file). */
export function imageFiles(files: string[], labels: Int32Array | null, opts: DecodeOptions & { onError?: 'throw' | 'skip'; name?: string } = {}): ImageFilesSource {
  const size = outputSize(opts, opts.name ?? 'image list');
  if (labels !== null && labels.length !== files.length) throw new DataError(`${labels.length} labels for ${files.length} files`, opts.name ?? 'image list');
  return {
    kind: 'images',
    name: opts.name ?? (files.length > 0 ? `${files[0]} (+${files.length - 1} more)` : 'empty image list'),
    length: files.length,
    sampleShape: [3, size[0], size[1]],
    layout: 'HWC',
    dtype: 'uint8',
    files: [...files],
    labels,
    decode: { resize: opts.resize, centerCrop: opts.centerCrop, interpolation: opts.interpolation, resampler: opts.resampler, size },
    onError: opts.onError ?? 'throw',
  };
}

export interface VerifyReport {
  ok: number;
  bad: { file: string; index: number; reason: string }[];
}

/**
 * Decode every file of an image source once (concurrently) and report those that fail, so a
 * training or evaluation run can drop them up front (see `subset`) instead of meeting them later.
 */
export async function verifyImages(src: ImageFilesSource, concurrency = 4): Promise<VerifyReport> {
  const [h, w] = src.sampleShape.slice(1) as [number, number];
  const report: VerifyReport = { ok: 0, bad: [] };
  let next = 0;
  const run = async (): Promise<void> => {
    const buf = new Uint8Array(h * w * 3);
    for (;;) {
      const i = next++;
      if (i >= src.files.length) return;
      try {
        await decodeImageInto(src.files[i]!, src.decode, buf, h, w);
        report.ok++;
      } catch (e) {
        report.bad.push({ file: src.files[i]!, index: i, reason: (e as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, run));
  report.bad.sort((a, b) => a.index - b.index);
  return report;
}
