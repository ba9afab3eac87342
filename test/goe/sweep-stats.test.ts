/**
 * The sweep's arithmetic and tables without a GPU: Student-t quantiles against printed tables,
 * the 95% interval worked by hand, the selection criteria on hand-made scores, point commands, and
 * --collect over hand-written point folders (numbers equal to the per-point results.json, plots that
 * decode to the size of their SVG).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { meanCi, studentTCdf, studentTQuantile, regularizedBeta } from '../../src/goe/sweep/stats.ts';
import { collectSweep, writeSweep, sweepCsv } from '../../src/goe/sweep/collect.ts';
import { baseArgs, pointArgs, pointsOf, runFinished, shellQuote, type SweepPlan } from '../../src/goe/sweep/plan.ts';
import { RECIPES } from '../../src/goe/sweep/recipes.ts';
import { classMeans, featureBandCriterion, mspQuantileCriterion, nearestMeanDistance, quantile } from '../../src/goe/select/criteria.ts';
import { experimentConfig } from '../../src/goe/experiments/index.ts';
import { parseParam } from '../../src/cli/sweep.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('Student t and the 95% interval', () => {
  it('quantiles match the printed table (t_{0.975, df})', () => {
    const table: [number, number][] = [[1, 12.7062047], [2, 4.30265273], [3, 3.18244631], [4, 2.77644511], [9, 2.26215716], [29, 2.04522964], [1000, 1.96233908]];
    for (const [df, t] of table) expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 6);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.77644511, 6);
    expect(studentTQuantile(0.5, 7)).toBe(0);
    // df 1 is the Cauchy distribution: CDF 1/2 + atan(t)/pi
    for (const t of [-3, -0.5, 0.7, 10]) expect(studentTCdf(t, 1)).toBeCloseTo(0.5 + Math.atan(t) / Math.PI, 12);
    // I_x(1, 1) = x; I_x(a, 1) = x^a
    expect(regularizedBeta(0.3, 1, 1)).toBeCloseTo(0.3, 14);
    expect(regularizedBeta(0.6, 3, 1)).toBeCloseTo(0.216, 14);
  });

  it('mean +- t s / sqrt(n), worked by hand', () => {
    // 0.80, 0.84, 0.82, 0.86, 0.78: mean 0.82, deviations -0.02 0.02 0 0.04 -0.04, sum of squares 0.004,
    // s^2 = 0.004 / 4 = 0.001, s = 0.0316228, s / sqrt(5) = 0.0141421, t(0.975, 4) = 2.7764451 -> half width 0.0392646
    const ci = meanCi([0.8, 0.84, 0.82, 0.86, 0.78]);
    expect(ci.n).toBe(5);
    expect(ci.mean).toBeCloseTo(0.82, 14);
    expect(ci.std).toBeCloseTo(Math.sqrt(0.001), 12);
    expect(ci.halfWidth).toBeCloseTo(0.0392646, 6);
    expect(ci.low).toBeCloseTo(0.82 - 0.0392646, 6);
    expect(ci.high).toBeCloseTo(0.82 + 0.0392646, 6);
    // two seeds: t(0.975, 1) = 12.706; values 0.5, 0.7: s = 0.141421, half width 12.7062 * 0.1 = 1.27062
    expect(meanCi([0.5, 0.7]).halfWidth).toBeCloseTo(1.270620, 5);
    // one seed: no interval
    expect(meanCi([0.9])).toEqual({ n: 1, mean: 0.9, std: null, halfWidth: null, low: null, high: null });
    expect(() => meanCi([])).toThrow(/no values/);
  });
});

describe('selection criteria', () => {
  it('msp-quantile: the smallest value where half the samples fall below the inliers\' q-quantile', () => {
    const inliers = Array.from({ length: 101 }, (_, i) => 0.5 + i * 0.005); // 0.5 .. 1.0; 5% quantile = 0.525
    expect(quantile(inliers, 0.05)).toBeCloseTo(0.525, 12);
    const r = mspQuantileCriterion(inliers, [
      { value: 0, msp: [0.99, 0.98, 0.97, 0.96] },
      { value: 1, msp: [0.9, 0.5, 0.6, 0.7] }, // 1 of 4 below
      { value: 5, msp: [0.3, 0.4, 0.6, 0.7] }, // 2 of 4: meets
      { value: 50, msp: [0.1, 0.1, 0.2, 0.3] },
    ]);
    expect(r.chosen).toBe(5);
    expect(r.reached).toBe(true);
    expect(r.rows.map((x) => x.fraction)).toEqual([0, 0.25, 0.5, 1]);
    expect(r.threshold.tau).toBeCloseTo(0.525, 12);
    const none = mspQuantileCriterion(inliers, [{ value: 0, msp: [0.9] }, { value: 2, msp: [0.8] }]);
    expect(none).toMatchObject({ chosen: 2, reached: false, note: expect.stringMatching(/extend the grid/) });
  });

  it('feature-band: the smallest value whose median distance lies in [tau, 2 tau]; class means and distances by hand', () => {
    const f = Float32Array.from([0, 0, 2, 0, 10, 10, 10, 12]); // 4 rows of dim 2
    const means = classMeans(f, Int32Array.from([0, 0, 1, 1]), 2);
    expect(means.map((m) => Array.from(m))).toEqual([[1, 0], [10, 11]]);
    expect(Array.from(nearestMeanDistance(Float32Array.from([1, 0, 4, 4, 10, 13]), 3, 2, means))).toEqual([0, 5, 2]);
    const inl = Array.from({ length: 21 }, (_, i) => i / 20); // 0..1, 0.95-quantile 0.95
    const r = featureBandCriterion(inl, [
      { value: 0, distance: [0.5, 0.6, 0.7] },
      { value: 1, distance: [3, 3, 3] }, // median beyond 2 tau
      { value: 2, distance: [1, 1.2, 1.5] }, // in the band, but 1 comes first and misses it
    ]);
    expect(r.threshold.tau).toBeCloseTo(0.95, 12);
    expect(r).toMatchObject({ chosen: 2, reached: true });
    const over = featureBandCriterion(inl, [{ value: 0, distance: [0.1] }, { value: 3, distance: [9] }]);
    expect(over).toMatchObject({ chosen: 3, reached: false, note: expect.stringMatching(/first value beyond tau/) });
  });
});

describe('sweep plan and commands', () => {
  const plan: SweepPlan = { experiment: 'fmnist', param: 'sigma2', values: [0, 5], seeds: [0, 1], variants: ['generated'], experimentArgs: ['--limit', '32'] };
  it('every point is a goe experiment command fine-tuned from the base', () => {
    const c = experimentConfig('fmnist');
    const pts = pointsOf('/s', plan);
    expect(pts.map((p) => p.dir)).toEqual(['/s/points/sigma2=0/seed-0', '/s/points/sigma2=0/seed-1', '/s/points/sigma2=5/seed-0', '/s/points/sigma2=5/seed-1']);
    expect(pointArgs('/s', plan, c, pts[3]!)).toEqual([
      'fmnist', '--limit', '32', '--out', '/s/points/sigma2=5/seed-1', '--resume', '--variants', 'generated',
      '--pretrained', '/s/base/baseline/model.safetensors', '--seed', '1', '--sigma2', '5', '--generator', '/s/base/generator/G.safetensors',
    ]);
    expect(baseArgs('/s', plan)).toEqual(['fmnist', '--limit', '32', '--out', '/s/base', '--resume', '--base-only', '--variants', 'none,generated']);
    expect(shellQuote("/a b/it's")).toBe(`'/a b/it'\\''s'`);
    expect(shellQuote('/plain/sigma2=5')).toBe('/plain/sigma2=5');
  });
  it('--param values are checked and sorted; recipes carry the reference grid', () => {
    expect(parseParam('sigma2=50,0,0.5')).toEqual({ param: 'sigma2', values: [0, 0.5, 50] });
    expect(() => parseParam('count=0,100')).toThrow(/integer >= 1/);
    expect(() => parseParam('temperature=0')).toThrow(/> 0/);
    expect(() => parseParam('sigma=1')).toThrow(/sigma2, temperature, count, lambda/);
    expect(() => parseParam('lambda=1,1')).toThrow(/twice/);
    expect(RECIPES['fig2-cifar100']!.values).toEqual([0, 0.5, 1, 2, 5, 10, 20, 30, 40, 50]);
    expect(RECIPES['fig5-cifar100']!.values[0]).toBe(100);
  });
});

/** A results.json of one variant with MSP/Energy rows on two sets and their mean. */
function results(variant: string, auroc: number, accuracy: number): string {
  const rows = ['MSP', 'Energy'].flatMap((d, k) => ['A', 'B', 'mean'].map((set, j) => ({ detector: d, outlier_set: set, AUROC: auroc + k * 0.01 + (set === 'mean' ? 0.005 : j * 0.01), 'AUPR-IN': 0.5, 'AUPR-OUT': 0.6, FPR95TPR: 1 - auroc })));
  return JSON.stringify({ variants: [{ outliers: variant, accuracy, rows }] });
}

