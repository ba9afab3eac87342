/**
 * The four OOD-detection metrics of the GOE paper (AUROC, AUPR-IN, AUPR-OUT, FPR95TPR), exact,
 * from two arrays of scores.
 *
 * Input scores are always OUTLIER scores: higher means more likely out-of-distribution (as
 * pytorch-ood's detectors return them, e.g. MSP score = -max softmax). Under either convention
 * below, callers never negate anything themselves.
 *
 * Conventions (`convention` option):
 *
 * - `'ood-positive'` (default; pytorch-ood `OODMetrics`, the paper's library): OOD is the
 *   positive class, ranked by the outlier score.
 *   - AUROC: P(score_ood > score_in) + P(equal) / 2.
 *   - AUPR-OUT: PR area with OOD positive, ranked by the score.
 *   - AUPR-IN: PR area with in-distribution positive, ranked by the negated score.
 *   - FPR95TPR: fraction of in-distribution samples flagged as OOD at the first threshold
 *     (sweeping from high outlier score to low) where >= 95% of the OOD samples are flagged.
 * - `'in-positive'` (Hendrycks' OE code, `get_measures(-in_score, -out_score)`): in-distribution
 *   is the positive class and the score is negated, so higher = more in-distribution.
 *   - AUROC: the same value as above (AUROC is symmetric under swapping classes and negating).
 *   - AUPR-IN / AUPR-OUT: the same values as above, because each name says which population is
 *     the positive class. What swaps is their role: here AUPR-IN is the positive-class area (the
 *     single "AUPR" OE's code prints) and AUPR-OUT the negative-class one; under `'ood-positive'`
 *     it is the other way round.
 *   - FPR95TPR: fraction of OOD samples accepted as in-distribution at the first threshold
 *     (sweeping from most to least in-distribution) where >= 95% of the in-distribution samples
 *     are accepted. (OE's own `fpr_and_fdr_at_recall` picks the threshold whose recall is
 *     *closest* to 0.95 rather than the first one reaching it; the two can differ slightly.)
 *
 * PR rule (`prRule` option): `'step'` (default) is the step sum of scikit-learn's
 * `average_precision_score`; `'trapezoid'` is pytorch-ood's trapezoid over its PR curve with a
 * (recall 0, precision 1) starting point (scikit-learn's `auc(recall, precision)` over
 * `precision_recall_curve`).
 *
 * Naming caution: the pytorch-ood version the paper used named the two PR areas the other way
 * round (fixed upstream in Oct 2024), so the paper's "AUPR-IN" column is this module's AUPR-OUT
 * and vice versa. Here the names always mean the class that is positive.
 */
import { averagePrecision, fprAtTpr, rocArea, trapezoidPrecisionRecallArea } from './curve-areas.ts';
import { sortedScores, type ScoreArray } from './scores.ts';
import { swapClassesAndNegate, tieGroupsFromSorted, type TieGroups } from './tie-groups.ts';

/** Which class is positive; see the module comment for exactly what each computes. */
export type OodConvention = 'ood-positive' | 'in-positive';
/** How the precision-recall curve is integrated; see the module comment. */
export type PrRule = 'step' | 'trapezoid';

export const OOD_CONVENTIONS: readonly OodConvention[] = ['ood-positive', 'in-positive'];
export const PR_RULES: readonly PrRule[] = ['step', 'trapezoid'];
export const DEFAULT_CONVENTION: OodConvention = 'ood-positive';
export const DEFAULT_PR_RULE: PrRule = 'step';
/** The TPR level of FPR95TPR. */
export const FPR_TPR_LEVEL = 0.95;

export interface OodMetricOptions {
  convention?: OodConvention;
  prRule?: PrRule;
}

/** Metric values are fractions in [0, 1]. */
export interface OodMetricValues {
  auroc: number;
  auprIn: number;
  auprOut: number;
  fpr95tpr: number;
}

export interface OodMetricResult extends OodMetricValues {
  /** Number of in-distribution scores. */
  nIn: number;
  /** Number of OOD scores. */
  nOut: number;
  convention: OodConvention;
  prRule: PrRule;
}

/** Fills in defaults and rejects unknown option values (they may come from untyped callers). */
export function resolveOptions(options: OodMetricOptions = {}): Required<OodMetricOptions> {
  const convention = options.convention ?? DEFAULT_CONVENTION;
  const prRule = options.prRule ?? DEFAULT_PR_RULE;
  if (!OOD_CONVENTIONS.includes(convention)) {
    throw new Error(`unknown convention "${convention}"; expected one of ${OOD_CONVENTIONS.join(', ')}`);
  }
  if (!PR_RULES.includes(prRule)) {
    throw new Error(`unknown PR rule "${prRule}"; expected one of ${PR_RULES.join(', ')}`);
  }
  return { convention, prRule };
}

/**
 * AUROC, AUPR-IN, AUPR-OUT and FPR95TPR of in-distribution vs OOD outlier scores.
 * Throws an Error on empty populations or NaN / infinite scores. O(n log n).
 */
export function computeOodMetrics(inScores: ScoreArray, oodScores: ScoreArray, options?: OodMetricOptions): OodMetricResult {
  const resolved = resolveOptions(options);
  return computeFromSorted(sortedScores(inScores, 'in-distribution'), sortedScores(oodScores, 'OOD'), resolved);
}

/**
 * The metrics from already validated, ascending-sorted populations (see `sortedScores`), so a
 * caller evaluating several OOD sets against one in-distribution set sorts it only once.
 */
export function computeFromSorted(
  inAscending: Float64Array,
  oodAscending: Float64Array,
  options: Required<OodMetricOptions>,
): OodMetricResult {
  const oodPositive = tieGroupsFromSorted(oodAscending, inAscending);
  const inPositive = swapClassesAndNegate(oodPositive);
  const prArea = options.prRule === 'step' ? averagePrecision : trapezoidPrecisionRecallArea;
  const positiveClass: TieGroups = options.convention === 'ood-positive' ? oodPositive : inPositive;
  return {
    auroc: rocArea(positiveClass),
    auprIn: prArea(inPositive),
    auprOut: prArea(oodPositive),
    fpr95tpr: fprAtTpr(positiveClass, FPR_TPR_LEVEL),
    nIn: inAscending.length,
    nOut: oodAscending.length,
    convention: options.convention,
    prRule: options.prRule,
  };
}

/** One sentence per option value, for reports: which class is positive and how PR is integrated. */
export function describeConvention(options?: OodMetricOptions): string {
  const { convention, prRule } = resolveOptions(options);
  const classes =
    convention === 'ood-positive'
      ? 'Convention ood-positive (pytorch-ood): OOD is the positive class, scores are outlier scores (higher = more OOD); ' +
        'FPR95TPR = fraction of in-distribution samples flagged as OOD when 95% of OOD samples are flagged.'
      : 'Convention in-positive (Hendrycks OE code): in-distribution is the positive class, outlier scores negated internally (higher = more in-distribution); ' +
        'FPR95TPR = fraction of OOD samples accepted as in-distribution when 95% of in-distribution samples are accepted.';
  const names = 'AUPR-IN = PR area with in-distribution positive, AUPR-OUT = PR area with OOD positive (the paper\'s pytorch-ood version swapped these two names).';
  const rule =
    prRule === 'step'
      ? 'PR areas by the step rule (average precision, as scikit-learn average_precision_score).'
      : 'PR areas by the trapezoid rule over the PR curve starting at (recall 0, precision 1), as pytorch-ood.';
  return `${classes} ${names} ${rule}`;
}
