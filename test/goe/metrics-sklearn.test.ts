// Agreement with scikit-learn to 1e-9 on the committed fixtures that
// scripts/fixtures/sklearn_metrics.py wrote (CI never runs Python). See that script for exactly
// which scikit-learn call each expected value comes from.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OodMetrics } from '../../src/goe/metrics/accumulator.ts';
import { computeOodMetrics } from '../../src/goe/metrics/ood-metrics.ts';

interface SklearnFixture {
  name: string;
  expected: {
    roc_auc: number;
    roc_auc_in_positive: number;
    aupr_out_step: number;
    aupr_in_step: number;
    aupr_out_trapezoid: number;
    aupr_in_trapezoid: number;
    fpr95_ood_positive: number;
    fpr95_in_positive: number;
  };
  in_scores: number[];
  ood_scores: number[];
}

const FIXTURE_DIR = join(import.meta.dirname, '..', 'fixtures', 'metrics', 'sklearn');
const fixtures: SklearnFixture[] = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) as SklearnFixture);
const TOLERANCE = 1e-9;

describe('agreement with scikit-learn', () => {
  it('has the committed fixtures (sizes 7, 100, 5000, heavy ties)', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(10);
    const sizes = new Set(fixtures.map((f) => f.in_scores.length + f.ood_scores.length));
    for (const size of [7, 100, 5000]) expect(sizes).toContain(size);
  });

  describe.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
    const { expected: e, in_scores: inScores, ood_scores: oodScores } = fixture;

    it('ood-positive, step rule', () => {
      const m = computeOodMetrics(inScores, oodScores);
      expect(Math.abs(m.auroc - e.roc_auc)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.auprOut - e.aupr_out_step)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.auprIn - e.aupr_in_step)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.fpr95tpr - e.fpr95_ood_positive)).toBeLessThan(TOLERANCE);
    });

    it('trapezoid rule', () => {
      const m = computeOodMetrics(inScores, oodScores, { prRule: 'trapezoid' });
      expect(Math.abs(m.auprOut - e.aupr_out_trapezoid)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.auprIn - e.aupr_in_trapezoid)).toBeLessThan(TOLERANCE);
    });

    it('in-positive convention', () => {
      const m = computeOodMetrics(inScores, oodScores, { convention: 'in-positive' });
      expect(Math.abs(m.auroc - e.roc_auc_in_positive)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.fpr95tpr - e.fpr95_in_positive)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.auprIn - e.aupr_in_step)).toBeLessThan(TOLERANCE);
    });

    it('accumulated in batches of 7 with pytorch-ood labels', () => {
      const scores = [...inScores, ...oodScores];
      const labels = [...inScores.map((_, i) => i % 10), ...oodScores.map(() => -1)];
      const metrics = new OodMetrics();
      for (let start = 0; start < scores.length; start += 7) {
        metrics.update(scores.slice(start, start + 7), labels.slice(start, start + 7));
      }
      const m = metrics.compute();
      expect(Math.abs(m.auroc - e.roc_auc)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.auprOut - e.aupr_out_step)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.auprIn - e.aupr_in_step)).toBeLessThan(TOLERANCE);
      expect(Math.abs(m.fpr95tpr - e.fpr95_ood_positive)).toBeLessThan(TOLERANCE);
    });
  });
});
