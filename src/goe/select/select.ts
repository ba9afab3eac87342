/**
 * `goe select`: scores the baseline on held-out inliers (a seeded subset of the in-distribution
 * test set; no OOD set is read) and on samples drawn at every value of a grid, and applies the
 * criteria of criteria.ts. select.json keeps the evidence; select.md shows it as a table.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, mean, noGrad, scope, tensor, type Tensor } from '../../engine/index.ts';
import { DataLoader, Rng, permutation, subset, type ImageTransform, type Source } from '../../data/index.ts';
import { openExperimentInputs, type RunOptions } from '../experiments/runner.ts';
import type { ExperimentConfig, OutlierConfig } from '../experiments/config.ts';
import { scoreSet, type Classifier } from '../train/index.ts';
import { classMeans, featureBandCriterion, mspQuantileCriterion, nearestMeanDistance, proxyOodCriterion, type CriterionResult } from './criteria.ts';
import { computeOodMetrics } from '../metrics/index.ts';
import { FileSampler } from '../samplers/index.ts';

export const CRITERIA = ['msp-quantile', 'feature-band', 'proxy-ood'] as const;
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
  /** 'proxy-ood': the sweep folder over this parameter whose point models and outliers it reads (seed-0 points; its values are the grid). */
  sweep?: string;
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
  /**
   * With --sweep DIR holding sweep.json: each choice held against the sweep, on the OOD test sets
   * the criteria never saw (mean AUROC over them, seed-mean): at the chosen value and at the best.
   */
  againstSweep?: { criterion: string; detector: string; chosen: number; aurocAtChosen: number | null; best: number; bestAuroc: number }[];
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
  const sampled = o.criteria.some((x) => x !== 'proxy-ood');
  for (const value of sampled ? [...o.grid].sort((a, b) => a - b) : []) {
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
    if (name === 'proxy-ood') results.push(await proxyOod(o, variant, held, inputs.classifier, inputs.evalTransform, batch, log));
    else if (name === 'msp-quantile') results.push(mspQuantileCriterion(inl.msp, perValue.map((p) => ({ value: p.value, msp: p.scored.msp })), o.mspQuantile, o.fraction));
    else {
      const means = classMeans(inl.features!, inl.labels!, inl.dim);
      const dist = (s: Scored): Float64Array => nearestMeanDistance(s.features!, s.msp.length, inl.dim, means);
      results.push(featureBandCriterion(dist(inl), perValue.map((p) => ({ value: p.value, distance: dist(p.scored) })), o.featureQuantile, o.bandHigh));
    }
  }
  const againstSweep = o.sweep !== undefined && existsSync(join(o.sweep, 'sweep.json')) ? holdAgainstSweep(join(o.sweep, 'sweep.json'), variant, results) : undefined;
  return {
    ...(againstSweep !== undefined ? { againstSweep } : {}),
    experiment: c.name, param: o.param, grid: sampled ? perValue.map((p) => p.value) : [...o.grid].sort((a, b) => a - b), variant, holdout: { n, from: 'in-distribution test set, seeded subset' }, samples,
    baseline: o.baseline, generator: o.generator, criteria: results, seconds: (performance.now() - t0) / 1000,
  };
}

function holdAgainstSweep(file: string, variant: string, criteria: readonly CriterionResult[]): NonNullable<SelectResult['againstSweep']> {
  const sweep = JSON.parse(readFileSync(file, 'utf8')) as { rows: { value: number; variant: string; detector: string; outlier_set: string; metric: string; mean: number }[] };
  const rows = sweep.rows.filter((r) => r.variant === variant && r.outlier_set === 'mean' && r.metric === 'AUROC');
  const out: NonNullable<SelectResult['againstSweep']> = [];
  for (const detector of [...new Set(rows.map((r) => r.detector))]) {
    const mine = rows.filter((r) => r.detector === detector);
    const best = mine.reduce((a, b) => (b.mean > a.mean ? b : a));
    for (const c of criteria) out.push({ criterion: c.criterion, detector, chosen: c.chosen, aurocAtChosen: mine.find((r) => r.value === c.chosen)?.mean ?? null, best: best.value, bestAuroc: best.mean });
  }
  return out;
}

