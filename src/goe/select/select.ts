/**
 * `goe select`: scores the baseline on held-out inliers (a seeded subset of the in-distribution
 * test set; no OOD set is read) and on samples drawn at every value of a grid, and applies the
 * criteria of criteria.ts. select.json keeps the evidence; select.md shows it as a table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, mean, noGrad, scope, tensor, type Tensor } from '../../engine/index.ts';
import { DataLoader, Rng, permutation, subset, type ImageTransform, type Source } from '../../data/index.ts';
import { openExperimentInputs, type RunOptions } from '../experiments/runner.ts';
import type { ExperimentConfig, OutlierConfig } from '../experiments/config.ts';
import { scoreSet, type Classifier } from '../train/index.ts';
import { classMeans, featureBandCriterion, mspQuantileCriterion, nearestMeanDistance, type CriterionResult } from './criteria.ts';

export const CRITERIA = ['msp-quantile', 'feature-band'] as const;
export type CriterionName = (typeof CRITERIA)[number];

export interface SelectOptions {
  config: ExperimentConfig;
  /** 'sigma2' (BigGAN outliers) or 'temperature' (LM outliers). */
  param: 'sigma2' | 'temperature';
  grid: number[];
  criteria: CriterionName[];
  /** Baseline weights and the generator's (safetensors). */
  baseline: string;
  generator: string;
  /** The outlier variant whose sampler is used (default: the first BigGAN / LM one). */
  variant?: string;
  /** Experiment options that shape the data (dataDir, download, limit, full, latent scale and mode). */
  run?: Partial<RunOptions>;
  /** Samples per grid value (default 512) and held-out inliers (default 1000). */
  samples?: number;
  holdout?: number;
  /** msp-quantile's q and fraction; feature-band's q and band. */
  mspQuantile?: number;
  fraction?: number;
  featureQuantile?: number;
  bandHigh?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface SelectResult {
  experiment: string;
  param: string;
  grid: number[];
  variant: string;
  holdout: { n: number; from: string };
  samples: number;
  baseline: string;
  generator: string;
  criteria: CriterionResult[];
  seconds: number;
}

interface Scored {
  msp: Float32Array;
  features: Float32Array | null;
  labels: Int32Array | null;
  dim: number;
}

/** MSP (max softmax probability, not the detector's negated score) and, for WRNs, pooled features. */
async function scoreAll(model: Classifier, source: Source, transform: ImageTransform | null, features: boolean, batchSize: number): Promise<Scored> {
  const msp = Float32Array.from((await scoreSet(model, source, { detectors: ['MSP'], batchSize, transform })).scores.MSP!, (s) => -s);
  if (!features) return { msp, features: null, labels: null, dim: 0 };
  const wrn = model as Classifier & { intermediateForward(x: Tensor): Tensor };
  const loader = new DataLoader({ source, batchSize, shuffle: false, transform });
  const parts: Float32Array[] = [];
  const labels: Int32Array[] = [];
  let dim = 0;
  model.eval();
  try {
    for await (const batch of loader.epoch(0)) {
      const f = noGrad(() => scope(() => mean(wrn.intermediateForward(tensor(batch.x, batch.shape)), [2, 3])));
      dim = f.shape[1]!;
      parts.push((await f.data()) as Float32Array);
      f.dispose();
      labels.push(batch.y.slice(0, batch.nIn));
    }
  } finally {
    await loader.close();
  }
  const cat = (xs: ArrayLike<number>[], Ctor: Float32ArrayConstructor | Int32ArrayConstructor): Float32Array | Int32Array => {
    const out = new Ctor(xs.reduce((a, x) => a + x.length, 0));
    let o = 0;
    for (const x of xs) {
      out.set(x as ArrayLike<number>, o);
      o += x.length;
    }
    return out;
  };
  return { msp, features: cat(parts, Float32Array) as Float32Array, labels: cat(labels, Int32Array) as Int32Array, dim };
}

