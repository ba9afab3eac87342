/**
 * OOD-detection metrics: AUROC, AUPR-IN, AUPR-OUT, FPR95TPR (exact, tie-aware, O(n log n)),
 * a batch accumulator, per-OOD-set evaluation with the mean row, result tables, and score-file
 * parsing. Conventions are documented in ood-metrics.ts. Reading files from disk is Node-only:
 * import it from './read-score-file.ts'.
 */
export {
  computeOodMetrics,
  computeFromSorted,
  describeConvention,
  resolveOptions,
  DEFAULT_CONVENTION,
  DEFAULT_PR_RULE,
  FPR_TPR_LEVEL,
  OOD_CONVENTIONS,
  PR_RULES,
} from './ood-metrics.ts';
export type { OodConvention, OodMetricOptions, OodMetricResult, OodMetricValues, PrRule } from './ood-metrics.ts';
export { OodMetrics } from './accumulator.ts';
export type { OodMembership } from './accumulator.ts';
export { evaluateOodSets, MEAN_ROW_NAME } from './per-set.ts';
export type { OodSetOptions, OodSetReport, OodSetRow } from './per-set.ts';
export { formatCsvTable, formatJsonTable, formatMarkdownTable, metricHeader, reportRows, METRIC_COLUMNS, PAPER_METRIC_NAMES } from './tables.ts';
export type { MetricsTableRow } from './tables.ts';
export { averagePrecision, fprAtTpr, rocArea, trapezoidPrecisionRecallArea } from './curve-areas.ts';
export { swapClassesAndNegate, tieGroupsFromSorted } from './tie-groups.ts';
export type { TieGroups } from './tie-groups.ts';
export { assertFiniteScores, sortedScores } from './scores.ts';
export type { ScoreArray } from './scores.ts';
export { isNpy, parseNpyScores } from './npy.ts';
export { parseScoreJson, parseScoreLines } from './score-text.ts';
export { ScoreFileError } from './score-file-error.ts';
