/**
 * The ranking of two score populations, grouped by distinct score value.
 *
 * Every threshold-based metric (ROC, PR, FPR at a TPR) only ever thresholds *between* distinct
 * scores: samples with equal scores are always on the same side of a threshold. So the whole
 * ranking is summarised by the number of positives and negatives at each distinct score, ordered
 * from the highest score down (the order in which a threshold sweeping downward admits them).
 */
export interface TieGroups {
  /** Positive samples per distinct score, highest score first. */
  readonly positives: Float64Array;
  /** Negative samples per distinct score, in the same order as `positives`. */
  readonly negatives: Float64Array;
  readonly totalPositives: number;
  readonly totalNegatives: number;
}

/**
 * Merges two ascending-sorted populations, from the top, into tie groups. Scores that compare
 * equal (`===`, so -0 and +0 tie) fall into one group whichever population they come from.
 * O(n) after the sorts.
 */
export function tieGroupsFromSorted(positiveAscending: Float64Array, negativeAscending: Float64Array): TieGroups {
  const capacity = positiveAscending.length + negativeAscending.length;
  const positives = new Float64Array(capacity);
  const negatives = new Float64Array(capacity);
  let p = positiveAscending.length - 1;
  let n = negativeAscending.length - 1;
  let groups = 0;
  while (p >= 0 || n >= 0) {
    const threshold =
      p < 0 ? negativeAscending[n]! : n < 0 ? positiveAscending[p]! : Math.max(positiveAscending[p]!, negativeAscending[n]!);
    let positiveCount = 0;
    while (p >= 0 && positiveAscending[p] === threshold) {
      positiveCount++;
      p--;
    }
    let negativeCount = 0;
    while (n >= 0 && negativeAscending[n] === threshold) {
      negativeCount++;
      n--;
    }
    positives[groups] = positiveCount;
    negatives[groups] = negativeCount;
    groups++;
  }
  return {
    positives: positives.subarray(0, groups),
    negatives: negatives.subarray(0, groups),
    totalPositives: positiveAscending.length,
    totalNegatives: negativeAscending.length,
  };
}

/**
 * The same ranking seen with the classes swapped and the scores negated: the former negatives
 * become the positives and the lowest score becomes the highest. This is how AUPR-IN (and the
 * in-distribution-positive convention) reuse the one sort.
 */
export function swapClassesAndNegate(groups: TieGroups): TieGroups {
  return {
    positives: groups.negatives.slice().reverse(),
    negatives: groups.positives.slice().reverse(),
    totalPositives: groups.totalNegatives,
    totalNegatives: groups.totalPositives,
  };
}
