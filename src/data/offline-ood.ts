/**
 * OOD test sets for a 1x28x28 grey in-distribution set (Fashion-MNIST) that work offline: glyphs
 * rendered from the system's fonts and icon artwork from Debian packages (always buildable once
 * the packages are installed), the standard downloadable sets (MNIST, KMNIST, notMNIST, CIFAR-10
 * in grey) when they are in the data folder, and Gaussian / uniform noise, reported apart. The
 * headline number is the mean over the `real` sets.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { loadCifar, loadMnist } from './datasets.ts';
import { DataError } from './errors.ts';
import { readIdxPair } from './idx.ts';
import { imageFolder } from './images.ts';
import { buildFontGlyphs } from './font-glyphs.ts';
import { buildIconImages } from './icon-images.ts';
import { cachedSet, greySource, inputsKey, lumaOnBlack, OOD_SIDE, type OfflineSet, toSide28 } from './offline-sets.ts';
import { dataDir } from './paths.ts';
import { download, locate } from './registry.ts';
import { Rng } from './rng.ts';
import { withLabels } from './source.ts';

const PIXELS = OOD_SIDE * OOD_SIDE;

export interface OodGetOptions {
  /** Data folder (default dataDir()). */
  dir?: string;
  /** Download a missing standard set (default false: only what is already in the data folder). */
  download?: boolean;
  /** Read and write the .npz caches of built sets (default true). */
  cache?: boolean;
}

async function folderOf(name: string, opts: OodGetOptions): Promise<string> {
  return opts.download === true ? (await download(name, { dir: opts.dir })).folder : locate(name, { dir: opts.dir });
}

/**
 * Noise images as the OE repository draws them in [-1, 1] (Gaussian: N(0, 0.5^2) clipped;
 * uniform: U(-1, 1)), mapped to bytes by (v + 1) * 127.5. Seeded; not real data.
 */
export function noiseSet(kind: 'gaussian' | 'uniform', count = 2000, seed = 0): OfflineSet {
  const rng = new Rng(seed, kind === 'gaussian' ? 1 : 2);
  const images = new Uint8Array(count * PIXELS);
  for (let i = 0; i < images.length; i++) {
    let v: number;
    if (kind === 'uniform') v = rng.next() * 2 - 1;
    else v = Math.max(-1, Math.min(1, 0.5 * Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next())));
    images[i] = Math.round((v + 1) * 127.5);
  }
  const name = `${kind}-noise`;
  return {
    source: greySource(name, images),
    info: { name, kind: 'noise', description: `${count} images of ${kind} noise (OE repository's scale), seed ${seed}`, count, packages: [], inputs: [] },
  };
}

/** Kuzushiji-MNIST (test: 10,000 images), labels dropped. */
export async function loadKmnist(split: 'train' | 'test' = 'test', opts: OodGetOptions = {}): Promise<OfflineSet> {
  const folder = await folderOf('kmnist', opts);
  const p = split === 'train' ? 'train' : 't10k';
  const src = withLabels(await readIdxPair(join(folder, `${p}-images-idx3-ubyte.gz`), join(folder, `${p}-labels-idx1-ubyte.gz`)), null);
  return { source: { ...src, name: 'kmnist' }, info: { name: 'kmnist', kind: 'real', description: `Kuzushiji-MNIST ${split}`, count: src.length, packages: [], inputs: [folder] } };
}

/** MNIST test (10,000 digits), labels dropped; from the data folder (or downloaded with `download: true`). */
export async function loadMnistOod(opts: OodGetOptions = {}): Promise<OfflineSet> {
  const src = withLabels(await loadMnist('mnist', 'test', { dir: opts.dir, download: opts.download === true }), null);
  return { source: { ...src, name: 'mnist' }, info: { name: 'mnist', kind: 'real', description: 'MNIST test', count: src.length, packages: [], inputs: [join(opts.dir ?? dataDir(), 'mnist')] } };
}