describe('--collect over point folders', () => {
  it('joins the seeds of each point: means and intervals equal to the per-point numbers; plots decode at the SVG size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goe-collect-'));
    dirs.push(dir);
    const plan: SweepPlan = { experiment: 'smoke', param: 'sigma2', values: [0, 2, 50], seeds: [0, 1], variants: ['generated'], experimentArgs: [] };
    writeFileSync(join(dir, 'sweep-plan.json'), JSON.stringify(plan));
    mkdirSync(join(dir, 'base'));
    writeFileSync(join(dir, 'base', 'results.json'), results('none', 0.6, 0.9));
    const aurocs: Record<string, number[]> = { 0: [0.6, 0.62], 2: [0.55, 0.57], 50: [0.7, 0.76] };
    for (const [v, seeds] of Object.entries(aurocs)) {
      seeds.forEach((a, s) => {
        mkdirSync(join(dir, 'points', `sigma2=${v}`, `seed-${s}`), { recursive: true });
        writeFileSync(join(dir, 'points', `sigma2=${v}`, `seed-${s}`, 'results.json'), results('generated', a, 0.8 + s * 0.02));
      });
    }
    mkdirSync(join(dir, 'points', 'sigma2=50', 'seed-2'), { recursive: true }); // started, not finished
    expect(runFinished(join(dir, 'points', 'sigma2=0', 'seed-0'), ['generated'])).toBe(true);
    expect(runFinished(join(dir, 'points', 'sigma2=50', 'seed-2'), ['generated'])).toBe(false);
    const { sweep, files } = await writeSweep(dir);
    expect(files).toEqual(['sweep.json', 'sweep.csv', 'sweep.md', 'sweep-AUROC.svg', 'sweep-AUROC.png', 'sweep-FPR95TPR.svg', 'sweep-FPR95TPR.png']);
    expect(sweep.values).toEqual([0, 2, 50]);
    expect(sweep.unfinished).toEqual(['sigma2=50/seed-2']);
    const row = (v: number, d: string, set: string, m: string) => sweep.rows.find((r) => r.value === v && r.detector === d && r.outlier_set === set && r.metric === m)!;
    // MSP mean row of sigma2 = 50: seeds 0.705, 0.765 -> mean 0.735, s = 0.0424264, half width 12.7062 * 0.03 = 0.381186
    const r = row(50, 'MSP', 'mean', 'AUROC');
    expect(r.values).toEqual([0.705, 0.765]);
    expect(r.mean).toBeCloseTo(0.735, 12);
    expect(r.ci95_high! - r.mean).toBeCloseTo(0.381186, 5);
    expect(row(2, 'Energy', 'B', 'AUROC').values.map((x) => +x.toFixed(12))).toEqual([0.57, 0.59]); // 0.55 + 0.01 (Energy) + 0.01 (set B)
    expect(row(0, '-', '-', 'accuracy').values).toEqual([0.8, 0.8 + 0.02]);
    expect(sweep.best).toContainEqual({ variant: 'generated', detector: 'MSP', value: 50, AUROC: expect.closeTo(0.735, 12) });
    expect(sweep.baseline?.accuracy).toBe(0.9);
    expect(JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8')).rows.length).toBe(sweep.rows.length);
    const csv = readFileSync(join(dir, 'sweep.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('param,value,variant,detector,outlier_set,metric,n,mean,std,ci95_low,ci95_high,seed_0,seed_1');
    expect(csv.length).toBe(1 + sweep.rows.length);
    expect(sweepCsv(collectSweep(dir))).toBe(readFileSync(join(dir, 'sweep.csv'), 'utf8'));
    for (const m of ['AUROC', 'FPR95TPR']) {
      const svg = readFileSync(join(dir, `sweep-${m}.svg`), 'utf8');
      const [, w, h] = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
      const png = await sharp(join(dir, `sweep-${m}.png`)).metadata();
      // svgToPng's density 144 against the SVG's 72 dpi: twice its pixel size
      expect([png.width, png.height]).toEqual([w! * 2, h! * 2]);
      expect(svg).toContain('generated / MSP');
    }
  });
});
