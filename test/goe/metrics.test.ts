// Hand-worked cases for the exact OOD metrics. Scores are outlier scores (higher = more OOD);
// "P" is the positive-class count, "N" the negative-class count. Every expected value below is
// derived by hand in the comment next to it (and agrees with scikit-learn).
import { describe, expect, it } from 'vitest';
import { computeOodMetrics, describeConvention } from '../../src/goe/metrics/ood-metrics.ts';

describe('computeOodMetrics on a small case with ties', () => {
  // in  = [0.2, 0.5, 0.5, 0.1]   ood = [0.5, 0.9, 0.3]
  // Tie groups from the top (score: ood, in):  0.9: (1,0)  0.5: (1,2)  0.3: (1,0)  0.2: (0,1)  0.1: (0,1)
  const inScores = [0.2, 0.5, 0.5, 0.1];
  const oodScores = [0.5, 0.9, 0.3];

  it('ood-positive, step rule (defaults)', () => {
    const m = computeOodMetrics(inScores, oodScores);
    // AUROC = pairs (ood > in) + half the tied pairs, over 3*4 = 12:
    //   0.9 beats 4; 0.5 beats 0.2, 0.1 and ties two 0.5s (2 + 2/2 = 3); 0.3 beats 2 -> 9/12
    expect(m.auroc).toBeCloseTo(0.75, 15);
    // AUPR-OUT (OOD positive, P = 3), step: recall gain 1/3 at each OOD group, times precision
    //   0.9: 1/1, 0.5: 2/4 (both 0.5 in-dist samples enter with it), 0.3: 3/5
    //   -> (1 + 1/2 + 3/5) / 3 = 21/30 = 0.7
    expect(m.auprOut).toBeCloseTo(0.7, 15);
    // AUPR-IN (in-dist positive, scores negated, P = 4), groups from the lowest score:
    //   0.1: (in 1) prec 1/1; 0.2: (in 1) prec 2/2; 0.3: (ood 1) no gain; 0.5: (in 2, ood 1) prec 4/6
    //   -> 1/4 * 1 + 1/4 * 1 + 2/4 * 2/3 = 5/6
    expect(m.auprIn).toBeCloseTo(5 / 6, 15);
    // FPR95: OOD TPR after 0.9 = 1/3, after 0.5 = 2/3, after 0.3 = 1 >= 0.95; in-dist above
    //   or at 0.3 = the two 0.5s -> 2/4
    expect(m.fpr95tpr).toBe(0.5);
    expect(m).toMatchObject({ nIn: 4, nOut: 3, convention: 'ood-positive', prRule: 'step' });
  });

  it('trapezoid rule', () => {
    const m = computeOodMetrics(inScores, oodScores, { prRule: 'trapezoid' });
    // AUPR-OUT PR points (recall, precision): (0,1) (1/3,1) (2/3,1/2) (1,3/5) then zero-width ones
    //   -> 1/3 * (1+1)/2 + 1/3 * (1+1/2)/2 + 1/3 * (1/2+3/5)/2 = 1/3 + 1/4 + 11/60 = 23/30
    expect(m.auprOut).toBeCloseTo(23 / 30, 15);
    // AUPR-IN points: (0,1) (1/4,1) (1/2,1) (1/2,2/3) (1,2/3) (1,4/7)
    //   -> 1/4 + 1/4 + 0 + 1/2 * (2/3+2/3)/2 = 5/6
    expect(m.auprIn).toBeCloseTo(5 / 6, 15);
    expect(m.auroc).toBeCloseTo(0.75, 15);
    expect(m.fpr95tpr).toBe(0.5);
  });

  it('in-positive convention changes only FPR95', () => {
    const m = computeOodMetrics(inScores, oodScores, { convention: 'in-positive' });
    expect(m.auroc).toBeCloseTo(0.75, 15);
    expect(m.auprOut).toBeCloseTo(0.7, 15);
    expect(m.auprIn).toBeCloseTo(5 / 6, 15);
    // In-dist TPR sweeping from the lowest outlier score: 0.1 -> 1/4, 0.2 -> 2/4, 0.3 -> 2/4
    //   (one OOD accepted), 0.5 -> 4/4 >= 0.95 with OOD accepted = {0.3, 0.5} -> 2/3
    expect(m.fpr95tpr).toBeCloseTo(2 / 3, 15);
    expect(m.convention).toBe('in-positive');
  });
});

