/**
 * The imagenet experiment's generated outliers: BigGAN-deep samples written as an image folder
 * (the notebook's layout), resumable.
 *
 * - z ~ N(0, std^2 I) from the engine's seeded Philox stream with offsets by row, classes uniform
 *   from a seeded draw over all n at once: image i is the same whatever chunk it is made in, so a
 *   resumed sampling skips the chunks already on disk and the folder equals an uninterrupted one.
 * - Every PNG is written to a hidden temporary name and renamed: a crash never leaves half an
 *   image under a real name (imageFolder skips hidden files).
 * - `<dir>.json` (the set's description) is written last: its presence means the folder is whole.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { noGrad, randn, scope, tensor } from '../../engine/index.ts';
import type { BigGANDeep } from '../../models/biggan-deep.ts';
import { sampleClasses } from '../samplers/index.ts';
import type { LogFn } from '../train/log.ts';
import { readJsonFile, writeJsonAtomic } from '../train/run-files.ts';

const CHUNK = 16;

export function pngName(i: number): string {
  return `img-${String(i).padStart(6, '0')}.png`;
}

/** Writes uint8 CHW images as PNG files (pngName(first + i)) into `dir`, each atomically. */
async function writePngs(dir: string, data: Uint8Array, n: number, c: number, h: number, w: number, first: number): Promise<void> {
  const plane = h * w;
  const hwc = Buffer.alloc(plane * c);
  for (let i = 0; i < n; i++) {
    const at = i * c * plane;
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) hwc[p * c + k] = data[at + k * plane + p]!;
    const name = pngName(first + i);
    const tmp = join(dir, `.${name}.tmp-${process.pid}`);
    await sharp(hwc, { raw: { width: w, height: h, channels: c as 3 } }).png().toFile(tmp);
    renameSync(tmp, join(dir, name));
  }
}

/** The description of a finished folder (`<dir>.json`), or null when the folder is not whole. */
export function finishedSamples(dir: string): Record<string, unknown> | null {
  const file = `${dir}.json`;
  return existsSync(file) ? readJsonFile<Record<string, unknown>>(file, `delete it and run again with --resume to finish ${dir}`) : null;
}

/**
 * Samples `n` BigGAN-deep images into `dir` as PNGs, chunk by chunk (never more than one chunk in
 * memory), uint8 as sample.py converts. With `resume`, chunks whose images all exist are kept;
 * without it the folder is emptied first. Returns the set's description (also in `<dir>.json`).
 */
export async function sampleGenerated(
  G: BigGANDeep, o: { n: number; std: number; truncation: number; seed: number; dir: string; resume: boolean; log: LogFn; describe: Record<string, unknown> },
): Promise<Record<string, unknown>> {
  const { n, std, truncation, seed, dir, log } = o;
  rmSync(`${dir}.json`, { force: true });
  if (!o.resume) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  G.eval();
  G.freezeSpectralNorms(); // W / sigma once for all chunks (the same numbers as per forward)
  const classes = sampleClasses(n, G.numClasses, seed);
  const t0 = performance.now();
  let made = 0;
  let kept = 0;
  for (let done = 0; done < n; done += CHUNK) {
    const m = Math.min(CHUNK, n - done);
    if (o.resume && Array.from({ length: m }, (_, i) => existsSync(join(dir, pngName(done + i)))).every(Boolean)) {
      kept += m;
      continue;
    }
    const px = await noGrad(() => scope(() => {
      const z = randn([m, G.dimZ], { seed, offset: Math.ceil((done * G.dimZ) / 4), std });
      return G.forward(z, tensor(classes.subarray(done, done + m), [m], 'i32'), truncation);
    })).data() as Float32Array;
    const bad = px.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`the generator's image ${done + Math.floor(bad / (px.length / m))} holds ${px[bad]}: are the weights those of this config (--generator-config), converted from the port's checkpoint?`);
    const u8 = new Uint8Array(px.length);
    for (let i = 0; i < px.length; i++) {
      const v = Math.fround(Math.fround(Math.fround(px[i]! + 1) * 255) / 2);
      u8[i] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
    }
    const r = G.resolution;
    await writePngs(dir, u8, m, 3, r, r, done);
    made += m;
    if (made === m || (done / CHUNK) % 50 === 0) log(`[generated] ${done + m}/${n} images (${(made / ((performance.now() - t0) / 1000)).toFixed(2)} images/s)`);
  }
  if (kept > 0) log(`[generated] ${kept} of ${n} images kept from the interrupted sampling in ${dir}`);
  const info = { sampler: 'biggan-deep', config: G.config.output_dim, zStd: std, truncation, n, seed, resolution: G.resolution, ...o.describe };
  writeJsonAtomic(`${dir}.json`, info);
  return info;
}
