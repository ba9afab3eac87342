// Millions of scores: the exact metrics must stay fast (one O(n log n) sort per population) and
// agree with an independent computation. Timing bounds are deliberately generous (slow CI).
import { describe, expect, it } from 'vitest';
import { computeOodMetrics } from '../../src/goe/metrics/ood-metrics.ts';

/** Deterministic uniform [0, 1) numbers (mulberry32), so the test data is the same on every run. */
function uniformScores(count: number, seed: number, transform: (u: number) => number): Float64Array {
  const out = new Float64Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = transform(((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

describe('2 million scores', () => {
  it('continuous scores: AUROC of U(0,1) vs U(0.5,1.5) is 1 - 0.5^2/2 = 0.875', () => {
    const inScores = uniformScores(1_000_000, 1, (u) => u);
    const oodScores = uniformScores(1_000_000, 2, (u) => u + 0.5);
    const start = performance.now();
    const m = computeOodMetrics(inScores, oodScores);
    const seconds = (performance.now() - start) / 1000;
    expect(seconds).toBeLessThan(30);
    expect(m.auroc).toBeCloseTo(0.875, 2);
    // FPR95: OOD TPR 0.95 at threshold 0.55, where 45% of U(0,1) lies above.
    expect(m.fpr95tpr).toBeCloseTo(0.45, 2);
    expect(m.nIn + m.nOut).toBe(2_000_000);
  });

  it('heavy ties (100 distinct values): matches an exact histogram computation', () => {
    // Scores are integers 0..99, so per-value counts give the exact Mann-Whitney AUROC,
    // the step-rule AUPR-OUT and FPR95 without any sort: an independent check of sort + merge.
    const inScores = uniformScores(1_200_000, 3, (u) => Math.floor(u * 100));
    const oodScores = uniformScores(800_000, 4, (u) => Math.floor(Math.sqrt(u) * 100));
    const start = performance.now();
    const m = computeOodMetrics(inScores, oodScores);
    expect((performance.now() - start) / 1000).toBeLessThan(30);

    const inCount = new Float64Array(100);
    const oodCount = new Float64Array(100);
    for (const s of inScores) inCount[s]!++;
    for (const s of oodScores) oodCount[s]!++;
    let inAbove = 0;
    let oodAbove = 0;
    let concordantTwice = 0;
    let ap = 0;
    let fpr95 = Number.NaN;
    for (let v = 99; v >= 0; v--) {
      concordantTwice += oodCount[v]! * (2 * inBelow(inCount, v) + inCount[v]!);
      inAbove += inCount[v]!;
      oodAbove += oodCount[v]!;
      ap += (oodCount[v]! / oodScores.length) * (oodAbove / (oodAbove + inAbove));
      if (Number.isNaN(fpr95) && oodAbove / oodScores.length >= 0.95) fpr95 = inAbove / inScores.length;
    }
    expect(Math.abs(m.auroc - concordantTwice / (2 * inScores.length * oodScores.length))).toBeLessThan(1e-12);
    expect(Math.abs(m.auprOut - ap)).toBeLessThan(1e-9);
    expect(m.fpr95tpr).toBe(fpr95);
  });
});

function inBelow(inCount: Float64Array, value: number): number {
  let sum = 0;
  for (let v = 0; v < value; v++) sum += inCount[v]!;
  return sum;
}
