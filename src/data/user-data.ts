/**
 * The user's own image data: OOD sets (`openImageSet`, unlabelled, converted to the in-distribution's
 * channels and size) and a labelled in-distribution (`openLabelledImageSet`, `openTrainTest`).
 * The format is told by the path:
 *  - a folder: image files (.png .jpg .jpeg .webp .tif .tiff) below it, recursively, sorted by name,
 *    a folder's files before its sub-folders; for a labelled set, one sub-folder per class (sorted
 *    names = class indices, as torchvision's ImageFolder; images directly in the root are ignored);
 *  - `*.npy`; `*.npz` (member "x", else the first; labelled: members "x" and "y");
 *  - IDX: `*-ubyte`, `*.idx*`, or any `*.gz` (gzip is detected by its bytes); a labelled IDX set is
 *    `IMAGES,LABELS` or an images file whose labels sit beside it under the MNIST name
 *    (`...-images-idx3-ubyte[.gz]` -> `...-labels-idx1-ubyte[.gz]`).
 * Pixels follow user-pixels.ts (channels, then Resize([H, W])) and user-arrays.ts (layouts, value
 * ranges). Every failure is a DataError that names the path, what is wrong, and what would work.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { DataError } from './errors.ts';
import { decodeImage, IMAGE_EXTENSIONS, imageFiles } from './images.ts';
import { NpzFile } from './npy.ts';
import { sharedInt32, sharedUint8 } from './shared.ts';
import type { ArraySource, Source } from './source.ts';
import { arrayImages, idxInput, npyInput, npzInput, readLabels, type ArrayImageOptions, type ArrayInput } from './user-arrays.ts';
import { convertPixels, rgbToLuma, type ImageTarget } from './user-pixels.ts';

export interface UserImageOptions extends ArrayImageOptions {
  /**
   * Folders: false decodes every image now (a bad file is found up front); true returns a lazy source
   * decoded by the loader's workers (RGB targets only). 'auto' (default): lazy when the decoded set
   * would exceed `lazyBytes`. Arrays: see ArrayImageOptions.
   */
  lazy?: boolean | 'auto';
  /** Decoded size above which 'auto' goes lazy for folders (default 512 MiB). */
  lazyBytes?: number;
  /** Images decoded at once (default 4). */
  concurrency?: number;
  /** Called as folder images are decoded. */
  onProgress?: (done: number, total: number) => void;
}

export interface LabelledImageOptions extends UserImageOptions {
  /** Convert to these channels and size; default: the set's own (see openLabelledImageSet). */
  target?: ImageTarget;
}

export interface LabelledImageSet {
  path: string;
  source: Source;
  /** Class names: folder names for a class-folder tree, '0', '1', ... for integer labels. */
  classes: string[];
  /** Whether the class names came from folder names (they must then match between train and test). */
  namedClasses: boolean;
  channels: 1 | 3;
  height: number;
  width: number;
}

const FORMATS = 'a folder of images (.png, .jpg, .jpeg, .webp, .tif), an IDX file (*-idx3-ubyte, *.idx, optionally .gz), a .npy or a .npz';
const DEFAULT_LAZY_BYTES = 512 << 20;

type Kind = 'folder' | 'npy' | 'npz' | 'idx';

async function formatOf(path: string): Promise<Kind> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new DataError(missing ? `no such file or folder (expected ${FORMATS})` : `cannot read: ${(e as Error).message}`, path);
  }
  if (s.isDirectory()) return 'folder';
  const name = basename(path).toLowerCase();
  if (name.endsWith('.npy.gz') || name.endsWith('.npz.gz')) throw new DataError(`gzipped NumPy files are not read: gunzip it first (${FORMATS})`, path);
  if (name.endsWith('.npy')) return 'npy';
  if (name.endsWith('.npz')) return 'npz';
  if (/-ubyte(\.gz)?$/.test(name) || /\.idx\d*(\.gz)?$/.test(name) || name.endsWith('.gz')) return 'idx';
  if (IMAGE_EXTENSIONS.includes(extname(name))) throw new DataError(`a single image is not a data set: pass the folder that holds the images (${dirname(path)})`, path);
  throw new DataError(`unknown file type '${extname(name) || name}': expected ${FORMATS}`, path);
}

