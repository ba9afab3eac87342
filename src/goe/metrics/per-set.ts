/**
 * Metrics per OOD test set plus their mean, the way the paper reports them: each metric is
 * computed on the full in-distribution test set against one full OOD set, then the per-set values
 * are averaged (unweighted) over the OOD sets. (The OE repo instead averages 10 draws of
 * len(test) // 5 OOD samples; that is not what this does.)
 */
import {
  computeFromSorted,
  resolveOptions,
  type OodConvention,
  type OodMetricOptions,
  type OodMetricResult,
  type PrRule,
} from './ood-metrics.ts';
import { sortedScores, type ScoreArray } from './scores.ts';

/** One table row: the metrics of one OOD set (or the mean), with what produced them. */
export interface OodSetRow extends OodMetricResult {
  /** The OOD test set's name, or `'mean'` for the mean row. */
  outlierSet: string;
  /** The detector's name, when the caller gave one. */
  detector?: string;
}

export interface OodSetReport {
  /** One row per OOD set, in the order given. */
  rows: OodSetRow[];
  /**
   * The unweighted mean over `rows` of each metric. Its `nIn` is the in-distribution count and
   * its `nOut` the total over all OOD sets.
   */
  mean: OodSetRow;
  convention: OodConvention;
  prRule: PrRule;
}

export interface OodSetOptions extends OodMetricOptions {
  /** Written into every row's `detector`, e.g. `'MSP'`. */
  detector?: string;
}

/** The name of the mean row in reports. */
export const MEAN_ROW_NAME = 'mean';

/**
 * Evaluates the in-distribution outlier scores against each named OOD set (a Map keeps its
 * insertion order; so does a plain object for non-numeric keys). The in-distribution scores are
 * validated and sorted once. Errors name the offending OOD set.
 */
export function evaluateOodSets(
  inScores: ScoreArray,
  oodSets: ReadonlyMap<string, ScoreArray> | Readonly<Record<string, ScoreArray>>,
  options: OodSetOptions = {},
): OodSetReport {
  const resolved = resolveOptions(options);
  const entries: [string, ScoreArray][] = oodSets instanceof Map ? [...oodSets.entries()] : Object.entries(oodSets);
  if (entries.length === 0) throw new Error('evaluateOodSets: no OOD sets given');
  const inAscending = sortedScores(inScores, 'in-distribution');
  const detector = options.detector === undefined ? {} : { detector: options.detector };
  const rows: OodSetRow[] = entries.map(([name, oodScores]) => ({
    ...detector,
    outlierSet: name,
    ...computeFromSorted(inAscending, sortedScores(oodScores, `OOD set "${name}"`), resolved),
  }));
  const mean = (pick: (row: OodSetRow) => number): number => rows.reduce((sum, row) => sum + pick(row), 0) / rows.length;
  return {
    rows,
    mean: {
      ...detector,
      outlierSet: MEAN_ROW_NAME,
      auroc: mean((r) => r.auroc),
      auprIn: mean((r) => r.auprIn),
      auprOut: mean((r) => r.auprOut),
      fpr95tpr: mean((r) => r.fpr95tpr),
      nIn: inAscending.length,
      nOut: rows.reduce((sum, row) => sum + row.nOut, 0),
      convention: resolved.convention,
      prRule: resolved.prRule,
    },
    convention: resolved.convention,
    prRule: resolved.prRule,
  };
}
