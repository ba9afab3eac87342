/**
 * The text path of `goe sweep` and `goe select` on the smoke-text experiment (synthetic texts, a
 * tiny word LM): a temperature sweep over two values and two seeds (each seed's numbers and the
 * 95% t-interval of the pair in sweep.json), then selection of T against that sweep (msp-quantile
 * and proxy-ood; feature-band is for images and left out of "all"); bad requests exit 2 first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { main } from '../src/cli/dispatch.ts';
import type { CliIo } from '../src/cli/subcommand.ts';
import { releaseParameterArena } from '../src/engine/index.ts';
import { studentTQuantile } from '../src/goe/sweep/stats.ts';
import { engine } from './helpers/gpu.ts';

let dir: string;
async function goe(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t) };
  return { code: await main(args, io), out, err };
}
const json = (p: string): any => JSON.parse(readFileSync(p, 'utf8'));

let sweep: { code: number; out: string; err: string };
beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-sweep-text-'));
  sweep = await goe(['sweep', 'smoke-text', '--param', 'temperature=1,3', '--seeds', '2', '--max-steps', '2', '--out', join(dir, 's')]);
}, 600_000);
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  releaseParameterArena();
});

describe('goe sweep / select on text (temperature)', () => {
  it('two temperatures x two seeds: per-seed values from each point, their mean and t-interval', () => {
    expect(sweep.code, sweep.err).toBe(0);
    const s = json(join(dir, 's', 'sweep.json'));
    expect([s.values, s.seeds]).toEqual([[1, 3], [0, 1]]);
    for (const t of [1, 3]) {
      const per = [0, 1].map((seed) => {
        const r = json(join(dir, 's', 'points', `temperature=${t}`, `seed-${seed}`, 'results.json'));
        return r.variants[0].rows.find((x: any) => x.detector === 'MSP' && x.outlier_set === 'mean').AUROC as number;
      });
      const row = s.rows.find((x: any) => x.value === t && x.detector === 'MSP' && x.outlier_set === 'mean' && x.metric === 'AUROC');
      expect(row.values).toEqual(per);
      const mean = (per[0]! + per[1]!) / 2;
      expect(row.mean).toBeCloseTo(mean, 12);
      // n = 2: half width t(0.975, 1) * |a - b| / 2
      expect(row.ci95_high - row.mean).toBeCloseTo((studentTQuantile(0.975, 1) * Math.abs(per[0]! - per[1]!)) / 2, 10);
      const cfg = json(join(dir, 's', 'points', `temperature=${t}`, 'seed-1', 'config.json'));
      expect(cfg.outliers.find((o: any) => o.name === 'generated').temperature).toBe(t);
      expect(cfg.oeSeed).toBe(1);
    }
  });

  it('goe select --sweep: msp-quantile and proxy-ood choose a temperature of the sweep, held against it', async () => {
    const r = await goe(['select', 'smoke-text', '--sweep', join(dir, 's'), '--criterion', 'all', '--samples', '16', '--out', join(dir, 'sel')]);
    expect(r.code, r.err).toBe(0);
    const s = json(join(dir, 'sel', 'select.json'));
    expect(s.param).toBe('temperature');
    expect(s.criteria.map((c: any) => c.criterion)).toEqual(['msp-quantile', 'proxy-ood']);
    for (const c of s.criteria) expect([1, 3]).toContain(c.chosen);
    expect(s.againstSweep).toHaveLength(2 * 2);
  }, 300_000);

  it('refuses what cannot work before running anything (exit 2)', async () => {
    const cases: [string[], RegExp][] = [
      [['sweep', 'smoke-text', '--param', 'sigma2=1,2', '--out', join(dir, 'x')], /--param sigma2 sets the BigGAN outliers' latent scale.*--param temperature/],
      [['sweep', 'smoke', '--param', 'temperature=1', '--out', join(dir, 'x')], /--param temperature sets the LM outliers' temperature/],
      [['sweep', 'smoke-text', '--param', 'temperature=1', '--temperature', '2', '--out', join(dir, 'x')], /--temperature is set by the sweep/],
      [['sweep', 'smoke', '--param', 'lambda=0.5', '--variants', 'none', '--out', join(dir, 'x')], /"none" is the baseline/],
      [['sweep', '--recipe', 'fig9'], /unknown recipe "fig9"/],
      [['sweep', '--recipe', 'fig3-imagenet'], /imagenet experiment is not swept by goe sweep; run its points one by one: for v in 0 0.5 1 2 5 10 20; do goe experiment imagenet --sigma2 \$v/],
      [['select', 'smoke-text', '--criterion', 'proxy-ood'], /--criterion proxy-ood reads a sweep/],
    ];
    for (const [args, msg] of cases) {
      const r = await goe(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
    }
  });
});
