// The batch accumulator (pytorch-ood OODMetrics style) and the per-OOD-set report with its mean row.
import { describe, expect, it } from 'vitest';
import { OodMetrics } from '../../src/goe/metrics/accumulator.ts';
import { computeOodMetrics } from '../../src/goe/metrics/ood-metrics.ts';
import { evaluateOodSets } from '../../src/goe/metrics/per-set.ts';

// The hand-worked case of metrics.test.ts: AUROC 0.75, AUPR-OUT 0.7, AUPR-IN 5/6, FPR95 0.5.
const IN_SCORES = [0.2, 0.5, 0.5, 0.1];
const OOD_SCORES = [0.5, 0.9, 0.3];

describe('OodMetrics', () => {
  it('update with isOod booleans, batch by batch, equals the one-shot computation', () => {
    const metrics = new OodMetrics();
    metrics.update([0.2, 0.5], [false, true]).update([0.5, 0.9, 0.5], [false, true, false]);
    metrics.update(new Float64Array([0.3, 0.1]), [true, false]);
    expect(metrics.counts).toEqual({ nIn: 4, nOut: 3 });
    const m = metrics.compute();
    expect(m).toEqual(computeOodMetrics(IN_SCORES, OOD_SCORES));
    expect(m.auroc).toBeCloseTo(0.75, 15);
    expect(m.fpr95tpr).toBe(0.5);
  });

  it('update with pytorch-ood labels: any label < 0 is OOD, class indices >= 0 are in-distribution', () => {
    const metrics = new OodMetrics();
    metrics.update([0.2, 0.5, 0.5, 0.1], [3, 0, 9, 1]);
    metrics.update([0.5, 0.9, 0.3], new Int32Array([-1, -1, -5]));
    expect(metrics.compute()).toEqual(computeOodMetrics(IN_SCORES, OOD_SCORES));
  });

  it('update with one boolean flags the whole batch', () => {
    const metrics = new OodMetrics().update(IN_SCORES, false).update(new Float32Array(OOD_SCORES), true);
    expect(metrics.compute()).toEqual(computeOodMetrics(IN_SCORES, OOD_SCORES));
    expect(() => new OodMetrics().update([0.1, NaN], true)).toThrow(/NaN/);
    expect(() => new OodMetrics().update([0.1], 1 as never)).toThrow(/one boolean for the batch/);
  });

  it('passes the convention and PR rule through', () => {
    const metrics = new OodMetrics({ convention: 'in-positive', prRule: 'trapezoid' });
    metrics.update([...IN_SCORES, ...OOD_SCORES], [false, false, false, false, true, true, true]);
    expect(metrics.compute()).toEqual(computeOodMetrics(IN_SCORES, OOD_SCORES, { convention: 'in-positive', prRule: 'trapezoid' }));
  });

  it('grows past its initial buffer', () => {
    const metrics = new OodMetrics();
    const scores = Float64Array.from({ length: 5000 }, (_, i) => i);
    metrics.update(scores, Array.from({ length: 5000 }, (_, i) => i >= 2500));
    const m = metrics.compute();
    expect(m).toMatchObject({ nIn: 2500, nOut: 2500, auroc: 1, fpr95tpr: 0 });
  });

  it('reset forgets the scores but keeps the options', () => {
    const metrics = new OodMetrics({ prRule: 'trapezoid' });
    metrics.update([0, 1], [true, false]);
    metrics.reset();
    expect(metrics.counts).toEqual({ nIn: 0, nOut: 0 });
    metrics.update([0, 1], [false, true]);
    expect(metrics.compute()).toMatchObject({ auroc: 1, prRule: 'trapezoid' });
  });

  it('compute without both populations is an error saying what is missing', () => {
    const metrics = new OodMetrics();
    expect(() => metrics.compute()).toThrow(/have 0 in-distribution and 0 OOD/);
    metrics.update([1, 2], [0, 1]); // numeric 0/1 are labels: both in-distribution
    expect(() => metrics.compute()).toThrow(/have 2 in-distribution and 0 OOD/);
  });

  it('rejects bad batches without adding any of them', () => {
    const metrics = new OodMetrics();
    expect(() => metrics.update([1, 2], [true])).toThrow(/2 scores but 1 labels/);
    expect(() => metrics.update([1, NaN], [true, false])).toThrow(/index 1 is NaN/);
    expect(() => metrics.update([1, Infinity], [true, false])).toThrow(/index 1 is infinite/);
    expect(() => metrics.update([1, 2], [-1, NaN])).toThrow(/label at index 1 is NaN/);
    expect(metrics.counts).toEqual({ nIn: 0, nOut: 0 });
  });
});

describe('evaluateOodSets', () => {
  it('gives one row per OOD set and their unweighted mean', () => {
    const report = evaluateOodSets(IN_SCORES, new Map([
      ['handworked', OOD_SCORES],
      ['separated', [1, 2]],
    ]), { detector: 'MSP' });
    expect(report.rows.map((r) => r.outlierSet)).toEqual(['handworked', 'separated']);
    expect(report.rows[0]).toEqual({ detector: 'MSP', outlierSet: 'handworked', ...computeOodMetrics(IN_SCORES, OOD_SCORES) });
    expect(report.rows[1]).toMatchObject({ auroc: 1, auprIn: 1, auprOut: 1, fpr95tpr: 0, nOut: 2 });
    // mean of (0.75, 1), (5/6, 1), (0.7, 1), (0.5, 0)
    expect(report.mean.outlierSet).toBe('mean');
    expect(report.mean.detector).toBe('MSP');
    expect(report.mean.auroc).toBeCloseTo(0.875, 15);
    expect(report.mean.auprIn).toBeCloseTo(11 / 12, 15);
    expect(report.mean.auprOut).toBeCloseTo(0.85, 15);
    expect(report.mean.fpr95tpr).toBeCloseTo(0.25, 15);
    expect(report.mean).toMatchObject({ nIn: 4, nOut: 5, convention: 'ood-positive', prRule: 'step' });
    expect(report).toMatchObject({ convention: 'ood-positive', prRule: 'step' });
  });

  it('accepts a plain object and options', () => {
    const report = evaluateOodSets(IN_SCORES, { a: OOD_SCORES }, { convention: 'in-positive' });
    expect(report.rows[0]!.detector).toBeUndefined();
    expect(report.rows[0]!.fpr95tpr).toBeCloseTo(2 / 3, 15);
    expect(report.mean.fpr95tpr).toBeCloseTo(2 / 3, 15);
    expect(report.convention).toBe('in-positive');
  });

  it('errors name the offending OOD set', () => {
    expect(() => evaluateOodSets(IN_SCORES, {})).toThrow(/no OOD sets/);
    expect(() => evaluateOodSets(IN_SCORES, { svhn: [0.1, NaN] })).toThrow(/OOD set "svhn" scores: score at index 1 is NaN/);
    expect(() => evaluateOodSets(IN_SCORES, { lsun: [] })).toThrow(/OOD set "lsun" scores are empty/);
    expect(() => evaluateOodSets([], { a: [1] })).toThrow(/in-distribution scores are empty/);
  });
});