/** notMNIST small: every readable PNG of notMNIST_small/A..J, converted to 28x28 grey; cached as .npz. */
export async function loadNotMnistSmall(opts: OodGetOptions = {}): Promise<OfflineSet> {
  const folder = await folderOf('notmnist-small', opts);
  const src = await imageFolder(join(folder, 'notMNIST_small'), { structure: 'subfolders' });
  const key = await inputsKey({ v: 1 }, [join(folder, 'notMNIST_small.tar.gz')]);
  return cachedSet('notmnist-small', key, opts, async () => {
    const kept: Uint8Array[] = [];
    for (const f of src.files) {
      try {
        const { data, info } = await sharp(f).raw().toBuffer({ resolveWithObject: true });
        kept.push(toSide28(lumaOnBlack(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, info.channels), info.width, info.height));
      } catch {
        // notMNIST_small holds a few empty / truncated files: they are skipped
      }
    }
    const images = new Uint8Array(kept.length * PIXELS);
    kept.forEach((img, k) => images.set(img, k * PIXELS));
    return {
      images,
      info: { name: 'notmnist-small', kind: 'real', description: `notMNIST small: ${kept.length} of ${src.files.length} files readable`, count: kept.length, packages: [], inputs: [folder] },
    };
  });
}

/** CIFAR-10 test in grey: luma (Pillow's convert('L')) of each 32x32 image, resized to 28x28 (Pillow bilinear). */
export async function loadCifar10Grey(opts: OodGetOptions = {}): Promise<OfflineSet> {
  const src = await loadCifar('cifar10', 'test', { dir: opts.dir, download: opts.download === true });
  if (src.layout !== 'CHW' || src.sampleShape.join('x') !== '3x32x32') throw new DataError(`expected 3x32x32 CHW CIFAR images, got ${src.sampleShape.join('x')} ${src.layout}`, src.name);
  const plane = 32 * 32;
  const rgb = new Uint8Array(plane * 3);
  const images = new Uint8Array(src.length * PIXELS);
  for (let i = 0; i < src.length; i++) {
    const chw = src.data.subarray(i * 3 * plane, (i + 1) * 3 * plane) as Uint8Array;
    for (let p = 0; p < plane; p++) {
      rgb[p * 3] = chw[p]!;
      rgb[p * 3 + 1] = chw[plane + p]!;
      rgb[p * 3 + 2] = chw[2 * plane + p]!;
    }
    images.set(toSide28(lumaOnBlack(rgb, 32, 32, 3), 32, 32), i * PIXELS);
  }
  return { source: greySource('cifar10-grey', images), info: { name: 'cifar10-grey', kind: 'real', description: 'CIFAR-10 test, luma, resized 32 -> 28', count: src.length, packages: [], inputs: [src.name] } };
}

export interface FashionMnistOodOptions extends OodGetOptions {
  /** Font root for the glyph set (default /usr/share/fonts). */
  fontRoot?: string;
  /** Icon root for the icon set (default /usr/share/icons). */
  iconRoot?: string;
  /** Images per noise set (default 2000) and their seed (default 0). */
  noiseCount?: number;
  seed?: number;
}

export interface OodSets {
  /** Real data: the headline number is the mean over these. */
  real: OfflineSet[];
  /** Gaussian and uniform noise, reported apart. */
  noise: OfflineSet[];
  /** Sets not available on this machine, with the reason (what to install or fetch). */
  missing: { name: string; reason: string }[];
}

/**
 * Every OOD set for a Fashion-MNIST model that this machine has: font glyphs and icons (built from
 * Debian packages), MNIST, KMNIST, notMNIST and CIFAR-10 grey when in the data folder, and noise.
 */
export async function fashionMnistOodSets(opts: FashionMnistOodOptions = {}): Promise<OodSets> {
  const out: OodSets = { real: [], noise: [], missing: [] };
  const tries: [string, () => Promise<OfflineSet>][] = [
    ['font-glyphs', () => buildFontGlyphs({ root: opts.fontRoot, dir: opts.dir, cache: opts.cache })],
    ['icons', () => buildIconImages({ root: opts.iconRoot, dir: opts.dir, cache: opts.cache })],
    ['mnist', () => loadMnistOod(opts)],
    ['kmnist', () => loadKmnist('test', opts)],
    ['notmnist-small', () => loadNotMnistSmall(opts)],
    ['cifar10-grey', () => loadCifar10Grey(opts)],
  ];
  for (const [name, get] of tries) {
    try {
      out.real.push(await get());
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      out.missing.push({ name, reason: e.message });
    }
  }
  out.noise.push(noiseSet('gaussian', opts.noiseCount, opts.seed), noiseSet('uniform', opts.noiseCount, opts.seed));
  return out;
}
