/**
 * Result tables with the paper's columns (AUROC, AUPR-IN, AUPR-OUT, FPR95TPR), in markdown,
 * CSV and JSON. Every table states the convention and PR rule it was computed with, because the
 * AUPR names and the FPR95 population depend on them (see ood-metrics.ts).
 *
 * Markdown shows percentages with 2 decimals (as the paper prints them); CSV and JSON carry
 * fractions in [0, 1] at full precision. Detector and outlier-set columns appear when any row
 * has them; CSV and JSON also carry the sample counts when known.
 */
import {
  describeConvention,
  resolveOptions,
  type OodConvention,
  type OodMetricOptions,
  type OodMetricValues,
  type PrRule,
} from './ood-metrics.ts';
import type { OodSetReport, OodSetRow } from './per-set.ts';

export interface MetricsTableRow extends OodMetricValues {
  detector?: string;
  outlierSet?: string;
  nIn?: number;
  nOut?: number;
  /** When present (rows from computeOodMetrics), checked against the table's convention. */
  convention?: OodConvention;
  prRule?: PrRule;
}

/** The paper's metric columns, in its order, with the row field each reads. */
export const METRIC_COLUMNS: readonly { header: string; key: keyof OodMetricValues }[] = [
  { header: 'AUROC', key: 'auroc' },
  { header: 'AUPR-IN', key: 'auprIn' },
  { header: 'AUPR-OUT', key: 'auprOut' },
  { header: 'FPR95TPR', key: 'fpr95tpr' },
];

/**
 * The names the paper's pytorch-ood version (415df13) gave the two PR areas: its "AUPR-IN" is the
 * OOD-positive area (our AUPR-OUT) and vice versa. With `paperNames`, tables show both, e.g.
 * "AUPR-OUT (paper: AUPR-IN)", so a reader can hold them against the paper's Table 1.
 */
export const PAPER_METRIC_NAMES: Readonly<Record<keyof OodMetricValues, string>> = { auroc: 'AUROC', auprIn: 'AUPR-OUT', auprOut: 'AUPR-IN', fpr95tpr: 'FPR95TPR' };

/** A metric column's header, with the paper's name beside ours where they differ. */
export function metricHeader(c: { header: string; key: keyof OodMetricValues }, paperNames = false): string {
  const paper = PAPER_METRIC_NAMES[c.key];
  return paperNames && paper !== c.header ? `${c.header} (paper: ${paper})` : c.header;
}

/** The per-set rows followed by the mean row, ready for a table. */
export function reportRows(report: OodSetReport): OodSetRow[] {
  return [...report.rows, report.mean];
}

/** A markdown table in percent (2 decimals) followed by a line stating the convention. */
export function formatMarkdownTable(rows: readonly MetricsTableRow[], options?: OodMetricOptions, layout: { convention?: boolean; paperNames?: boolean } = {}): string {
  const resolved = tableOptions(rows, options);
  const labels = labelColumns(rows);
  const header = [...labels.map((c) => c.header), ...METRIC_COLUMNS.map((c) => metricHeader(c, layout.paperNames))];
  const align = [...labels.map(() => '---'), ...METRIC_COLUMNS.map(() => '---:')];
  const body = rows.map((row) => [
    ...labels.map((c) => escapeMarkdownCell(row[c.key] ?? '')),
    ...METRIC_COLUMNS.map((c) => (row[c.key] * 100).toFixed(2)),
  ]);
  const lines = [header, align, ...body].map((cells) => `| ${cells.join(' | ')} |`);
  // a report with many tables states the convention once (layout.convention false)
  return layout.convention === false ? `${lines.join('\n')}\n` : `${lines.join('\n')}\n\nValues in %. ${describeConvention(resolved)}\n`;
}

/**
 * CSV (RFC 4180 quoting) with fractions at full precision; each row also carries `convention`
 * and `pr_rule` columns so the file states its convention to any CSV reader.
 */
export function formatCsvTable(rows: readonly MetricsTableRow[], options?: OodMetricOptions, layout: { paperNames?: boolean } = {}): string {
  const resolved = tableOptions(rows, options);
  const labels = labelColumns(rows);
  const counts = countColumns(rows);
  const header = [
    ...labels.map((c) => c.snake),
    ...METRIC_COLUMNS.map((c) => metricHeader(c, layout.paperNames)),
    ...counts.map((c) => c.snake),
    'convention',
    'pr_rule',
  ];
  const body = rows.map((row) => [
    ...labels.map((c) => row[c.key] ?? ''),
    ...METRIC_COLUMNS.map((c) => String(row[c.key])),
    ...counts.map((c) => (row[c.key] === undefined ? '' : String(row[c.key]))),
    resolved.convention,
    resolved.prRule,
  ]);
  return [header, ...body].map((cells) => cells.map(csvCell).join(',')).join('\n') + '\n';
}

/** Pretty-printed JSON: `{convention, pr_rule, description, units, rows: [...]}`. */
export function formatJsonTable(rows: readonly MetricsTableRow[], options?: OodMetricOptions): string {
  const resolved = tableOptions(rows, options);
  const labels = labelColumns(rows);
  const counts = countColumns(rows);
  const jsonRows = rows.map((row) => {
    const out: Record<string, string | number> = {};
    for (const c of labels) if (row[c.key] !== undefined) out[c.snake] = row[c.key]!;
    for (const c of METRIC_COLUMNS) out[c.header] = row[c.key];
    for (const c of counts) if (row[c.key] !== undefined) out[c.snake] = row[c.key]!;
    return out;
  });
  const table = {
    convention: resolved.convention,
    pr_rule: resolved.prRule,
    description: describeConvention(resolved),
    units: 'fraction',
    rows: jsonRows,
  };
  return JSON.stringify(table, null, 2) + '\n';
}

type LabelKey = 'detector' | 'outlierSet';
type CountKey = 'nIn' | 'nOut';
const LABEL_COLUMNS: readonly { header: string; snake: string; key: LabelKey }[] = [
  { header: 'Detector', snake: 'detector', key: 'detector' },
  { header: 'Outlier set', snake: 'outlier_set', key: 'outlierSet' },
];
const COUNT_COLUMNS: readonly { snake: string; key: CountKey }[] = [
  { snake: 'n_in', key: 'nIn' },
  { snake: 'n_out', key: 'nOut' },
];

function labelColumns(rows: readonly MetricsTableRow[]) {
  return LABEL_COLUMNS.filter((c) => rows.some((row) => row[c.key] !== undefined));
}

function countColumns(rows: readonly MetricsTableRow[]) {
  return COUNT_COLUMNS.filter((c) => rows.some((row) => row[c.key] !== undefined));
}

/**
 * The table's convention: the explicit option, else the one the rows carry, else the default.
 * Rows computed under a different convention than the table states are an error, not a footnote.
 */
function tableOptions(rows: readonly MetricsTableRow[], options: OodMetricOptions = {}): Required<OodMetricOptions> {
  const first = rows[0];
  const resolved = resolveOptions({
    convention: options.convention ?? first?.convention,
    prRule: options.prRule ?? first?.prRule,
  });
  rows.forEach((row, i) => {
    if ((row.convention !== undefined && row.convention !== resolved.convention) || (row.prRule !== undefined && row.prRule !== resolved.prRule)) {
      throw new Error(
        `table row ${i} was computed with convention ${row.convention ?? '?'} / PR rule ${row.prRule ?? '?'}, ` +
          `but the table is ${resolved.convention} / ${resolved.prRule}; do not mix conventions in one table`,
      );
    }
  });
  return resolved;
}

function escapeMarkdownCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
