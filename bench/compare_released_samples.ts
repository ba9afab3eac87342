/**
 * How our BigGAN's samples at each reading of "sigma^2 = 50" compare with the paper's released
 * CIFAR-100 samples (issue 14, "Done when" 2): pytorch-ood's "goe-cifar100-samples",
 * samples-50.0.npz, 50,000 uint8 NCHW images under "x" (an .npy, or NHWC, is read too).
 *
 * For the released set and for samples of the given generator drawn with z ~ N(0, 50^2 I) ('std',
 * BigGAN-PyTorch's z_var, our default) and z ~ N(0, 50 I) ('variance'), it reports the per-channel
 * pixel mean and std, the per-image contrast (the std of an image's pixels, mean over images), the
 * share of saturated pixels (0 or 255), and two distances of the pixel-value histograms to the
 * released set's (per channel, averaged): total variation (0..1) and Wasserstein-1 (in grey levels).
 * The scale with the smaller distances is the one the released samples were drawn at.
 *
 *   node bench/compare_released_samples.ts --generator G.safetensors [--released samples-50.0.npz]
 *        (--generator: G's state dict, or a BigGAN training checkpoint such as a run's
 *        generator/biggan.safetensors, whose G_ema or G is used)
 *        [--n 2000] [--sigma2 50] [--mode train|eval] [--classes 100] [--ch 64] [--json out.json]
 *
 * --released defaults to the data folder's goe-cifar100-samples/samples-50.0.npz (never
 * downloaded here). --ch, --bottom-width, --upsamples, --channels describe G (CIFAR: 64, 4, 3, 3).
 */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { init, loadModel, loadSafetensorsFile, type HostTensor } from '../src/engine/index.ts';
import { NpzFile, loadGoeSamples, readNpy, type ArraySource, type Source } from '../src/data/index.ts';
import { BIGGAN_CHECKPOINT_FORMAT, BigGANGenerator, generateImages } from '../src/models/index.ts';
import { FileSampler, LatentSampler } from '../src/goe/samplers/index.ts';

/** Pixel statistics of a uint8 image set. */
export interface SetStats {
  name: string;
  n: number;
  /** Per channel, in grey levels 0..255. */
  mean: number[];
  std: number[];
  /** Mean over images of the std of each image's pixels (all channels). */
  contrast: number;
  /** Share of pixels at 0 or 255. */
  saturated: number;
  /** Per channel, 256 bins, normalised to sum 1. */
  histogram: Float64Array[];
}

/** The statistics of a uint8 set held in memory (samples stored CHW or HWC). */
export function setStats(src: ArraySource, name = src.name): SetStats {
  if (src.dtype !== 'uint8') throw new Error(`${src.name}: expected uint8 images, got ${src.dtype}`);
  const [C, H, W] = src.sampleShape as [number, number, number]; // [C, H, W] whatever the storage layout
  const hwc = src.layout === 'HWC';
  const HW = H * W;
  const size = C * HW;
  const data = src.data as Uint8Array;
  const hist = Array.from({ length: C }, () => new Float64Array(256));
  const sum = new Float64Array(C);
  const sq = new Float64Array(C);
  let contrast = 0;
  let saturated = 0;
  for (let i = 0; i < src.length; i++) {
    let s = 0;
    let s2 = 0;
    for (let ch = 0; ch < C; ch++) {
      const h = hist[ch]!;
      let cs = 0;
      let cs2 = 0;
      for (let p = 0; p < HW; p++) {
        const v = data[i * size + (hwc ? p * C + ch : ch * HW + p)]!;
        h[v]!++;
        cs += v;
        cs2 += v * v;
        if (v === 0 || v === 255) saturated++;
      }
      sum[ch]! += cs;
      sq[ch]! += cs2;
      s += cs;
      s2 += cs2;
    }
    const m = s / size;
    contrast += Math.sqrt(Math.max(0, s2 / size - m * m));
  }
  const count = src.length * HW;
  const mean = Array.from(sum, (x) => x / count);
  const std = Array.from(sq, (x, ch) => Math.sqrt(Math.max(0, x / count - mean[ch]! ** 2)));
  for (const h of hist) for (let v = 0; v < 256; v++) h[v]! /= count;
  return { name, n: src.length, mean, std, contrast: contrast / src.length, saturated: saturated / (src.length * size), histogram: hist };
}

