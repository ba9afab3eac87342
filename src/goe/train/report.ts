/**
 * Experiment reports in the run folder: results.md (one table per outlier variant with the
 * paper's columns, per OOD set and the mean, then a summary of the mean rows), results.csv (every
 * row, fractions at full precision, with the variant as a column) and results.json. Every file
 * states the metric convention (src/goe/metrics' describeConvention). results.md links each
 * variant's pictures and saved scores when the variant carries a `figures` snippet.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  describeConvention, formatCsvTable, formatMarkdownTable, reportRows, resolveOptions, METRIC_COLUMNS, PAPER_METRIC_NAMES,
  type MetricsTableRow, type OodMetricOptions,
} from '../metrics/index.ts';
import type { EvaluationResult } from './evaluate.ts';

export interface VariantReport {
  /** The outliers used ("none", "noise", "generated", ...). */
  outliers: string;
  /** What they were (sampler description). */
  description: string;
  evaluation: EvaluationResult;
  /** Extra OOD sets reported apart from the paper's mean (e.g. noise test sets). */
  extra?: EvaluationResult;
  /** Training summary (steps, seconds, steps/s, final loss). */
  training?: Record<string, unknown>;
  /** Markdown linking the variant's pictures and saved scores (src/goe/report's writeRunFigures), paths relative to results.md. */
  figures?: string;
  /** --eval-every-epoch: the OOD metrics during fine-tuning (src/goe/sweep/curve.ts). */
  curve?: { step: number; epoch: number; accuracy: number | null; mean: Record<string, Record<string, number>> }[];
}

export interface ExperimentReport {
  experiment: string;
  description: string;
  adapter: string;
  variants: VariantReport[];
  options?: OodMetricOptions;
  /** Name the PR columns both ways: ours (by the positive class) and the paper's pytorch-ood version's, e.g. "AUPR-OUT (paper: AUPR-IN)". */
  paperNames?: boolean;
}

function rowsOf(e: EvaluationResult): MetricsTableRow[] {
  return Object.values(e.reports).flatMap((r) => reportRows(r));
}

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function reportMarkdown(r: ExperimentReport): string {
  const table = (rows: MetricsTableRow[]): string => formatMarkdownTable(rows, r.options, { convention: false, paperNames: r.paperNames });
  const summary: MetricsTableRow[] = [];
  for (const v of r.variants) for (const rep of Object.values(v.evaluation.reports)) summary.push({ ...rep.mean, outlierSet: `${v.outliers}` });
  const out: string[] = [
    `# ${r.experiment}: OOD detection results`, '', r.description, '', `Run on: ${r.adapter}`, '',
    `Values in %. ${describeConvention(r.options)}${r.paperNames ? ' Each PR column also gives the name the paper\'s Table 1 uses for it ("paper: ...").' : ''}`, '',
    '## Summary (mean over OOD sets; "Outlier set" column = training outliers)', '', table(summary),
  ];
  for (const v of r.variants) {
    out.push(`## Outliers: ${v.outliers}`, '', v.description, '');
    if (v.evaluation.accuracy !== null) out.push(`In-distribution test accuracy: ${(v.evaluation.accuracy * 100).toFixed(2)}%`, '');
    out.push(table(rowsOf(v.evaluation)));
    if (v.extra) out.push('Additional OOD sets (not in the mean above):', '', table(rowsOf(v.extra)));
    if (v.figures) out.push(v.figures.trimEnd(), '');
  }
  return out.join('\n');
}

export function reportCsv(r: ExperimentReport): string {
  const lines: string[] = [];
  for (const v of r.variants) {
    const groups: [string, EvaluationResult][] = [['paper', v.evaluation]];
    if (v.extra) groups.push(['extra', v.extra]);
    for (const [group, e] of groups) {
      const csv = formatCsvTable(rowsOf(e), r.options, { paperNames: r.paperNames }).trimEnd().split('\n');
      if (lines.length === 0) lines.push(`outliers,group,${csv[0]}`);
      for (const l of csv.slice(1)) lines.push(`${csvCell(v.outliers)},${group},${l}`);
    }
  }
  return lines.join('\n') + '\n';
}

export function reportJson(r: ExperimentReport): string {
  const o = resolveOptions(r.options);
  const table = (e: EvaluationResult) =>
    rowsOf(e).map((row) => ({
      detector: row.detector,
      outlier_set: row.outlierSet,
      ...Object.fromEntries(METRIC_COLUMNS.map((c) => [c.header, row[c.key]])),
      n_in: row.nIn,
      n_out: row.nOut,
    }));
  return (
    JSON.stringify(
      {
        experiment: r.experiment,
        description: r.description,
        adapter: r.adapter,
        convention: o.convention,
        pr_rule: o.prRule,
        convention_description: describeConvention(o),
        ...(r.paperNames ? { paper_column_names: Object.fromEntries(METRIC_COLUMNS.map((c) => [c.header, PAPER_METRIC_NAMES[c.key]])) } : {}),
        units: 'fraction',
        variants: r.variants.map((v) => ({
          outliers: v.outliers,
          description: v.description,
          accuracy: v.evaluation.accuracy,
          rows: table(v.evaluation),
          extra_rows: v.extra ? table(v.extra) : [],
          mean_scores: v.evaluation.meanScores,
          extra_mean_scores: v.extra?.meanScores ?? {},
          training: v.training ?? null,
          ...(v.curve !== undefined ? { curve: v.curve } : {}),
        })),
      },
      null,
      2,
    ) + '\n'
  );
}

/** Writes results.md, results.csv and results.json into `dir`; returns their paths. */
export function writeReports(dir: string, r: ExperimentReport): { markdown: string; csv: string; json: string } {
  const paths = { markdown: join(dir, 'results.md'), csv: join(dir, 'results.csv'), json: join(dir, 'results.json') };
  writeFileSync(paths.markdown, reportMarkdown(r));
  writeFileSync(paths.csv, reportCsv(r));
  writeFileSync(paths.json, reportJson(r));
  return paths;
}
