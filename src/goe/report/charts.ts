/**
 * Score histograms and ROC curves as SVG, drawn by Vega-Lite (compiled to Vega, rendered by
 * Vega's headless SVG renderer: no browser, no canvas), and as PNG through sharp (librsvg).
 *
 * The ROC points come from the same tie groups whose area src/goe/metrics reports, so the
 * curve drawn is the one whose AUROC the legend prints. Big curves are thinned to what the eye
 * can see (Ramer-Douglas-Peucker, tolerance a fraction of a pixel) before they enter the SVG.
 */
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import {
  computeFromSorted, resolveOptions, sortedScores, swapClassesAndNegate, tieGroupsFromSorted,
  type OodMetricOptions, type ScoreArray, type TieGroups,
} from '../metrics/index.ts';

/** Colours of the populations and curves (Vega's "tableau10", in order). */
export const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'] as const;
export const IN_COLOUR = PALETTE[0];
export const OOD_COLOUR = PALETTE[1];
/** Percent decimals of AUROC in legends: the tables' precision. */
export const AUROC_DECIMALS = 2;

export interface RocCurve {
  /** False-positive rates, ascending from 0 to 1. */
  fpr: Float64Array;
  /** True-positive rates, same length. */
  tpr: Float64Array;
}

/**
 * The ROC curve of a tie-grouped ranking: (0, 0), then one point per distinct score from the
 * highest down, ending at (1, 1). Its trapezoid area is exactly `rocArea(groups)`.
 */
export function rocFromGroups(groups: TieGroups): RocCurve {
  const n = groups.positives.length;
  const fpr = new Float64Array(n + 1);
  const tpr = new Float64Array(n + 1);
  let tp = 0;
  let fp = 0;
  for (let g = 0; g < n; g++) {
    tp += groups.positives[g]!;
    fp += groups.negatives[g]!;
    tpr[g + 1] = tp / groups.totalPositives;
    fpr[g + 1] = fp / groups.totalNegatives;
  }
  return { fpr, tpr };
}

/**
 * The ROC curve of in-distribution vs OOD outlier scores under the metric convention: OOD
 * positive (default: FPR = in-distribution flagged, TPR = OOD flagged) or in-distribution
 * positive (FPR = OOD accepted, TPR = in-distribution accepted).
 */
export function rocCurve(inScores: ScoreArray, oodScores: ScoreArray, options?: OodMetricOptions): RocCurve {
  const { convention } = resolveOptions(options);
  const groups = tieGroupsFromSorted(sortedScores(oodScores, 'OOD'), sortedScores(inScores, 'in-distribution'));
  return rocFromGroups(convention === 'ood-positive' ? groups : swapClassesAndNegate(groups));
}

/**
 * Indices of the points of a polyline kept by Ramer-Douglas-Peucker: every dropped point lies
 * within `tolerance` of the kept polyline. The first and last points are always kept.
 */
export function thinPolyline(x: ArrayLike<number>, y: ArrayLike<number>, tolerance: number): number[] {
  const n = x.length;
  if (n <= 2) return Array.from({ length: n }, (_, i) => i);
  const keep = new Uint8Array(n);
  keep[0] = 1;
  keep[n - 1] = 1;
  const stack: [number, number][] = [[0, n - 1]];
  while (stack.length > 0) {
    const [a, b] = stack.pop()!;
    const dx = x[b]! - x[a]!;
    const dy = y[b]! - y[a]!;
    const length = Math.hypot(dx, dy);
    let worst = -1;
    let worstDistance = tolerance;
    for (let i = a + 1; i < b; i++) {
      const px = x[i]! - x[a]!;
      const py = y[i]! - y[a]!;
      const distance = length === 0 ? Math.hypot(px, py) : Math.abs(px * dy - py * dx) / length;
      if (distance > worstDistance) {
        worstDistance = distance;
        worst = i;
      }
    }
    if (worst >= 0) {
      keep[worst] = 1;
      stack.push([a, worst], [worst, b]);
    }
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (keep[i]) out.push(i);
  return out;
}

/** Renders a Vega-Lite spec to an SVG string (Vega's headless renderer). */
export async function vegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** An SVG rasterised by librsvg; `density` 96 keeps the SVG's pixel size, 192 doubles it. */
export function svgToPng(svg: string, density = 144): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density }).flatten({ background: '#ffffff' }).png().toBuffer();
}

export interface ScoreSets {
  /** Detector name, for titles. */
  detector: string;
  inName: string;
  inScores: ScoreArray;
  ood: readonly { name: string; scores: ScoreArray }[];
}

export interface ChartOptions extends OodMetricOptions {
  /** Plot width and height of one panel in pixels (default 320 x 240 for ROC, 220 x 130 for histograms). */
  width?: number;
  height?: number;
  /** Histogram bins (default 40). */
  bins?: number;
  /** Histogram panels per row (default 3). */
  columns?: number;
}

const CHART_CONFIG = { font: 'DejaVu Sans, sans-serif', view: { stroke: '#ddd' }, axis: { grid: true, gridColor: '#eee' }, legend: { labelLimit: 0 } };

function percent(value: number): string {
  return (value * 100).toFixed(AUROC_DECIMALS);
}

/**
 * ROC curves of one detector, one line per OOD set, each legend entry "<set> (AUROC xx.xx)"
 * with the AUROC of src/goe/metrics in percent; the chance diagonal dashed.
 */
