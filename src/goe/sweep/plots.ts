/**
 * The sweep's and the convergence curves' figures, as the run figures are made: a Vega-Lite spec
 * rendered to SVG by Vega's headless renderer, then PNG through sharp (src/goe/report/charts.ts).
 *
 * Sweep plots (paper Fig. 2, 3, 5): one metric against the swept parameter, one line per variant
 * and detector with its 95% confidence band (over seeds; none with one seed), the baseline (no
 * outliers) as a dashed rule per detector. Axes: sigma^2 on a symlog axis (log-like above 1,
 * linear through 0, so sigma^2 = 0 is drawn where it is: Vega's symlog with constant 1), the
 * outlier count on a log axis (as Fig. 5), temperature and lambda linear.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { PALETTE, svgToPng, vegaLiteSvg } from '../report/index.ts';
import type { VariantReport } from '../train/report.ts';

export interface SweepPlotPoint {
  /** The parameter's value. */
  x: number;
  variant: string;
  detector: string;
  mean: number;
  /** The 95% interval; equal to mean with a single seed. */
  low: number;
  high: number;
}

export interface SweepPlotInput {
  param: string;
  /** 'AUROC', 'FPR95TPR', ... (fractions; drawn in %). */
  metric: string;
  points: readonly SweepPlotPoint[];
  /** The baseline's value per detector (no outliers). */
  baseline?: Record<string, number>;
  title?: string;
  width?: number;
  height?: number;
}

const CONFIG = { font: 'DejaVu Sans, sans-serif', view: { stroke: '#ddd' }, axis: { grid: true, gridColor: '#eee' }, legend: { labelLimit: 0 } };

/** The x scale of a swept parameter: symlog for sigma^2 (0 included), log for counts, linear otherwise. */
export function paramScale(param: string): { type: 'symlog'; constant: number } | { type: 'log' } | { type: 'linear' } {
  if (param === 'sigma2') return { type: 'symlog', constant: 1 };
  if (param === 'count') return { type: 'log' };
  return { type: 'linear' };
}

export const PARAM_TITLES: Record<string, string> = {
  sigma2: 'latent scale sigma^2 (symlog axis)',
  temperature: 'sampling temperature T',
  count: 'number of outliers (log axis)',
  lambda: 'OE weight lambda',
};

const LOWER_IS_BETTER = new Set(['FPR95TPR']);

/** The SVG of one sweep plot. */
export async function sweepPlotSvg(input: SweepPlotInput): Promise<string> {
  const series = (p: { variant: string; detector: string }): string => `${p.variant} / ${p.detector}`;
  const rows = input.points.map((p) => ({ x: p.x, series: series(p), mean: p.mean * 100, low: p.low * 100, high: p.high * 100 }));
  const names = [...new Set(rows.map((r) => r.series))];
  const detectors = [...new Set(input.points.map((p) => p.detector))];
  const base = Object.entries(input.baseline ?? {}).filter(([d]) => detectors.includes(d)).map(([d, v]) => ({ series: `no outliers / ${d}`, y: v * 100 }));
  const colours = { domain: [...names, ...base.map((b) => b.series)], range: PALETTE.slice(0, names.length + base.length).concat() };
  // ticks at the swept values on the symlog / log axes (their automatic ticks skip most of them)
  const ticks = paramScale(input.param).type === 'linear' ? {} : { axis: { values: [...new Set(input.points.map((p) => p.x))].sort((p, q) => p - q), format: '~r' } };
  const x = { field: 'x', type: 'quantitative' as const, title: PARAM_TITLES[input.param] ?? input.param, scale: { ...paramScale(input.param), nice: false }, ...ticks };
  const yTitle = `${input.metric} (%)${LOWER_IS_BETTER.has(input.metric) ? ', lower is better' : ''}`;
  const layers: TopLevelSpec[] | object[] = [
    { data: { values: rows }, mark: { type: 'line', point: true, strokeWidth: 1.5 }, encoding: { x, y: { field: 'mean', type: 'quantitative', title: yTitle, scale: { zero: false } }, color: { field: 'series', type: 'nominal', title: 'outliers / detector', scale: colours, legend: { symbolType: 'stroke', symbolStrokeWidth: 2 } } } },
    { data: { values: rows }, mark: { type: 'area', opacity: 0.18 }, encoding: { x, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' }, color: { field: 'series', type: 'nominal', scale: colours } } },
  ];
  if (base.length > 0) (layers as object[]).push({ data: { values: base }, mark: { type: 'rule', strokeDash: [5, 4], strokeWidth: 1.2 }, encoding: { y: { field: 'y', type: 'quantitative' }, color: { field: 'series', type: 'nominal', scale: colours } } });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: input.title ?? `${input.metric} against ${input.param} (mean over OOD sets; band: 95% CI over seeds)`, anchor: 'start' },
    width: input.width ?? 420,
    height: input.height ?? 260,
    config: CONFIG,
    layer: layers,
  } as TopLevelSpec;
  return vegaLiteSvg(spec);
}

/** Writes `<prefix>-<metric>.svg` and `.png` into dir; returns the file names. */
export async function writeSvgPng(dir: string, name: string, svg: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.svg`), svg);
  writeFileSync(join(dir, `${name}.png`), await svgToPng(svg));
  return [`${name}.svg`, `${name}.png`];
}

/** The SVG of a run's convergence curves for one metric: one line per variant and detector against the fine-tuning step. */
export async function convergenceSvg(variants: readonly VariantReport[], detectors: readonly string[], metric: string, width = 420, height = 260): Promise<string> {
  const rows: { step: number; series: string; value: number }[] = [];
  for (const v of variants) {
    for (const p of v.curve ?? []) for (const d of detectors) if (p.mean[d]?.[metric] !== undefined) rows.push({ step: p.step, series: `${v.outliers} / ${d}`, value: p.mean[d]![metric]! * 100 });
  }
  const names = [...new Set(rows.map((r) => r.series))];
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${metric} during OE fine-tuning (mean over OOD sets; step 0 = the starting model)`, anchor: 'start' },
    width,
    height,
    config: CONFIG,
    data: { values: rows },
    mark: { type: 'line', point: true, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'fine-tuning step' },
      y: { field: 'value', type: 'quantitative', title: `${metric} (%)`, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: 'outliers / detector', scale: { domain: names, range: PALETTE.slice(0, names.length).concat() } },
    },
  } as TopLevelSpec;
  return vegaLiteSvg(spec);
}

/** convergence-AUROC / convergence-FPR95TPR (.svg, .png) in the run folder; returns the files. */
export async function writeConvergenceFigures(dir: string, variants: readonly VariantReport[], detectors: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const metric of ['AUROC', 'FPR95TPR']) files.push(...(await writeSvgPng(dir, `convergence-${metric}`, await convergenceSvg(variants, detectors, metric))));
  return files;
}