/** Image files below `dir`, sorted, a folder's files before its sub-folders. */
async function listImages(dir: string, skipped: string[]): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new DataError(`cannot list folder: ${(e as Error).message}`, dir);
  }
  const files: string[] = [];
  const dirs: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && (await stat(p).catch(() => null))?.isDirectory() === true);
    if (isDir) dirs.push(p);
    else if (IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())) files.push(p);
    else skipped.push(p);
  }
  for (const d of dirs) files.push(...(await listImages(d, skipped)));
  return files;
}

function noImages(path: string, skipped: string[]): DataError {
  const other = skipped.length === 0 ? 'it is empty' : `it holds ${skipped.length} other file(s), e.g. ${skipped[0]} (pass an array file itself as the path)`;
  return new DataError(`no image files (${IMAGE_EXTENSIONS.join(' ')}) in the folder: ${other}`, path);
}

type SharpFn = typeof import('sharp').default;
let sharpModule: Promise<SharpFn> | undefined;
const loadSharp = (): Promise<SharpFn> => (sharpModule ??= import('sharp').then((m) => m.default));

/**
 * The native geometry of a set of image files: the most common size (ties: the first file's), RGB if
 * any file has colour, else grey. Reads only the files' headers.
 */
async function nativeGeometry(files: string[], concurrency: number): Promise<ImageTarget> {
  const sharp = await loadSharp();
  const counts = new Map<string, number>();
  let colour = false;
  let next = 0;
  const sizes: string[] = new Array(files.length);
  const run = async (): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) {
      let m;
      try {
        m = await sharp(files[i]!).metadata();
      } catch (e) {
        next = files.length;
        throw new DataError(`image failed to decode (${(e as Error).message.split('\n')[0]})`, files[i]!);
      }
      if ((m.channels ?? 3) - (m.hasAlpha ? 1 : 0) >= 3) colour = true;
      sizes[i] = `${m.height}x${m.width}`;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, run));
  for (const s of sizes) counts.set(s, (counts.get(s) ?? 0) + 1);
  let best = sizes[0]!;
  for (const s of sizes) if (counts.get(s)! > counts.get(best)!) best = s;
  const [height, width] = best.split('x').map(Number) as [number, number];
  return { channels: colour ? 3 : 1, height, width };
}

/** Decode files into a uint8 CHW ArraySource at `target`, or a lazy source (see UserImageOptions.lazy). */
async function filesSource(name: string, files: string[], target: ImageTarget, labels: Int32Array | null, classes: string[] | undefined, opts: UserImageOptions): Promise<Source> {
  const per = target.channels * target.height * target.width;
  const lazy = opts.lazy === true || ((opts.lazy ?? 'auto') === 'auto' && files.length * per > (opts.lazyBytes ?? DEFAULT_LAZY_BYTES));
  if (lazy && target.channels === 3) {
    const s = imageFiles(files, labels, { resize: [target.height, target.width], name });
    return { ...s, ...(classes ? { classes } : {}) };
  }
  const data = sharedUint8(files.length * per);
  let next = 0;
  let done = 0;
  const run = async (): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) {
      const img = await decodeImage(files[i]!).catch((e: unknown) => {
        next = files.length; // the first bad file stops every decoder
        throw e;
      });
      const src = target.channels === 1 ? rgbToLuma(img.data, img.width * img.height, 3) : img.data;
      convertPixels(src, img.width, img.height, target.channels, target, data, i * per);
      opts.onProgress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, run));
  const out: ArraySource = { kind: 'array', name, length: files.length, sampleShape: [target.channels, target.height, target.width], layout: 'CHW', dtype: 'uint8', data, labels };
  if (classes) out.classes = classes;
  return out;
}