/** Total variation (0..1) and Wasserstein-1 (grey levels) between two sets' histograms, averaged over channels. */
export function histogramDistance(x: SetStats, y: SetStats): { tv: number; w1: number } {
  if (x.histogram.length !== y.histogram.length) throw new Error(`${x.name} has ${x.histogram.length} channels, ${y.name} ${y.histogram.length}`);
  let tv = 0;
  let w1 = 0;
  for (let ch = 0; ch < x.histogram.length; ch++) {
    const hx = x.histogram[ch]!;
    const hy = y.histogram[ch]!;
    let cx = 0;
    let cy = 0;
    for (let v = 0; v < 256; v++) {
      tv += Math.abs(hx[v]! - hy[v]!) / 2;
      cx += hx[v]!;
      cy += hy[v]!;
      w1 += Math.abs(cx - cy); // the L1 distance of the CDFs: the earth mover's distance in grey levels
    }
  }
  return { tv: tv / x.histogram.length, w1: w1 / x.histogram.length };
}

export interface CompareOptions {
  generator: string;
  /** The released samples (.npz "x" or .npy); default: the data folder's samples-50.0.npz. */
  released?: string;
  dataDir?: string;
  /** Images drawn from each set (the released set: a seeded subset). */
  n?: number;
  sigma2?: number;
  mode?: 'train' | 'eval';
  classes?: number;
  ch?: number;
  bottomWidth?: number;
  upsamples?: number;
  channels?: number;
  /** Images generated per batch (the BigGAN batch of 50: train-mode BatchNorm statistics are over it). */
  chunk?: number;
  seed?: number;
}

export interface CompareResult {
  released: string;
  sets: { stats: Omit<SetStats, 'histogram'>; tv: number | null; w1: number | null }[];
  /** The latent scale whose samples are nearer the released ones by both distances, else null. */
  closer: 'std' | 'variance' | null;
}

/** `n` images of the set in memory: a seeded subset, or the whole file when it has at most n. */
async function inMemory(src: Source, n: number, seed: number, path: string): Promise<ArraySource> {
  if (src.kind === 'array' && src.length <= n) return src;
  if (src.length > n) {
    const set = await new FileSampler(path).sample(n, seed);
    if (set.source.kind === 'array') return set.source;
  }
  // a lazily read file of at most n images: read it whole, in the geometry the reader found
  const a = path.endsWith('.npz') ? await (await NpzFile.open(path)).array('x') : await readNpy(path);
  return { kind: 'array', name: src.name, length: src.length, sampleShape: src.sampleShape, layout: src.layout, dtype: 'uint8', data: a.data as Uint8Array, labels: null };
}

export async function compareReleasedSamples(o: CompareOptions): Promise<CompareResult> {
  await init();
  const n = o.n ?? 2000;
  const seed = o.seed ?? 0;
  let path = o.released;
  let released: Source;
  if (path === undefined) {
    released = await loadGoeSamples(50, { dir: o.dataDir, download: false });
    path = released.kind === 'npy' ? released.path : released.name;
  } else {
    released = await new FileSampler(path).open();
  }
  const rel = setStats(await inMemory(released, n, seed, path), `released (${path.split('/').pop()})`);
  const G = new BigGANGenerator({ nClasses: o.classes ?? 100, ch: o.ch ?? 64, outChannels: o.channels ?? 3, bottomWidth: o.bottomWidth ?? 4, upsamples: o.upsamples ?? 3 });
  try {
    await loadGenerator(o.generator, G);
    const sets: CompareResult['sets'] = [{ stats: strip(rel), tv: null, w1: null }];
    const d: Record<string, { tv: number; w1: number }> = {};
    for (const scale of ['std', 'variance'] as const) {
      const sampler = new LatentSampler({
        sigma2: o.sigma2 ?? 50, scale, mode: o.mode ?? 'train', chunk: o.chunk ?? 50,
        generator: { dimZ: G.dimZ, numClasses: G.nClasses, generate: (z, y) => generateImages(G, z, y), eval: () => G.eval(), train: () => G.train() },
      });
      const set = await sampler.sample(n, seed + 1);
      const st = setStats(set.source as ArraySource, `ours, ${scale === 'std' ? `z std ${o.sigma2 ?? 50}` : `z variance ${o.sigma2 ?? 50}`} (${o.mode ?? 'train'} mode)`);
      d[scale] = histogramDistance(st, rel);
      sets.push({ stats: strip(st), ...d[scale]! });
    }
    const closer = d.std!.tv < d.variance!.tv && d.std!.w1 < d.variance!.w1 ? 'std' : d.variance!.tv < d.std!.tv && d.variance!.w1 < d.std!.w1 ? 'variance' : null;
    return { released: path, sets, closer };
  } finally {
    G.dispose();
  }
}