export async function selectParameter(o: SelectOptions): Promise<SelectResult> {
  const t0 = performance.now();
  const log = o.log ?? ((): void => {});
  const c = o.config;
  const kind = o.param === 'sigma2' ? 'biggan' : 'lm';
  const variant = o.variant ?? c.outliers.find((x) => x.kind === kind)?.name;
  const base = c.outliers.find((x) => x.name === variant);
  if (variant === undefined || base === undefined || base.kind !== kind) {
    throw new SelectInputError(`${c.name} has no ${kind === 'biggan' ? 'BigGAN' : 'LM'} outlier variant${variant !== undefined ? ` named ${variant}` : ''}: ${o.param} cannot be chosen for it${o.param === 'sigma2' ? ' (text experiments: temperature)' : ' (image experiments: sigma2)'}`);
  }
  const seed = o.seed ?? c.seed;
  const inputs = await openExperimentInputs(c, { out: '', ...o.run, generator: o.generator, log: o.run?.log });
  const image = inputs.modality === 'image';
  const wantFeatures = o.criteria.includes('feature-band');
  if (wantFeatures && !image) throw new SelectInputError('the feature-band criterion is for image classifiers (WRN features); text experiments: --criterion msp-quantile');
  const model = inputs.classifier();
  await loadModel(o.baseline, model);
  const n = Math.min(o.holdout ?? 1000, inputs.test.length);
  const idx = Array.from(permutation(inputs.test.length, new Rng(seed, 0x5e1)).subarray(0, n)).sort((a, b) => a - b);
  const held = subset(inputs.test, idx);
  const batch = c.evalBatchSize;
  log(`select: baseline ${o.baseline}; ${n} held-out inliers (seeded subset of the in-distribution test set), no OOD data`);
  const inl = await scoreAll(model, held, inputs.evalTransform, wantFeatures, batch);
  const samples = o.samples ?? 512;
  const perValue: { value: number; scored: Scored }[] = [];
  for (const value of [...o.grid].sort((a, b) => a - b)) {
    const oc = { ...base, ...(kind === 'biggan' ? { sigma2: value } : { temperature: value }) } as OutlierConfig;
    const sampler = await inputs.sampler(oc);
    const set = await sampler!.sample(samples, seed + 100);
    const scored = await scoreAll(model, set.source, inputs.evalTransform, wantFeatures, batch);
    perValue.push({ value, scored });
    log(`select: ${o.param} = ${value}: ${set.source.length} samples, median MSP ${median(scored.msp).toFixed(4)}`);
  }
  model.dispose();
  const results: CriterionResult[] = [];
  for (const name of o.criteria) {
    if (name === 'msp-quantile') results.push(mspQuantileCriterion(inl.msp, perValue.map((p) => ({ value: p.value, msp: p.scored.msp })), o.mspQuantile, o.fraction));
    else {
      const means = classMeans(inl.features!, inl.labels!, inl.dim);
      const dist = (s: Scored): Float64Array => nearestMeanDistance(s.features!, s.msp.length, inl.dim, means);
      results.push(featureBandCriterion(dist(inl), perValue.map((p) => ({ value: p.value, distance: dist(p.scored) })), o.featureQuantile, o.bandHigh));
    }
  }
  return {
    experiment: c.name, param: o.param, grid: perValue.map((p) => p.value), variant, holdout: { n, from: 'in-distribution test set, seeded subset' }, samples,
    baseline: o.baseline, generator: o.generator, criteria: results, seconds: (performance.now() - t0) / 1000,
  };
}

function median(a: Float32Array): number {
  const s = Float32Array.from(a).sort();
  return s.length % 2 ? s[(s.length - 1) / 2]! : 0.5 * (s[s.length / 2 - 1]! + s[s.length / 2]!);
}

export class SelectInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectInputError';
  }
}

/** The evidence as markdown tables, one per criterion. */
export function selectMarkdown(r: SelectResult): string {
  const out = [`# ${r.experiment}: choosing ${r.param} without OOD data`, '', `Baseline ${r.baseline}, generator ${r.generator}; ${r.holdout.n} held-out inliers (${r.holdout.from}); ${r.samples} samples per value.`, ''];
  for (const c of r.criteria) {
    const t = Object.entries(c.threshold).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`).join(', ');
    out.push(`## ${c.criterion}: ${r.param} = ${c.chosen}${c.reached ? '' : ' (fallback)'}`, '', `${c.description}. Threshold: ${t}.${c.note ? ` ${c.note}.` : ''}`, '');
    const [med, frac] = c.criterion === 'msp-quantile' ? ['median MSP', 'fraction below tau'] : ['median distance', 'fraction beyond tau'];
    out.push(`| ${r.param} | ${med} | ${frac} | meets | chosen |`, '|---|---|---|---|---|');
    for (const row of c.rows) out.push(`| ${row.value} | ${row.median.toPrecision(4)} | ${row.fraction.toFixed(3)} | ${row.meets ? 'yes' : 'no'} | ${row.value === c.chosen ? '**<-**' : ''} |`);
    out.push('');
  }
  return out.join('\n');
}

/** select.json and select.md into dir. */
export function writeSelect(dir: string, r: SelectResult): string[] {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'select.json'), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(join(dir, 'select.md'), selectMarkdown(r));
  return [join(dir, 'select.json'), join(dir, 'select.md')];
}