function checkTarget(t: ImageTarget, where: string): void {
  const ok = (t.channels === 1 || t.channels === 3) && [t.height, t.width].every((d) => Number.isInteger(d) && d > 0);
  if (!ok) throw new DataError(`target must have channels 1 or 3 and a positive integer height and width, got ${JSON.stringify(t)}`, where);
}

async function arrayInput(kind: 'npy' | 'npz' | 'idx', path: string, key?: string): Promise<ArrayInput> {
  return kind === 'npy' ? npyInput(path) : kind === 'npz' ? npzInput(path, key) : idxInput(path);
}

/**
 * An unlabelled image set (an OOD set) converted to `target`: uint8 CHW, `labels: null`. A folder gives
 * an ArraySource (or a lazy ImageFilesSource for big RGB sets); an array gives an ArraySource (or a
 * lazy NpySource when a uint8 file is already at the target).
 */
export async function openImageSet(path: string, target: ImageTarget, opts: UserImageOptions = {}): Promise<Source> {
  checkTarget(target, path);
  const kind = await formatOf(path);
  if (kind !== 'folder') return arrayImages(await arrayInput(kind, path), target, opts);
  const skipped: string[] = [];
  const files = await listImages(path, skipped);
  if (files.length === 0) throw noImages(path, skipped);
  return filesSource(path, files, target, null, undefined, opts);
}

/** The labels file beside an MNIST-named images file, gzipped or not. */
function idxLabelsBeside(images: string): string {
  const name = basename(images);
  const base = name.replace(/images([-.])idx3([-.])ubyte/, 'labels$1idx1$2ubyte');
  if (base === name) {
    throw new DataError('cannot find the labels of an IDX images file not named like MNIST (...-images-idx3-ubyte): pass IMAGES,LABELS', images);
  }
  const plain = base.replace(/\.gz$/, '');
  const tried = [base, plain, `${plain}.gz`].map((n) => join(dirname(images), n));
  const found = tried.find((p) => existsSync(p));
  if (found === undefined) throw new DataError(`no labels file beside it (looked for ${[...new Set(tried)].join(', ')}): pass IMAGES,LABELS`, images);
  return found;
}

const numbered = (count: number): string[] => Array.from({ length: count }, (_, i) => String(i));

/**
 * A labelled image set (the user's in-distribution): a class-folder tree, an IDX pair, or an .npz with
 * members x and y. Without `opts.target` it keeps its own geometry: arrays their channels (RGBA ->
 * RGB) and size; folders the most common image size, RGB if any image has colour, else grey.
 */
export async function openLabelledImageSet(path: string, opts: LabelledImageOptions = {}): Promise<LabelledImageSet> {
  if (opts.target) checkTarget(opts.target, path);
  const pair = path.includes(',') && !existsSync(path) ? path.split(',') : undefined;
  if (pair !== undefined && pair.length !== 2) throw new DataError('an IDX pair is two paths, IMAGES,LABELS', path);
  const imagesPath = pair ? pair[0]! : path;
  const kind = await formatOf(imagesPath);
  if (pair !== undefined && kind !== 'idx') throw new DataError('IMAGES,LABELS names an IDX pair; a folder or an .npz holds its own labels', path);
  let source: Source;
  let classes: string[];
  let namedClasses = false;
  if (kind === 'folder') {
    ({ source, classes } = await classFolderTree(imagesPath, opts));
    namedClasses = true;
  } else if (kind === 'npy') {
    throw new DataError('a .npy holds no labels: save images and labels together with numpy.savez(PATH, x=images, y=labels), or use a class-folder tree or an IDX pair', path);
  } else {
    if (kind === 'npz') {
      const keys = (await NpzFile.open(imagesPath)).keys;
      if (!keys.includes('x') || !keys.includes('y')) {
        throw new DataError(`a labelled .npz needs members x (images) and y (labels), e.g. numpy.savez(PATH, x=images, y=labels); this one has: ${keys.join(', ') || 'none'}`, imagesPath);
      }
    }
    const labelsPath = kind === 'npz' ? imagesPath : pair ? pair[1]! : idxLabelsBeside(imagesPath);
    const labelsInput = kind === 'npz' ? await npzInput(imagesPath, 'y') : await idxInput(labelsPath);
    const images = await arrayInput(kind, imagesPath, 'x').catch(async (e: unknown) => {
      await labelsInput.close();
      throw e;
    });
    let read;
    try {
      read = await readLabels(labelsInput, images.shape[0] ?? 0, images.name);
    } catch (e) {
      await images.close();
      throw e;
    } finally {
      await labelsInput.close();
    }
    classes = numbered(read.count);
    source = await arrayImages(images, opts.target, { ...opts, labels: read.labels, classes });
  }
  const [channels, height, width] = source.sampleShape as [1 | 3, number, number];
  return { path, source, classes, namedClasses, channels, height, width };
}