describe('degenerate rankings', () => {
  it('all-equal scores: AUROC 0.5, FPR95 1, AUPR = prevalence (step)', () => {
    // One tie group holding everything: the only threshold below it flags all samples.
    const m = computeOodMetrics([1, 1, 1], [1, 1]);
    expect(m.auroc).toBe(0.5); // every pair tied, each counts 1/2
    expect(m.fpr95tpr).toBe(1); // TPR jumps 0 -> 1 only when all in-dist samples are flagged too
    expect(m.auprOut).toBeCloseTo(2 / 5, 15); // recall 0 -> 1 at precision 2/5
    expect(m.auprIn).toBeCloseTo(3 / 5, 15);
    expect(computeOodMetrics([1, 1, 1], [1, 1], { convention: 'in-positive' }).fpr95tpr).toBe(1);
    // Trapezoid: (0,1) -> (1,2/5): (1 + 2/5)/2 = 0.7; AUPR-IN (1 + 3/5)/2 = 0.8
    const t = computeOodMetrics([1, 1, 1], [1, 1], { prRule: 'trapezoid' });
    expect(t.auprOut).toBeCloseTo(0.7, 15);
    expect(t.auprIn).toBeCloseTo(0.8, 15);
  });

  it('perfectly separated: AUROC 1, AUPRs 1, FPR95 0', () => {
    for (const convention of ['ood-positive', 'in-positive'] as const) {
      for (const prRule of ['step', 'trapezoid'] as const) {
        const m = computeOodMetrics([0, 1, 2], [5, 6], { convention, prRule });
        expect([m.auroc, m.auprIn, m.auprOut, m.fpr95tpr]).toEqual([1, 1, 1, 0]);
      }
    }
  });

  it('perfectly inverted: AUROC 0, FPR95 1', () => {
    // Ranking from the top: in 6, in 5, ood 2, ood 1, ood 0 (P = 3 OOD, N = 2 in-dist)
    const m = computeOodMetrics([5, 6], [0, 1, 2]);
    expect(m.auroc).toBe(0);
    expect(m.fpr95tpr).toBe(1);
    // AUPR-OUT step: OOD precisions 1/3, 2/4, 3/5, each recall gain 1/3 -> 43/90
    expect(m.auprOut).toBeCloseTo(43 / 90, 15);
    // AUPR-IN step (in-dist positive from the lowest score: ood 0,1,2 then in 5, 6):
    //   precisions 1/4, 2/5, gains 1/2 -> 13/40
    expect(m.auprIn).toBeCloseTo(13 / 40, 15);
    // Trapezoid AUPR-OUT: (0,1) (0,0) (0,0) (1/3,1/3) (2/3,1/2) (1,3/5)
    //   -> 1/3*(0+1/3)/2 + 1/3*(1/3+1/2)/2 + 1/3*(1/2+3/5)/2 = 1/18 + 5/36 + 11/60 = 17/45
    const t = computeOodMetrics([5, 6], [0, 1, 2], { prRule: 'trapezoid' });
    expect(t.auprOut).toBeCloseTo(17 / 45, 15);
    // Trapezoid AUPR-IN: (0,1) (0,0) x3 (1/2,1/4) (1,2/5) -> 1/2*(1/4)/2 + 1/2*(1/4+2/5)/2 = 9/40
    expect(t.auprIn).toBeCloseTo(9 / 40, 15);
    expect(computeOodMetrics([5, 6], [0, 1, 2], { convention: 'in-positive' }).fpr95tpr).toBe(1);
  });

  it('never puts a threshold between equal scores, whatever the input order', () => {
    expect(computeOodMetrics([0.5], [0.5]).auroc).toBe(0.5);
    expect(computeOodMetrics([-0], [0]).auroc).toBe(0.5); // -0 and +0 are the same score
    const inScores = [3, 1, 2, 2, 2, 0, 3];
    const oodScores = [2, 3, 3, 4, 2, 1];
    const reference = computeOodMetrics(inScores, oodScores);
    for (let seed = 1; seed <= 5; seed++) {
      const shuffledIn = shuffled(inScores, seed);
      const shuffledOod = shuffled(oodScores, seed + 100);
      expect(computeOodMetrics(shuffledIn, shuffledOod)).toEqual(reference);
    }
  });

  it('accepts number[], Float64Array and Float32Array alike, and does not modify the input', () => {
    const inScores = new Float64Array([0.3, 0.1, 0.2]);
    const float32 = new Float32Array([0.25, 0.5]);
    expect(computeOodMetrics(inScores, float32)).toEqual(computeOodMetrics(inScores, Float64Array.from(float32)));
    expect(computeOodMetrics(inScores, new Float64Array([0.25, 0.5]))).toEqual(computeOodMetrics([0.3, 0.1, 0.2], [0.25, 0.5]));
    expect([...inScores]).toEqual([0.3, 0.1, 0.2]);
  });
});

describe('input errors', () => {
  it('rejects empty populations', () => {
    expect(() => computeOodMetrics([], [1])).toThrow(/in-distribution scores are empty/);
    expect(() => computeOodMetrics([1], new Float64Array(0))).toThrow(/OOD scores are empty/);
  });

  it('rejects NaN and infinite scores, naming the index', () => {
    expect(() => computeOodMetrics([0, 1, NaN], [1])).toThrow(/in-distribution scores: score at index 2 is NaN/);
    expect(() => computeOodMetrics([0], [Infinity])).toThrow(/OOD scores: score at index 0 is infinite/);
    expect(() => computeOodMetrics([0], [1, -Infinity])).toThrow(/index 1 is infinite/);
  });

  it('rejects unknown options from untyped callers', () => {
    expect(() => computeOodMetrics([0], [1], { convention: 'ood' as never })).toThrow(/unknown convention "ood"/);
    expect(() => computeOodMetrics([0], [1], { prRule: 'simpson' as never })).toThrow(/unknown PR rule "simpson"/);
  });
});

describe('describeConvention', () => {
  it('states the positive class, the AUPR naming and the PR rule', () => {
    const text = describeConvention();
    expect(text).toMatch(/ood-positive/);
    expect(text).toMatch(/OOD is the positive class/);
    expect(text).toMatch(/AUPR-IN = PR area with in-distribution positive/);
    expect(text).toMatch(/swapped/);
    expect(text).toMatch(/step rule/);
    const other = describeConvention({ convention: 'in-positive', prRule: 'trapezoid' });
    expect(other).toMatch(/in-distribution is the positive class/);
    expect(other).toMatch(/trapezoid/);
  });
});

/** A deterministic Fisher-Yates shuffle (xorshift), so failures reproduce. */
function shuffled(values: readonly number[], seed: number): number[] {
  const out = [...values];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const j = (state >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