/** 'proxy-ood' over a sweep folder: each finished value's OE model against the next value's outliers. */
async function proxyOod(o: SelectOptions, variant: string, held: Source, classifier: () => Classifier, transform: ImageTransform | null, batch: number, log: (l: string) => void): Promise<CriterionResult> {
  if (o.sweep === undefined) throw new SelectInputError('the proxy-ood criterion reads a sweep over the grid: --sweep DIR (goe sweep EXPERIMENT --param ' + o.param + '=... --out DIR)');
  const planFile = join(o.sweep, 'sweep-plan.json');
  if (!existsSync(planFile)) throw new SelectInputError(`--sweep ${o.sweep} is not a sweep folder (no sweep-plan.json)`);
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as { param: string; values: number[]; seeds: number[] };
  if (plan.param !== o.param) throw new SelectInputError(`--sweep ${o.sweep} sweeps ${plan.param}, not ${o.param}`);
  const seed = plan.seeds[0] ?? 0;
  const point = (v: number): string => join(o.sweep!, 'points', `${plan.param}=${v}`, `seed-${seed}`);
  const done = [...plan.values].sort((a, b) => a - b).filter((v) => existsSync(join(point(v), variant, 'model.safetensors')) && existsSync(join(point(v), 'outliers', `${variant}.npz`)));
  const rows: { value: number; proxy: number; auroc: number; n: number; medianMsp: number }[] = [];
  for (let i = 0; i + 1 < done.length; i++) {
    const model = classifier();
    await loadModel(join(point(done[i]!), variant, 'model.safetensors'), model);
    const proxy = await new FileSampler(join(point(done[i + 1]!), 'outliers', `${variant}.npz`)).sample(0, 0);
    const inS = (await scoreSet(model, held, { detectors: ['MSP'], batchSize: batch, transform })).scores.MSP!;
    const outS = (await scoreSet(model, proxy.source, { detectors: ['MSP'], batchSize: batch, transform })).scores.MSP!;
    model.dispose();
    const auroc = computeOodMetrics(inS, outS).auroc;
    rows.push({ value: done[i]!, proxy: done[i + 1]!, auroc, n: outS.length, medianMsp: -median(Float32Array.from(outS)) });
    log(`select: proxy-ood ${o.param} = ${done[i]} against ${done[i + 1]}'s outliers: AUROC ${(auroc * 100).toFixed(2)}`);
  }
  return proxyOodCriterion(rows);
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
    out.push(`## ${c.criterion}: ${r.param} = ${c.chosen}${c.reached ? '' : ' (fallback)'}`, '', `${c.description}.${t !== '' ? ` Threshold: ${t}.` : ''}${c.note ? ` ${c.note}.` : ''}`, '');
    if (c.criterion === 'proxy-ood') {
      out.push(`| ${r.param} (OE model) | proxy OOD: samples at | median MSP of the proxy | AUROC (MSP) | chosen |`, '|---|---|---|---|---|');
      for (const row of c.rows) out.push(`| ${row.value} | ${row.proxy} | ${row.median.toPrecision(4)} | ${(row.auroc! * 100).toFixed(2)} | ${row.value === c.chosen ? '**<-**' : ''} |`);
      out.push('');
      continue;
    }
    const [med, frac] = c.criterion === 'msp-quantile' ? ['median MSP', 'fraction below tau'] : ['median distance', 'fraction beyond tau'];
    out.push(`| ${r.param} | ${med} | ${frac} | meets | chosen |`, '|---|---|---|---|---|');
    for (const row of c.rows) out.push(`| ${row.value} | ${row.median.toPrecision(4)} | ${row.fraction.toFixed(3)} | ${row.meets ? 'yes' : 'no'} | ${row.value === c.chosen ? '**<-**' : ''} |`);
    out.push('');
  }
  if (r.againstSweep !== undefined) {
    out.push('## Against the sweep (mean AUROC over the OOD test sets, which no criterion saw)', '', `| criterion | detector | chosen ${r.param} | its AUROC | best ${r.param} | best AUROC |`, '|---|---|---|---|---|---|');
    const pct = (v: number | null): string => (v === null ? 'not in the sweep' : (v * 100).toFixed(2));
    for (const a of r.againstSweep) out.push(`| ${a.criterion} | ${a.detector} | ${a.chosen} | ${pct(a.aurocAtChosen)} | ${a.best} | ${pct(a.bestAuroc)} |`);
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
