/**
 * `goe sweep`, `goe select` and `--eval-every-epoch` on the fmnist experiment at a tiny --limit
 * (32 images per set, one training step per phase): a seven-value sigma^2 sweep including 0 whose
 * collected numbers equal the per-point results.json and whose plots decode; resumability (finished
 * points skipped untouched, an interrupted one resumed); an outlier-count sweep from that sweep's
 * baseline and generator, run as child processes (--jobs 2), with convergence curves; the
 * --emit-commands + --collect round trip (the printed commands run in parallel, one base under the
 * lock); the selection criteria; and --sigma2 auto.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { main } from '../src/cli/dispatch.ts';
import type { CliIo } from '../src/cli/subcommand.ts';
import { DEBIAN_FASHION_MNIST_DIR, dataDir } from '../src/data/index.ts';
import { releaseParameterArena } from '../src/engine/index.ts';
import { engine } from './helpers/gpu.ts';

const haveFmnist = [join(dataDir(), 'fashion-mnist'), DEBIAN_FASHION_MNIST_DIR].some((d) => existsSync(join(d, 't10k-labels-idx1-ubyte.gz')) || existsSync(join(d, 't10k-labels-idx1-ubyte')));
const TINY = ['--limit', '32', '--max-steps', '1', '--workers', '0'];
const SIGMA2 = [0, 0.5, 1, 2, 5, 10, 50];

let root: string;
const D = (name: string): string => join(root, name);

async function goe(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t) };
  const code = await main(args, io);
  return { code, out, err };
}

function json(path: string): any {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function sh(cmd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });
}

let sweep1: { code: number; out: string; err: string };
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'goe-sweep-'));
  if (!haveFmnist) return;
  await engine();
  sweep1 = await goe(['sweep', 'fmnist', '--param', `sigma2=${SIGMA2.join(',')}`, '--out', D('s1'), ...TINY]);
}, 900_000);
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  releaseParameterArena();
});

describe.skipIf(!haveFmnist)('goe sweep fmnist over sigma^2 (seven values including 0)', () => {
  it('trains the base once and fine-tunes every point from it; sweep.json / .csv equal the per-point results.json', () => {
    expect(sweep1.code, sweep1.err).toBe(0);
    const baseLog = readFileSync(join(D('s1'), 'base', 'train.log'), 'utf8');
    expect(baseLog).toMatch(/\[biggan\]/);
    expect(existsSync(join(D('s1'), 'base', 'generator', 'G.safetensors'))).toBe(true);
    const s = json(join(D('s1'), 'sweep.json'));
    expect(s.values).toEqual(SIGMA2);
    expect(s.seeds).toEqual([0]);
    for (const v of SIGMA2) {
      const dir = join(D('s1'), 'points', `sigma2=${v}`, 'seed-0');
      const log = readFileSync(join(dir, 'train.log'), 'utf8');
      expect(log).toContain(`baseline weights from ${join(D('s1'), 'base', 'baseline', 'model.safetensors')}`);
      expect(log).not.toMatch(/\[biggan\]/); // the generator is the base's, not trained again
      expect(json(join(dir, 'outliers', 'generated.npz.json')).sigma2).toBe(v);
      const r = json(join(dir, 'results.json'));
      expect(r.variants.map((x: { outliers: string }) => x.outliers)).toEqual(['generated']);
      for (const row of r.variants[0].rows) {
        for (const m of ['AUROC', 'AUPR-IN', 'AUPR-OUT', 'FPR95TPR']) {
          const got = s.rows.filter((x: any) => x.value === v && x.variant === 'generated' && x.detector === row.detector && x.outlier_set === row.outlier_set && x.metric === m);
          expect(got).toHaveLength(1);
          expect(got[0]).toMatchObject({ n: 1, mean: row[m], values: [row[m]], seeds: [0], ci95_low: null });
        }
      }
      const acc = s.rows.find((x: any) => x.value === v && x.metric === 'accuracy');
      expect(acc.mean).toBe(r.variants[0].accuracy);
    }
    const csv = readFileSync(join(D('s1'), 'sweep.csv'), 'utf8').trim().split('\n');
    expect(csv.length).toBe(1 + s.rows.length);
    const base = json(join(D('s1'), 'base', 'results.json')).variants.find((x: any) => x.outliers === 'none');
    expect(s.baseline.rows).toEqual(base.rows);
  });

  it('draws AUROC and FPR95 against sigma^2 (SVG and PNG at twice its size)', async () => {
    for (const m of ['AUROC', 'FPR95TPR']) {
      const svg = readFileSync(join(D('s1'), `sweep-${m}.svg`), 'utf8');
      const [, w, h] = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
      expect(w).toBeGreaterThan(420);
      const png = await sharp(join(D('s1'), `sweep-${m}.png`)).raw().toBuffer({ resolveWithObject: true });
      expect([png.info.width, png.info.height]).toEqual([w! * 2, h! * 2]);
      expect(svg).toContain('generated / MSP');
      expect(svg).toContain('no outliers / Energy');
    }
  });

  it('skips finished points untouched and resumes an interrupted one', async () => {
    const file = (v: number): string => join(D('s1'), 'points', `sigma2=${v}`, 'seed-0', 'results.json');
    const before = SIGMA2.map((v) => statSync(file(v)).mtimeMs);
    const again = await goe(['sweep', 'fmnist', '--param', `sigma2=${SIGMA2.join(',')}`, '--out', D('s1'), ...TINY]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('0 point(s) run, 7 skipped');
    expect(SIGMA2.map((v) => statSync(file(v)).mtimeMs)).toEqual(before);
    // an interrupted point: its folder without results.json
    const kept = json(file(2));
    rmSync(file(2));
    const third = await goe(['sweep', 'fmnist', '--param', `sigma2=${SIGMA2.join(',')}`, '--out', D('s1'), ...TINY]);
    expect(third.code, third.err).toBe(0);
    expect(third.out).toMatch(/sigma2=2 seed 0: resumed/);
    expect(third.out).toContain('1 point(s) run, 6 skipped');
    expect(json(file(2)).variants[0].rows).toEqual(kept.variants[0].rows);
    // another sweep's options in the same folder are refused before anything runs
    const other = await goe(['sweep', 'fmnist', '--param', 'sigma2=1', '--out', D('s1'), '--limit', '16']);
    expect(other.code).toBe(2);
    expect(other.err).toMatch(/other settings \(experimentArgs differ\)/);
  }, 300_000);

  it('an outlier-count sweep from that baseline and generator, as child processes, with convergence curves', async () => {
    const r = await goe([
      'sweep', 'fmnist', '--param', 'count=4,32', '--variants', 'generated,noise', '--jobs', '2', '--eval-every-epoch',
      '--pretrained', join(D('s1'), 'base', 'baseline', 'model.safetensors'), '--generator', join(D('s1'), 'base', 'generator', 'G.safetensors'), '--out', D('s2'), ...TINY,
    ]);
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toMatch(/\(log .*logs\/count=4-seed-0\.log\)/);
    expect(readFileSync(join(D('s2'), 'base', 'train.log'), 'utf8')).not.toMatch(/\[biggan\]|\[baseline\] \d+ steps/);
    const s = json(join(D('s2'), 'sweep.json'));
    expect(s.values).toEqual([4, 32]);
    expect(new Set(s.rows.map((x: any) => x.variant))).toEqual(new Set(['generated', 'noise']));
    for (const n of [4, 32]) {
      const dir = join(D('s2'), 'points', `count=${n}`, 'seed-0');
      expect(json(join(dir, 'outliers', 'generated.npz.json')).n).toBe(n);
      for (const v of json(join(dir, 'results.json')).variants) {
        // step 0 (the baseline) and the end of the one epoch
        expect(v.curve.map((p: any) => p.step)).toEqual([0, 1]);
        expect(v.curve[1].mean.Energy.AUROC).toBe(v.rows.find((x: any) => x.detector === 'Energy' && x.outlier_set === 'mean').AUROC);
      }
      const png = await sharp(join(dir, 'convergence-AUROC.png')).metadata();
      expect(png.width).toBeGreaterThan(800);
    }
    expect(readFileSync(join(D('s2'), 'sweep-AUROC.svg'), 'utf8')).toContain('noise / MSP');
  }, 600_000);

  it('--emit-commands prints self-contained commands; run in parallel (one base under the lock), then --collect joins them', async () => {
    const emit = await goe([
      'sweep', 'fmnist', '--param', 'sigma2=1,20', '--emit-commands', '--out', D('s3'),
      '--pretrained', join(D('s1'), 'base', 'baseline', 'model.safetensors'), '--generator', join(D('s1'), 'base', 'generator', 'G.safetensors'), ...TINY,
    ]);
    expect(emit.code, emit.err).toBe(0);
    const commands = emit.out.trim().split('\n');
    expect(commands).toHaveLength(2);
    for (const c of commands) expect(c).toMatch(new RegExp(`^/\\S+ /\\S+/src/cli/goe\\.ts sweep --run-point ${D('s3')} --point sigma2=(1|20) --seed 0$`));
    expect(existsSync(join(D('s3'), 'base'))).toBe(false); // nothing runs at emit time
    const runs = await Promise.all(commands.map((c) => sh(`cd / && ${c}`)));
    for (const r of runs) expect(r.code, r.out).toBe(0);
    const baseRuns = runs.filter((r) => r.out.includes('sweep: base: generator and baseline'));
    expect(baseRuns).toHaveLength(1);
    const col = await goe(['sweep', '--collect', D('s3')]);
    expect(col.code, col.err).toBe(0);
    const s = json(join(D('s3'), 'sweep.json'));
    expect(s.values).toEqual([1, 20]);
    for (const v of [1, 20]) {
      const r = json(join(D('s3'), 'points', `sigma2=${v}`, 'seed-0', 'results.json'));
      const auroc = r.variants[0].rows.find((x: any) => x.detector === 'MSP' && x.outlier_set === 'mean').AUROC;
      expect(s.rows.find((x: any) => x.value === v && x.detector === 'MSP' && x.outlier_set === 'mean' && x.metric === 'AUROC').mean).toBe(auroc);
    }
    // sigma^2 = 1 from the same baseline, generator and seed as in the first sweep: the same numbers
    const same = json(join(D('s1'), 'points', 'sigma2=1', 'seed-0', 'results.json'));
    expect(json(join(D('s3'), 'points', 'sigma2=1', 'seed-0', 'results.json')).variants[0].rows).toEqual(same.variants[0].rows);
  }, 600_000);

  it('goe select: each criterion picks a value of the grid and shows its evidence', async () => {
    // the sweep's base is the baseline and generator; its point models are what proxy-ood reads
    const r = await goe(['select', 'fmnist', '--sweep', D('s1'), '--criterion', 'all', '--grid', '0,1,50', '--samples', '16', '--holdout', '32', '--out', D('sel'), ...TINY]);
    expect(r.code, r.err).toBe(0);
    const s = json(join(D('sel'), 'select.json'));
    expect(s.criteria.map((c: any) => c.criterion)).toEqual(['msp-quantile', 'feature-band', 'proxy-ood']);
    const proxy = s.criteria.pop();
    expect(proxy.rows.map((x: any) => [x.value, x.proxy])).toEqual(SIGMA2.slice(0, -1).map((v, i) => [v, SIGMA2[i + 1]]));
    expect(proxy.rows.every((x: any) => x.auroc >= 0 && x.auroc <= 1 && x.n === 32)).toBe(true);
    expect(proxy.chosen).toBe(proxy.rows.reduce((a: any, b: any) => (b.auroc > a.auroc ? b : a)).value);
    for (const c of s.criteria) {
      expect([0, 1, 50]).toContain(c.chosen);
      expect(c.rows.map((x: any) => x.value)).toEqual([0, 1, 50]);
      expect(c.rows.every((x: any) => x.n === 16 && x.fraction >= 0 && x.fraction <= 1)).toBe(true);
      expect(Number.isFinite(c.threshold.tau)).toBe(true);
    }
    expect(r.out).toMatch(/## msp-quantile: sigma2 = (0|1|50)/);
    // each choice held against the sweep's AUROC (mean over the OOD sets no criterion opened)
    const sw = json(join(D('s1'), 'sweep.json'));
    expect(s.againstSweep).toHaveLength(3 * 2);
    for (const x of s.againstSweep) {
      const at = (v: number) => sw.rows.find((y: any) => y.value === v && y.detector === x.detector && y.outlier_set === 'mean' && y.metric === 'AUROC').mean;
      expect(x.bestAuroc).toBe(Math.max(...SIGMA2.map(at)));
      expect(x.aurocAtChosen).toBe(at(x.chosen));
    }
    expect(readFileSync(join(D('sel'), 'select.md'), 'utf8')).toContain('| sigma2 | median MSP | fraction below tau | meets | chosen |');
  }, 300_000);

  it('goe experiment --sigma2 auto selects, then runs at the chosen value', async () => {
    const r = await goe([
      'experiment', 'fmnist', '--sigma2', 'auto', '--select-samples', '16', '--variants', 'generated', '--out', D('auto'),
      '--pretrained', join(D('s1'), 'base', 'baseline', 'model.safetensors'), '--generator', join(D('s1'), 'base', 'generator', 'G.safetensors'), ...TINY,
    ]);
    expect(r.code, r.err).toBe(0);
    const sel = json(join(D('auto'), 'select', 'select.json')).criteria;
    expect(sel.map((c: any) => c.criterion)).toEqual(['feature-band']); // images' default (defaultCriterion)
    const chosen = sel[0].chosen;
    expect(r.out).toContain(`--sigma2 auto chose ${chosen}`);
    expect(json(join(D('auto'), 'outliers', 'generated.npz.json')).sigma2).toBe(chosen);
    expect(existsSync(join(D('auto'), 'results.json'))).toBe(true);
  }, 300_000);
});