/**
 * G's weights from a plain state dict (generator/G.safetensors, a converted BigGAN-PyTorch G) or
 * from a BigGAN training checkpoint (generator/biggan.safetensors: its G_ema when kept, else G).
 */
async function loadGenerator(path: string, G: BigGANGenerator): Promise<void> {
  const file = await loadSafetensorsFile(path);
  if (file.metadata.format !== BIGGAN_CHECKPOINT_FORMAT) {
    await loadModel(path, G);
    return;
  }
  const prefix = [...file.tensors.keys()].some((k) => k.startsWith('G_ema.')) ? 'G_ema.' : 'G.';
  const state = new Map<string, HostTensor>();
  for (const [k, t] of file.tensors) if (k.startsWith(prefix)) state.set(k.slice(prefix.length), { shape: t.shape, data: t.data as Float32Array });
  G.loadStateDict(state);
}

function strip(s: SetStats): Omit<SetStats, 'histogram'> {
  const { histogram: _, ...rest } = s;
  return rest;
}

export function formatComparison(r: CompareResult): string {
  const f = (v: number[]) => v.map((x) => x.toFixed(1)).join(' / ');
  const lines = ['| set | n | mean per channel | std per channel | contrast | saturated | TV to released | W1 to released |', '|---|---|---|---|---|---|---|---|'];
  for (const s of r.sets) {
    lines.push(`| ${s.stats.name} | ${s.stats.n} | ${f(s.stats.mean)} | ${f(s.stats.std)} | ${s.stats.contrast.toFixed(1)} | ${(s.stats.saturated * 100).toFixed(1)}% | ${s.tv === null ? '-' : s.tv.toFixed(3)} | ${s.w1 === null ? '-' : s.w1.toFixed(1)} |`);
  }
  lines.push('', r.closer === null ? 'Neither latent scale is nearer by both distances.' : `Nearer the released samples by both distances: z ~ N(0, ${r.closer === 'std' ? '50^2' : '50'} I) ('${r.closer}').`);
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values: a } = parseArgs({
    options: {
      generator: { type: 'string' }, released: { type: 'string' }, 'data-dir': { type: 'string' }, n: { type: 'string' }, sigma2: { type: 'string' },
      mode: { type: 'string' }, classes: { type: 'string' }, ch: { type: 'string' }, 'bottom-width': { type: 'string' }, upsamples: { type: 'string' },
      channels: { type: 'string' }, chunk: { type: 'string' }, seed: { type: 'string' }, json: { type: 'string' },
    },
  });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  if (a.generator === undefined) {
    console.error('compare_released_samples: --generator G.safetensors is required (the BigGAN G weights whose samples are compared)');
    process.exit(2);
  }
  if (a.mode !== undefined && a.mode !== 'train' && a.mode !== 'eval') {
    console.error(`compare_released_samples: --mode takes train or eval, got "${a.mode}"`);
    process.exit(2);
  }
  try {
    const r = await compareReleasedSamples({
      generator: a.generator, released: a.released, dataDir: a['data-dir'], n: num(a.n), sigma2: num(a.sigma2), mode: a.mode as 'train' | 'eval' | undefined,
      classes: num(a.classes), ch: num(a.ch), bottomWidth: num(a['bottom-width']), upsamples: num(a.upsamples), channels: num(a.channels), chunk: num(a.chunk), seed: num(a.seed),
    });
    console.log(formatComparison(r));
    if (a.json !== undefined) writeFileSync(a.json, JSON.stringify(r, null, 2) + '\n');
  } catch (e) {
    console.error(`compare_released_samples: ${(e as Error).message.split('\n')[0]}`);
    process.exit(2);
  }
}
