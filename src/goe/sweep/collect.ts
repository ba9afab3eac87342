/**
 * `goe sweep --collect DIR`: joins the point folders (whichever have finished, however they were
 * run) into sweep.json, sweep.csv, sweep.md and the plots. Per point (parameter value), outlier
 * variant, detector, OOD set (and their mean) and metric: the mean over seeds, the sample standard
 * deviation and the 95% t-interval (stats.ts), with every seed's value beside them; the
 * in-distribution accuracy likewise (detector and set "-"). The baseline (base/, no outliers) is
 * reported apart and drawn as a dashed rule.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PLAN_FILE, type SweepPlan } from './plan.ts';
import { meanCi } from './stats.ts';
import { sweepPlotSvg, writeSvgPng, type SweepPlotPoint } from './plots.ts';

export const METRICS = ['AUROC', 'AUPR-IN', 'AUPR-OUT', 'FPR95TPR'] as const;

interface ResultsRow { detector: string; outlier_set: string; [metric: string]: string | number }
interface ResultsJson { variants: { outliers: string; accuracy: number | null; rows: ResultsRow[] }[] }

export interface SweepRow {
  value: number;
  variant: string;
  detector: string;
  outlier_set: string;
  metric: string;
  n: number;
  mean: number;
  std: number | null;
  ci95_low: number | null;
  ci95_high: number | null;
  seeds: number[];
  values: number[];
}

export interface SweepJson {
  experiment: string;
  param: string;
  values: number[];
  seeds: number[];
  variants: string[];
  interval: string;
  units: 'fraction';
  baseline: { accuracy: number | null; rows: ResultsRow[] } | null;
  /** Per variant and detector, the value with the best mean AUROC over the OOD sets' mean. */
  best: { variant: string; detector: string; value: number; AUROC: number }[];
  rows: SweepRow[];
  /** Points whose folder exists but has no results.json yet. */
  unfinished: string[];
}

export function readPlan(dir: string): SweepPlan {
  const file = join(dir, PLAN_FILE);
  if (!existsSync(file)) throw new Error(`${dir} is not a sweep folder (no ${PLAN_FILE}); run goe sweep EXPERIMENT --param ... --out ${dir} first`);
  return JSON.parse(readFileSync(file, 'utf8')) as SweepPlan;
}

/** Every finished point folder under DIR/points: value, seed, results. */
function finishedPoints(dir: string, plan: SweepPlan): { points: { value: number; seed: number; results: ResultsJson }[]; unfinished: string[] } {
  const root = join(dir, 'points');
  const points: { value: number; seed: number; results: ResultsJson }[] = [];
  const unfinished: string[] = [];
  if (!existsSync(root)) return { points, unfinished };
  for (const name of readdirSync(root).sort()) {
    const m = new RegExp(`^${plan.param}=(.+)$`).exec(name);
    if (m === null || !Number.isFinite(Number(m[1]))) continue;
    for (const s of readdirSync(join(root, name)).sort()) {
      const sm = /^seed-(\d+)$/.exec(s);
      if (sm === null) continue;
      const file = join(root, name, s, 'results.json');
      if (!existsSync(file)) {
        unfinished.push(join(name, s));
        continue;
      }
      points.push({ value: Number(m[1]), seed: Number(sm[1]), results: JSON.parse(readFileSync(file, 'utf8')) as ResultsJson });
    }
  }
  return { points, unfinished };
}

