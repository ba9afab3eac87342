/**
 * Areas and operating points of the ROC and precision-recall curves of a tie-grouped ranking.
 *
 * Each function sweeps the threshold from the highest score down, one tie group at a time, so a
 * curve point exists only between distinct scores (never between equal ones). Counts are kept as
 * exact integers; only the final ratios are rounded. Results match scikit-learn's
 * `roc_auc_score`, `average_precision_score`, `auc(*precision_recall_curve(...)[1::-1])` and
 * `roc_curve(drop_intermediate=False)` to rounding error.
 */
import type { TieGroups } from './tie-groups.ts';

/**
 * Area under the ROC curve with the trapezoid rule over distinct thresholds, i.e. the
 * probability that a random positive scores above a random negative, ties counting one half
 * (the Mann-Whitney U statistic over P*N).
 */
export function rocArea(groups: TieGroups): number {
  let truePositives = 0;
  let twiceArea = 0; // sum over groups of dFP * (TP_before + TP_after), an exact integer
  for (let g = 0; g < groups.positives.length; g++) {
    const p = groups.positives[g]!;
    twiceArea += groups.negatives[g]! * (2 * truePositives + p);
    truePositives += p;
  }
  return twiceArea / (2 * groups.totalPositives * groups.totalNegatives);
}

/**
 * Area under the precision-recall curve by the step rule, which is scikit-learn's
 * `average_precision_score`: sum over thresholds of (recall gain) * (precision at that
 * threshold). No interpolation, so it is not optimistic the way the trapezoid can be.
 */
export function averagePrecision(groups: TieGroups): number {
  let truePositives = 0;
  let predictedPositives = 0;
  let sum = 0;
  for (let g = 0; g < groups.positives.length; g++) {
    const p = groups.positives[g]!;
    truePositives += p;
    predictedPositives += p + groups.negatives[g]!;
    if (p > 0) sum += (p / groups.totalPositives) * (truePositives / predictedPositives);
  }
  return sum;
}

/**
 * Area under the precision-recall curve by the trapezoid rule, as pytorch-ood computes it
 * (torchmetrics `auc(recall, precision)`) and as scikit-learn's `auc(recall, precision)` over
 * `precision_recall_curve` output: the curve starts at (recall 0, precision 1) and has one point
 * per distinct threshold. A group holding only negatives adds a point of zero width whose lower
 * precision still shapes the next trapezoid.
 */
export function trapezoidPrecisionRecallArea(groups: TieGroups): number {
  let truePositives = 0;
  let predictedPositives = 0;
  let previousRecall = 0;
  let previousPrecision = 1;
  let area = 0;
  for (let g = 0; g < groups.positives.length; g++) {
    truePositives += groups.positives[g]!;
    predictedPositives += groups.positives[g]! + groups.negatives[g]!;
    const recall = truePositives / groups.totalPositives;
    const precision = truePositives / predictedPositives;
    area += ((recall - previousRecall) * (precision + previousPrecision)) / 2;
    previousRecall = recall;
    previousPrecision = precision;
  }
  return area;
}

/**
 * False-positive rate at the first threshold, sweeping from the highest score down, where the
 * true-positive rate reaches `tprLevel` (TPR >= level, compared as floating-point ratios exactly
 * like `roc_curve` output and pytorch-ood's `fpr_at_tpr`). The sweep always ends at TPR 1, so a
 * threshold is always found.
 */
export function fprAtTpr(groups: TieGroups, tprLevel: number): number {
  let truePositives = 0;
  let falsePositives = 0;
  for (let g = 0; g < groups.positives.length; g++) {
    truePositives += groups.positives[g]!;
    falsePositives += groups.negatives[g]!;
    if (truePositives / groups.totalPositives >= tprLevel) return falsePositives / groups.totalNegatives;
  }
  return 1;
}
