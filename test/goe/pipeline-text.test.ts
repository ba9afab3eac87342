/**
 * The text path of the pipeline end to end (the smoke-text experiment): synthetic labelled texts
 * through basic_english and a vocabulary, left-padded int32 batches, a GRU classifier trained
 * with Adam, OE on random 20-token sequences mixed into the batches, MSP/Energy against other
 * random token sequences, reports. Checks that both phases learn and the outputs are complete.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine } from '../helpers/gpu.ts';
import { releaseParameterArena } from '../../src/engine/index.ts';
import { NpzFile } from '../../src/data/index.ts';
import { SMOKE_TEXT, runExperiment, type ExperimentResult } from '../../src/goe/index.ts';

let dir: string;
let result: ExperimentResult;
const lines: string[] = [];

beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-smoke-text-'));
  result = await runExperiment(SMOKE_TEXT, { out: dir, workers: 0, log: (l) => lines.push(l) });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  releaseParameterArena();
});

describe('smoke-text experiment end to end', () => {
  it('builds the vocabulary, trains the GRU and fine-tunes it with OE; losses go down', () => {
    expect(lines[0]).toMatch(/^adapter: /);
    expect(lines).toContain('data: synthetic texts train 48, test 24, vocabulary 45'); // <unk>, <pad>, 3 x 12 class words, 6 fillers, '.'
    expect(result.phases.map((p) => [p.name, p.steps])).toEqual([['baseline', 6], ['oe-noise', 10], ['oe-generated', 8]]); // 48 / 16; (48 + 32) / 16; (48 + 16) / 16
    const mean = (xs: { loss: number }[]) => xs.reduce((s, x) => s + x.loss, 0) / xs.length;
    for (const p of result.phases) {
      const k = Math.floor(p.losses.length / 2);
      expect(mean(p.losses.slice(k)), p.name).toBeLessThan(mean(p.losses.slice(0, k)));
    }
  });

  it('trains the word LM on the training texts, keeps it for reuse, and samples 20-word texts from it', async () => {
    expect(lines.some((l) => /^\[word-lm\] end of epoch 2: validation loss \d+\.\d{3}/.test(l))).toBe(true);
    const words = JSON.parse(readFileSync(join(dir, 'generator', 'lm.safetensors.words.json'), 'utf8')) as string[];
    expect(words).toContain('<eos>');
    expect(words).toContain('K0w0');
    const texts = readFileSync(join(dir, 'outliers', 'generated.npz.txt'), 'utf8').trimEnd().split('\n');
    expect(texts.length).toBe(16);
    for (const t of texts) {
      expect(t.split(' ').length).toBe(20);
      for (const w of t.split(' ')) expect(words).toContain(w);
    }
    expect(JSON.parse(readFileSync(join(dir, 'outliers', 'generated.npz.json'), 'utf8'))).toMatchObject({ sampler: 'transformer-lm', temperature: 2, words: 320 });
  });

  it('saves the outliers as int32 ids and reports finite metrics with the convention', async () => {
    const npz = await NpzFile.open(join(dir, 'outliers', 'noise.npz'));
    const x = await npz.array('x');
    expect(x.header.descr).toBe('<i4');
    expect(x.shape).toEqual([32, 24]);
    for (const f of ['baseline/model.safetensors', 'noise/model.safetensors', 'results.md', 'results.csv', 'results.json']) expect(existsSync(join(dir, f)), f).toBe(true);
    for (const v of result.report.variants) expect(v.evaluation.accuracy!, v.outliers).toBeGreaterThan(1 / 3);
    for (const v of result.report.variants) for (const rep of Object.values(v.evaluation.reports)) for (const r of [...rep.rows, rep.mean]) expect(Number.isFinite(r.auroc) && Number.isFinite(r.fpr95tpr)).toBe(true);
    const json = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(json.variants.map((v: { outliers: string }) => v.outliers)).toEqual(['none', 'noise', 'generated']);
    expect(json.variants[1].rows.map((r: { detector: string; outlier_set: string }) => `${r.detector}/${r.outlier_set}`)).toEqual(['MSP/Random tokens', 'MSP/mean', 'Energy/Random tokens', 'Energy/mean']);
    expect(readFileSync(join(dir, 'results.md'), 'utf8')).toContain('Convention ood-positive');
  });

  it('--max-steps stops each phase early (provisional, every variant from the partial baseline); --resume then reproduces the uninterrupted run exactly', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'goe-smoke-text-steps-'));
    try {
      const l1: string[] = [];
      const part = await runExperiment(SMOKE_TEXT, { out: dir2, workers: 0, maxSteps: 2, log: (l) => l1.push(l) });
      expect(part.phases.map((p) => [p.name, p.steps])).toEqual([['baseline', 2], ['oe-noise', 2], ['oe-generated', 2]]);
      expect(l1).toContain('[noise] fine-tunes the partial baseline (stopped by --max-steps): its numbers are provisional');
      expect(part.report.variants.map((v) => v.outliers)).toEqual(['none', 'noise', 'generated']);
      for (const v of part.report.variants) expect(v.description, v.outliers).toMatch(/^PROVISIONAL/);
      const l2: string[] = [];
      const rest = await runExperiment(SMOKE_TEXT, { out: dir2, workers: 0, resume: true, log: (l) => l2.push(l) });
      expect(l2.some((l) => l.startsWith('[baseline] resumed from') && l.endsWith('epoch 1/2, batch 2/3, step 2'))).toBe(true);
      expect(l2.some((l) => l.startsWith('[none] evaluation reused'))).toBe(false); // the provisional one is not reused
      expect(l2).toContain('[noise] restarts: it was fine-tuned from the unfinished baseline');
      expect(rest.phases.map((p) => [p.name, p.steps])).toEqual([['baseline', 6], ['oe-noise', 10], ['oe-generated', 8]]);
      // training is bit-identical: the same losses, weights and outlier sets
      for (const [a, b] of rest.phases.map((p, i) => [p, result.phases[i]!] as const)) expect(a.losses, a.name).toEqual(b.losses);
      for (const f of ['baseline/model.safetensors', 'noise/model.safetensors', 'generated/model.safetensors', 'outliers/noise.npz', 'outliers/generated.npz', 'generator/lm.safetensors']) {
        expect(readFileSync(join(dir2, f)).equals(readFileSync(join(dir, f))), f).toBe(true);
      }
      expect(readFileSync(rest.files.markdown, 'utf8')).toBe(readFileSync(result.files.markdown, 'utf8'));
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});