/** The sweep's table from the folders (nothing written). */
export function collectSweep(dir: string): SweepJson {
  const plan = readPlan(dir);
  const { points, unfinished } = finishedPoints(dir, plan);
  const groups = new Map<string, { key: Omit<SweepRow, 'n' | 'mean' | 'std' | 'ci95_low' | 'ci95_high' | 'seeds' | 'values'>; seeds: number[]; values: number[] }>();
  const push = (key: Omit<SweepRow, 'n' | 'mean' | 'std' | 'ci95_low' | 'ci95_high' | 'seeds' | 'values'>, seed: number, v: number): void => {
    const k = JSON.stringify(key);
    const g = groups.get(k) ?? { key, seeds: [], values: [] };
    g.seeds.push(seed);
    g.values.push(v);
    groups.set(k, g);
  };
  for (const p of [...points].sort((a, b) => a.value - b.value || a.seed - b.seed)) {
    for (const v of p.results.variants) {
      if (v.accuracy !== null) push({ value: p.value, variant: v.outliers, detector: '-', outlier_set: '-', metric: 'accuracy' }, p.seed, v.accuracy);
      for (const r of v.rows) for (const m of METRICS) if (typeof r[m] === 'number') push({ value: p.value, variant: v.outliers, detector: r.detector, outlier_set: r.outlier_set, metric: m }, p.seed, r[m] as number);
    }
  }
  const rows: SweepRow[] = [...groups.values()].map((g) => {
    const ci = meanCi(g.values);
    return { ...g.key, n: ci.n, mean: ci.mean, std: ci.std, ci95_low: ci.low, ci95_high: ci.high, seeds: g.seeds, values: g.values };
  });
  const baseFile = join(dir, 'base', 'results.json');
  let baseline: SweepJson['baseline'] = null;
  if (existsSync(baseFile)) {
    const none = (JSON.parse(readFileSync(baseFile, 'utf8')) as ResultsJson).variants.find((v) => v.outliers === 'none');
    if (none !== undefined) baseline = { accuracy: none.accuracy, rows: none.rows };
  }
  const best: SweepJson['best'] = [];
  const meanAuroc = rows.filter((r) => r.metric === 'AUROC' && r.outlier_set === 'mean');
  for (const key of new Set(meanAuroc.map((r) => `${r.variant}\u0000${r.detector}`))) {
    const [variant, detector] = key.split('\u0000') as [string, string];
    const top = meanAuroc.filter((r) => r.variant === variant && r.detector === detector).reduce((a, b) => (b.mean > a.mean ? b : a));
    best.push({ variant, detector, value: top.value, AUROC: top.mean });
  }
  return {
    experiment: plan.experiment, param: plan.param, values: [...new Set(points.map((p) => p.value))].sort((a, b) => a - b), seeds: [...new Set(points.map((p) => p.seed))].sort((a, b) => a - b),
    variants: plan.variants, interval: 'mean over seeds +- t(0.975, n - 1) * s / sqrt(n) (none for one seed)', units: 'fraction', baseline, best, rows, unfinished,
  };
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function sweepCsv(s: SweepJson): string {
  const head = ['param', 'value', 'variant', 'detector', 'outlier_set', 'metric', 'n', 'mean', 'std', 'ci95_low', 'ci95_high', ...s.seeds.map((x) => `seed_${x}`)];
  const lines = [head.join(',')];
  for (const r of s.rows) {
    const perSeed = s.seeds.map((x) => {
      const i = r.seeds.indexOf(x);
      return i < 0 ? '' : r.values[i];
    });
    lines.push([s.param, r.value, r.variant, r.detector, r.outlier_set, r.metric, r.n, r.mean, r.std, r.ci95_low, r.ci95_high, ...perSeed].map(csvCell).join(','));
  }
  return lines.join('\n') + '\n';
}

function pct(v: number | null): string {
  return v === null ? '' : (v * 100).toFixed(2);
}

export function sweepMarkdown(s: SweepJson): string {
  const out = [`# ${s.experiment}: sweep over ${s.param}`, '', `Mean over the OOD sets, in %; ${s.seeds.length} seed(s) (${s.seeds.join(', ')}); +- is the 95% t-interval's half width over seeds.`, ''];
  if (s.baseline !== null) {
    const b = s.baseline.rows.filter((r) => r.outlier_set === 'mean').map((r) => `${r.detector} AUROC ${pct(r.AUROC as number)} / FPR95 ${pct(r.FPR95TPR as number)}`);
    out.push(`Baseline (no outliers): ${b.join('; ')}${s.baseline.accuracy !== null ? `; accuracy ${pct(s.baseline.accuracy)}%` : ''}`, '');
  }
  out.push(`| ${s.param} | variant | detector | AUROC | FPR95TPR | accuracy |`, '|---|---|---|---|---|---|');
  const cell = (r: SweepRow | undefined): string => (r === undefined ? '' : `${pct(r.mean)}${r.ci95_high !== null ? ` +- ${pct(r.ci95_high - r.mean)}` : ''}`);
  const mean = s.rows.filter((r) => r.outlier_set === 'mean');
  for (const value of s.values) {
    for (const variant of s.variants) {
      for (const d of [...new Set(mean.map((r) => r.detector))]) {
        const get = (m: string): SweepRow | undefined => mean.find((r) => r.value === value && r.variant === variant && r.detector === d && r.metric === m);
        if (get('AUROC') === undefined) continue;
        out.push(`| ${value} | ${variant} | ${d} | ${cell(get('AUROC'))} | ${cell(get('FPR95TPR'))} | ${cell(s.rows.find((r) => r.value === value && r.variant === variant && r.metric === 'accuracy'))} |`);
      }
    }
  }
  out.push('', 'Best mean AUROC per variant and detector: ' + s.best.map((b) => `${b.variant} / ${b.detector} at ${s.param} = ${b.value} (${pct(b.AUROC)})`).join('; '), '');
  if (s.unfinished.length > 0) out.push(`Unfinished points (not in the table): ${s.unfinished.join(', ')}`, '');
  out.push('![AUROC](sweep-AUROC.svg)', '', '![FPR95TPR](sweep-FPR95TPR.svg)', '');
  return out.join('\n');
}

/** The plot points of one metric: the OOD sets' mean, per value, variant and detector. */
export function plotPoints(s: SweepJson, metric: string): SweepPlotPoint[] {
  return s.rows
    .filter((r) => r.metric === metric && r.outlier_set === 'mean')
    .map((r) => ({ x: r.value, variant: r.variant, detector: r.detector, mean: r.mean, low: r.ci95_low ?? r.mean, high: r.ci95_high ?? r.mean }));
}

/** Collects and writes sweep.json, sweep.csv, sweep.md and the plots into DIR; returns the table and the files written. */
export async function writeSweep(dir: string): Promise<{ sweep: SweepJson; files: string[] }> {
  const s = collectSweep(dir);
  if (s.rows.length === 0) throw new Error(`no finished point in ${join(dir, 'points')} yet (${s.unfinished.length} unfinished)`);
  writeFileSync(join(dir, 'sweep.json'), JSON.stringify(s, null, 2) + '\n');
  writeFileSync(join(dir, 'sweep.csv'), sweepCsv(s));
  writeFileSync(join(dir, 'sweep.md'), sweepMarkdown(s));
  const files = ['sweep.json', 'sweep.csv', 'sweep.md'];
  for (const metric of ['AUROC', 'FPR95TPR']) {
    const baseline = s.baseline === null ? undefined : Object.fromEntries(s.baseline.rows.filter((r) => r.outlier_set === 'mean').map((r) => [r.detector, r[metric] as number]));
    files.push(...(await writeSvgPng(dir, `sweep-${metric}`, await sweepPlotSvg({ param: s.param, metric, points: plotPoints(s, metric), baseline }))));
  }
  return { sweep: s, files };
}
