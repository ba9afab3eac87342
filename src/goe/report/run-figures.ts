/**
 * Everything pictured and saved for one evaluated model, in one folder:
 *   scores.npz (+ .json)                per-sample scores (see scores-file.ts)
 *   roc-<Detector>.svg / .png           ROC curves, one per OOD set
 *   hist-<Detector>.svg / .png          score histograms, in-distribution vs each OOD set
 *   outliers.png                        a grid of the training outliers
 *   outliers-vs-training.png            real training images beside them (the paper's Fig. 1)
 * and a markdown snippet linking them, with paths relative to where results.md lives.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { OodMetricOptions } from '../metrics/index.ts';
import type { RunScores } from '../train/evaluate.ts';
import { rocCurveSvg, scoreHistogramSvg, svgToPng, type ChartOptions, type ScoreSets } from './charts.ts';
import { imageGridPng, realVsOutliersPng, type GridOptions, type ImageBatch } from './image-grid.ts';
import { writeScoresNpz } from './scores-file.ts';

export interface RunFiguresInput {
  /** Folder to write into (created when missing). */
  dir: string;
  /** Where results.md lives: returned paths and links are relative to it (default `dir`). */
  relativeTo?: string;
  /** Heading of the markdown snippet, e.g. the outlier variant. */
  title?: string;
  /** Per-sample scores of the evaluated model: scores.npz, histograms and ROC curves. */
  scores?: RunScores;
  /** The training outliers (uint8 NCHW images) and what they are, e.g. "Generated outliers (BigGAN, sigma^2 = 50)". */
  outliers?: ImageBatch & { label: string };
  /** Real training images shown beside the outliers. */
  training?: ImageBatch;
  metrics?: OodMetricOptions;
  charts?: ChartOptions;
  /** Grid layout (default 8 columns, scale 2, padding 2). */
  grid?: Partial<GridOptions>;
}

export interface RunFigures {
  /** Files written, relative to `relativeTo`. */
  files: string[];
  /** Markdown linking them, for results.md. */
  markdown: string;
}

/** File-name-safe form of a detector name. */
function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-');
}

/** Writes the scores, charts and image grids of one evaluated model; see the module comment. */
export async function writeRunFigures(input: RunFiguresInput): Promise<RunFigures> {
  mkdirSync(input.dir, { recursive: true });
  const base = input.relativeTo ?? input.dir;
  const files: string[] = [];
  const md: string[] = [];
  const write = (name: string, data: string | Buffer): string => {
    const path = join(input.dir, name);
    writeFileSync(path, data);
    const rel = relative(base, path).split('\\').join('/');
    files.push(rel);
    return rel;
  };
  const link = (rel: string): string => encodeURI(rel);
  if (input.title !== undefined) md.push(`### Figures: ${input.title}`, '');

  if (input.outliers !== undefined) {
    const grid: GridOptions = { columns: 8, scale: 2, padding: 2, ...input.grid };
    const alone = write('outliers.png', await imageGridPng(input.outliers.images, input.outliers.shape, { ...grid, title: input.outliers.label }));
    md.push(`![${input.outliers.label}](${link(alone)})`, '');
    if (input.training !== undefined) {
      const both = write('outliers-vs-training.png', await realVsOutliersPng(input.training, input.outliers, { ...grid, outlierLabel: input.outliers.label }));
      md.push(`![Training images beside ${input.outliers.label}](${link(both)})`, '');
    }
  }

  if (input.scores !== undefined) {
    const run = input.scores;
    const npz = join(input.dir, 'scores.npz');
    await writeScoresNpz(npz, run);
    const npzRel = relative(base, npz).split('\\').join('/');
    files.push(npzRel, `${npzRel}.json`);
    const options: ChartOptions = { ...input.charts, ...input.metrics };
    const rows: string[] = [];
    for (const d of run.detectors) {
      const sets: ScoreSets = {
        detector: d,
        inName: run.in.name,
        inScores: run.in.scores[d]!,
        ood: run.ood.map((s) => ({ name: s.name, scores: s.scores[d]! })),
      };
      const rocSvg = await rocCurveSvg(sets, options);
      const histSvg = await scoreHistogramSvg(sets, options);
      const roc = write(`roc-${fileSafe(d)}.svg`, rocSvg);
      write(`roc-${fileSafe(d)}.png`, await svgToPng(rocSvg));
      const hist = write(`hist-${fileSafe(d)}.svg`, histSvg);
      write(`hist-${fileSafe(d)}.png`, await svgToPng(histSvg));
      rows.push(`| ${d} | [![ROC ${d}](${link(roc)})](${link(roc)}) | [![Scores ${d}](${link(hist)})](${link(hist)}) |`);
    }
    md.push('| Detector | ROC curves | Score histograms |', '|---|---|---|', ...rows, '');
    md.push(
      `Per-sample scores: [${npzRel}](${link(npzRel)}) (members \`in__<Detector>\`, \`<set>__<Detector>\`; ` +
        `recompute with \`goe metrics --in ${npzRel}:in__${run.detectors[0]} --out ${npzRel}:<set>__${run.detectors[0]}\`).`,
      '',
    );
  }
  return { files, markdown: md.join('\n') };
}