export async function rocCurveSvg(sets: ScoreSets, options: ChartOptions = {}): Promise<string> {
  const resolved = resolveOptions(options);
  const width = options.width ?? 320;
  const height = options.height ?? 240;
  const tolerance = 0.25 / Math.max(width, height); // a quarter pixel
  const inAscending = sortedScores(sets.inScores, `${sets.inName}`);
  const values: { curve: string; i: number; fpr: number; tpr: number }[] = [];
  const curves: string[] = [];
  for (const s of sets.ood) {
    const oodAscending = sortedScores(s.scores, `OOD set "${s.name}"`);
    const auroc = computeFromSorted(inAscending, oodAscending, resolved).auroc;
    const groups = tieGroupsFromSorted(oodAscending, inAscending);
    const roc = rocFromGroups(resolved.convention === 'ood-positive' ? groups : swapClassesAndNegate(groups));
    const curve = `${s.name} (AUROC ${percent(auroc)})`;
    curves.push(curve);
    thinPolyline(roc.fpr, roc.tpr, tolerance).forEach((k, i) => values.push({ curve, i, fpr: roc.fpr[k]!, tpr: roc.tpr[k]! }));
  }
  const [fprTitle, tprTitle] =
    resolved.convention === 'ood-positive'
      ? ['False-positive rate (in-distribution flagged as OOD)', 'True-positive rate (OOD flagged)']
      : ['False-positive rate (OOD accepted)', 'True-positive rate (in-distribution accepted)'];
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${sets.detector}: ROC, ${sets.inName} vs each OOD set`, anchor: 'start' },
    width,
    height,
    config: CHART_CONFIG,
    layer: [
      {
        data: { values: [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#999' },
        encoding: { x: { field: 'fpr', type: 'quantitative' }, y: { field: 'tpr', type: 'quantitative' }, x2: { field: 'fpr' }, y2: { field: 'tpr' } },
      },
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: fprTitle, scale: { domain: [0, 1] } },
          y: { field: 'tpr', type: 'quantitative', title: tprTitle, scale: { domain: [0, 1] } },
          order: { field: 'i', type: 'quantitative' },
          color: { field: 'curve', type: 'nominal', title: 'OOD set', sort: curves, scale: { domain: curves, range: PALETTE.slice(0, curves.length).concat() } },
        },
      },
    ],
  };
  return vegaLiteSvg(spec);
}

interface HistogramRow {
  set: string;
  population: string;
  x0: number;
  x1: number;
  fraction: number;
}

/** Bin edges shared by every population of a detector: the pooled 0.5 and 99.5 percentiles. */
function binEdges(pooledAscending: Float64Array, bins: number): [number, number] {
  const at = (q: number): number => pooledAscending[Math.min(pooledAscending.length - 1, Math.floor(q * pooledAscending.length))]!;
  let lo = at(0.005);
  let hi = at(0.995);
  if (!(hi > lo)) {
    lo = pooledAscending[0]!;
    hi = pooledAscending[pooledAscending.length - 1]!;
  }
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  return [lo, hi + (hi - lo) / (bins * 1e6)];
}

/** Fraction of the population per bin; values outside [lo, hi) count in the edge bins. */
export function histogram(scores: ScoreArray, lo: number, hi: number, bins: number): Float64Array {
  const counts = new Float64Array(bins);
  const width = (hi - lo) / bins;
  for (let i = 0; i < scores.length; i++) counts[Math.min(bins - 1, Math.max(0, Math.floor((scores[i]! - lo) / width)))]! += 1;
  for (let b = 0; b < bins; b++) counts[b]! /= scores.length;
  return counts;
}

/**
 * Overlaid normalised histograms of one detector's scores: one panel per OOD set, the
 * in-distribution scores (blue) against that set's (orange), each as a fraction of its own
 * population, on bins shared by all panels. Scores beyond the pooled 0.5/99.5 percentiles fall
 * in the edge bins.
 */
export async function scoreHistogramSvg(sets: ScoreSets, options: ChartOptions = {}): Promise<string> {
  const bins = options.bins ?? 40;
  const pooled = sortedScores(
    [sets.inScores, ...sets.ood.map((s) => s.scores)].flatMap((a) => Array.from(a)),
    `${sets.detector} scores`,
  );
  const [lo, hi] = binEdges(pooled, bins);
  const width = (hi - lo) / bins;
  const rows: HistogramRow[] = [];
  const push = (set: string, population: string, scores: ScoreArray): void => {
    histogram(scores, lo, hi, bins).forEach((fraction, b) => {
      if (fraction > 0) rows.push({ set, population, x0: lo + b * width, x1: lo + (b + 1) * width, fraction });
    });
  };
  for (const s of sets.ood) {
    push(s.name, sets.inName, sets.inScores);
    push(s.name, 'OOD set', s.scores);
  }
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${sets.detector} scores (higher = more OOD): ${sets.inName} vs each OOD set`, anchor: 'start' },
    config: CHART_CONFIG,
    data: { values: rows },
    columns: options.columns ?? 3,
    facet: { field: 'set', type: 'nominal', title: null, sort: sets.ood.map((s) => s.name) },
    spec: {
      width: options.width ?? 220,
      height: options.height ?? 130,
      mark: { type: 'rect', opacity: 0.55 },
      encoding: {
        x: { field: 'x0', type: 'quantitative', title: `${sets.detector} score`, scale: { domain: [lo, hi], nice: false, zero: false } },
        x2: { field: 'x1' },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction of set' },
        y2: { datum: 0 },
        color: { field: 'population', type: 'nominal', title: null, scale: { domain: [sets.inName, 'OOD set'], range: [IN_COLOUR, OOD_COLOUR] } },
      },
    },
  };
  return vegaLiteSvg(spec);
}
