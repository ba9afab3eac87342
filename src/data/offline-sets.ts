/**
 * What the offline OOD builders share: the set description, 28x28 grey conversion (alpha onto
 * black, ITU-R 601 luma, Pillow-exact resize) and the .npz cache keyed by the inputs' identity.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NpzFile } from './npy.ts';
import { saveNpz } from '../engine/io/node-files.ts';
import { dataDir } from './paths.ts';
import { centerCrop, resample, resizeOutputSize } from './resize.ts';
import { sharedUint8 } from './shared.ts';
import type { ArraySource } from './source.ts';

export const OOD_SIDE = 28;

export interface OfflineSetInfo {
  /** Set name, e.g. 'font-glyphs'. */
  name: string;
  /** 'real' sets make the headline mean; 'noise' sets are reported apart. */
  kind: 'real' | 'noise';
  description: string;
  count: number;
  /** Debian packages the set comes from (what to install when it is missing). */
  packages: string[];
  /** What each image was made from, in order of first use (font files, icon themes, URLs). */
  inputs: string[];
  /** The cache file it was read from or written to, if any. */
  cache?: string;
}

export interface OfflineSet {
  source: ArraySource;
  info: OfflineSetInfo;
}

export interface CacheOptions {
  /** Data folder holding the cache (default: dataDir()). */
  dir?: string;
  /** Read and write the .npz cache (default true). */
  cache?: boolean;
}

/** An unlabelled uint8 CHW source of 1x28x28 images. */
export function greySource(name: string, images: Uint8Array): ArraySource {
  const n = images.length / (OOD_SIDE * OOD_SIDE);
  const data = sharedUint8(images.length);
  data.set(images);
  return { kind: 'array', name, length: n, sampleShape: [1, OOD_SIDE, OOD_SIDE], layout: 'CHW', dtype: 'uint8', data, labels: null };
}

/**
 * Interleaved RGBA (or grey+alpha, RGB, grey) pixels to one grey channel: colour composited onto
 * black (value * alpha / 255), then luma as Pillow's convert('L') (ITU-R 601: 299/587/114 in 16.16).
 */
export function lumaOnBlack(px: Uint8Array, w: number, h: number, channels: number): Uint8Array {
  const out = new Uint8Array(w * h);
  const hasAlpha = channels === 2 || channels === 4;
  for (let i = 0; i < w * h; i++) {
    const p = i * channels;
    const a = hasAlpha ? px[p + channels - 1]! : 255;
    const premul = (v: number): number => Math.round((v * a) / 255);
    if (channels >= 3) {
      const r = premul(px[p]!);
      const g = premul(px[p + 1]!);
      const b = premul(px[p + 2]!);
      out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    } else {
      out[i] = premul(px[p]!);
    }
  }
  return out;
}

/** A grey image to 28x28: Pillow Resize(28) (shorter side, bilinear with antialias) then CenterCrop(28). */
export function toSide28(grey: Uint8Array, w: number, h: number): Uint8Array {
  const [ow, oh] = resizeOutputSize(w, h, OOD_SIDE);
  const resized = resample(grey, w, h, 1, ow, oh, 'bilinear');
  return ow === OOD_SIDE && oh === OOD_SIDE ? resized : centerCrop(resized, ow, oh, 1, OOD_SIDE, OOD_SIDE);
}

/** Pixel standard deviation: near-constant images (a dark symbol on black) are not kept. */
export function pixelStd(img: Uint8Array): number {
  let s = 0;
  let s2 = 0;
  for (const v of img) {
    s += v;
    s2 += v * v;
  }
  const m = s / img.length;
  return Math.sqrt(Math.max(0, s2 / img.length - m * m));
}

/** A cache key from the builder's settings and each input file's path, size and modification time. */
export async function inputsKey(settings: unknown, files: string[]): Promise<string> {
  const h = createHash('sha256').update(JSON.stringify(settings));
  for (const f of files) {
    const st = await stat(f);
    h.update(`\n${f}\t${st.size}\t${st.mtimeMs}`);
  }
  return h.digest('hex').slice(0, 16);
}

/** Read `<dir>/offline-ood/<name>-<key>.npz` (+ .json info) or build it and write both. */
export async function cachedSet(name: string, key: string, opts: CacheOptions, build: () => Promise<{ images: Uint8Array; info: OfflineSetInfo }>): Promise<OfflineSet> {
  const base = join(opts.dir ?? dataDir(), 'offline-ood', `${name}-${key}`);
  const useCache = opts.cache ?? true;
  if (useCache && existsSync(`${base}.npz`) && existsSync(`${base}.json`)) {
    const info = JSON.parse(await readFile(`${base}.json`, 'utf8')) as OfflineSetInfo;
    const x = await (await NpzFile.open(`${base}.npz`)).array('x');
    if (x.data instanceof Uint8Array && x.data.length === info.count * OOD_SIDE * OOD_SIDE) {
      return { source: greySource(name, x.data), info: { ...info, cache: `${base}.npz` } };
    }
  }
  const { images, info } = await build();
  if (!useCache) return { source: greySource(name, images), info };
  await saveNpz(`${base}.npz`, { x: { data: images, shape: [info.count, 1, OOD_SIDE, OOD_SIDE] } });
  await writeFile(`${base}.json`, `${JSON.stringify(info, null, 1)}\n`);
  return { source: greySource(name, images), info: { ...info, cache: `${base}.npz` } };
}