async function classFolderTree(root: string, opts: LabelledImageOptions): Promise<{ source: Source; classes: string[] }> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    throw new DataError(`cannot list folder: ${(e as Error).message}`, root);
  }
  const classes = entries
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && existsSync(join(root, e.name, '.')))))
    .map((e) => e.name)
    .sort();
  if (classes.length === 0) throw new DataError('a labelled image folder needs one sub-folder per class (root/CLASS/image.png); this one has none', root);
  const files: string[] = [];
  const lab: number[] = [];
  for (let k = 0; k < classes.length; k++) {
    const skipped: string[] = [];
    const inClass = await listImages(join(root, classes[k]!), skipped);
    if (inClass.length === 0) throw noImages(join(root, classes[k]!), skipped);
    for (const f of inClass) {
      files.push(f);
      lab.push(k);
    }
  }
  const labels = sharedInt32(lab.length);
  labels.set(lab);
  const target = opts.target ?? (await nativeGeometry(files, Math.max(1, opts.concurrency ?? 4)));
  return { source: await filesSource(root, files, target, labels, classes, opts), classes };
}

/** Throws unless train and test have the same channels, size and classes (test labels within train's). */
export function checkTrainTest(train: LabelledImageSet, test: LabelledImageSet): void {
  const geo = (s: LabelledImageSet): string => `${s.channels} channel(s) of ${s.height}x${s.width}`;
  if (train.channels !== test.channels || train.height !== test.height || train.width !== test.width) {
    throw new DataError(`test images are ${geo(test)} but the training images (${train.path}) are ${geo(train)}: convert them to one size and channel count, or give both the same target`, test.path);
  }
  if (train.namedClasses && test.namedClasses) {
    const same = train.classes.length === test.classes.length && train.classes.every((c, i) => c === test.classes[i]);
    if (!same) {
      const missing = train.classes.filter((c) => !test.classes.includes(c));
      const extra = test.classes.filter((c) => !train.classes.includes(c));
      throw new DataError(
        `test class folders differ from the training ones (${train.path}): missing [${missing.join(', ')}], extra [${extra.join(', ')}]; both trees need the same class sub-folders (sorted names are the class indices)`,
        test.path,
      );
    }
    return;
  }
  if (test.classes.length > train.classes.length) {
    throw new DataError(`test labels go up to class ${test.classes.length - 1} but the training set (${train.path}) has ${train.classes.length} classes (0..${train.classes.length - 1})`, test.path);
  }
}

/** The user's train and test sets, opened with the same options (and target) and checked to agree. */
export async function openTrainTest(trainPath: string, testPath: string, opts: LabelledImageOptions = {}): Promise<{ train: LabelledImageSet; test: LabelledImageSet; classes: string[] }> {
  const train = await openLabelledImageSet(trainPath, opts);
  const test = await openLabelledImageSet(testPath, opts);
  checkTrainTest(train, test);
  return { train, test, classes: train.classes };
}
