/**
 * Score validation and preparation shared by every OOD metric.
 *
 * The metrics are exact functions of the ranking of the scores, so the only preparation they
 * need is a validated, ascending-sorted Float64Array copy of each population. Sorting each
 * population on its own with the native typed-array sort (numeric order, no comparator) and then
 * merging them is O(n log n), allocates no index arrays and handles millions of scores in well
 * under a second.
 */

/** Scores as the metrics accept them: a plain array or any typed array of numbers. */
export type ScoreArray = ArrayLike<number>;

/**
 * Throws an Error naming the population and the index of the first NaN or infinite score.
 * Infinite scores are rejected too: a metric computed on them hides a bug upstream (overflowed
 * logits, a log of zero) instead of reporting it.
 */
export function assertFiniteScores(scores: ScoreArray, what: string): void {
  for (let i = 0; i < scores.length; i++) {
    const score = scores[i]!;
    if (!Number.isFinite(score)) {
      const kind = Number.isNaN(score) ? 'NaN' : 'infinite';
      throw new Error(`${what} scores: score at index ${i} is ${kind} (${score}); scores must be finite numbers`);
    }
  }
}

/** Throws when a population has no scores: no metric is defined without both populations. */
export function assertNonEmptyScores(scores: ScoreArray, what: string): void {
  if (scores.length === 0) {
    throw new Error(`${what} scores are empty; OOD metrics need at least one in-distribution and one OOD score`);
  }
}

/** A validated (finite, non-empty) copy of `scores` sorted ascending. The input is not modified. */
export function sortedScores(scores: ScoreArray, what: string): Float64Array {
  assertNonEmptyScores(scores, what);
  assertFiniteScores(scores, what);
  const sorted = Float64Array.from(scores);
  sorted.sort();
  return sorted;
}
