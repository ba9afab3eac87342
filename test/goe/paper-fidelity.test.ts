/**
 * Issue 14 ("faithful to the paper's code"): each row of src/goe/experiments/README.md's table of
 * settings against the reference has a check here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DataLoader, IMAGE_OOD_GEOMETRY, NEWSGROUPS20_CLASSES, Vocab, basicEnglish, imageFolder, nltkEnglishStopWords, pytorchOodText, readLabelledLines, textSource,
  type ArraySource, type Source,
} from '../../src/data/index.ts';
import { computeOodMetrics } from '../../src/goe/metrics/index.ts';
import { experimentConfig } from '../../src/goe/experiments/config.ts';
import { FileSampler, ImageNoiseSampler, TokenNoiseSampler, saveOutlierSet } from '../../src/goe/samplers/index.ts';
import { evaluateScores } from '../../src/goe/train/evaluate.ts';
import { reportCsv, reportJson, reportMarkdown } from '../../src/goe/train/report.ts';
import { png, tempDir } from '../data/helpers.ts';

const tmp = tempDir('goe-fidelity-');
afterAll(() => tmp.cleanup());

async function batches(source: Source, batchSize: number, epoch = 0, outliers?: Source): Promise<{ shape: number[]; x: number[] }[]> {
  const loader = new DataLoader({ source, batchSize, shuffle: false, workers: 0, ...(outliers ? { outliers: { source: outliers, mode: 'mixed' as const } } : {}) });
  const out: { shape: number[]; x: number[] }[] = [];
  for await (const b of loader.epoch(epoch)) out.push({ shape: [...b.shape], x: [...b.x] });
  await loader.close();
  return out;
}

describe('text pipeline: the notebooks over pytorch-ood@415df13', () => {
  it('token ids of 20NG-style texts equal the notebook\'s (first word and stop words dropped, legacy vocab, <unk> = 0)', async () => {
    const file = join(tmp.dir, '20ng.txt');
    writeFileSync(file, "alt.atheism\tfrom mathew the atheism faq is a list of things, and it isn't complete!\ncomp.graphics\tsubject graphics list graphics faq\n");
    const train = await readLabelledLines(file, NEWSGROUPS20_CLASSES);
    const texts = train.texts.map(pytorchOodText);
    expect(texts).toEqual(["mathew atheism faq list things, isn't complete!", 'graphics list graphics faq']);
    const tok = texts.map(basicEnglish);
    const vocab = Vocab.build(tok); // the whole vocabulary: torchtext 0.9 build_vocab_from_iterator -> Vocab(counter)
    expect(vocab.tokens).toEqual(['<unk>', '<pad>', 'faq', 'graphics', 'list', '!', "'", ',', 'atheism', 'complete', 'isn', 'mathew', 't', 'things']);
    const test = ['re: new graphics card'].map(pytorchOodText).map(basicEnglish); // "re:" is the dropped first word
    const src = textSource([...tok, ...test], null, vocab, { length: 'batch-longest', padId: vocab.unkIndex });
    // collate_batch: left padding with zeros to the batch's longest sequence
    const b = await batches(src, 2);
    expect(b[0]!.shape).toEqual([2, 11]);
    expect(b[0]!.x).toEqual([11, 8, 2, 4, 13, 7, 10, 6, 12, 9, 5, 0, 0, 0, 0, 0, 0, 0, 3, 4, 3, 2]);
    expect(b[1]!.shape).toEqual([1, 3]);
    expect(b[1]!.x).toEqual([0, 3, 0]);
    expect(nltkEnglishStopWords().size).toBe(153);
  });

  it('ragged sets survive subsets, a saved .npz and batches mixed with fixed-width noise', async () => {
    const vocab = Vocab.build([['a', 'b', 'c']]);
    const src = textSource([['a'], ['a', 'b', 'c'], []], null, vocab, { length: 'batch-longest', padId: 0 });
    const path = join(tmp.dir, 'ragged.npz');
    await saveOutlierSet(path, { name: 'r', source: src, info: {} });
    const back = (await new FileSampler(path).sample(0, 0)).source as ArraySource;
    expect([...back.offsets!]).toEqual([0, 1, 4, 4]);
    expect(back.pad).toBe(0);
    expect(await batches(back, 3)).toEqual(await batches(src, 3));
    const noise = (await new TokenNoiseSampler({ vocabSize: 10, tokens: 2, seqLength: 'batch-longest' }).sample(1, 1)).source;
    const [mixed] = await batches(src, 4, 0, noise);
    expect(mixed!.shape).toEqual([4, 3]); // the longest (3 ids) sets the width; the 2-id noise is padded with 0
    expect(mixed!.x.slice(0, 9)).toEqual([0, 0, 2, 2, 3, 4, 0, 0, 0]);
    expect(mixed!.x[9]).toBe(0);
  });
});

describe('noise baselines', () => {
  it('text: 80,000 sequences of 20 ids in [0, 10000) per epoch, drawn afresh on every access', async () => {
    const c = experimentConfig('newsgroups');
    expect(c.outliers.find((o) => o.name === 'noise')).toEqual({ name: 'noise', kind: 'token-noise', tokens: 20, count: 80000, ids: [0, 10000], fresh: true });
    const sampler = new TokenNoiseSampler({ vocabSize: 50000, tokens: 20, seqLength: 'batch-longest', ids: [0, 10000], fresh: true });
    const set = await sampler.sample(80000, 3);
    expect(set.source.length).toBe(80000);
    const inliers = textSource(Array.from({ length: 11293 }, () => ['a']), new Int32Array(11293), Vocab.build([['a']]), { length: 'batch-longest', padId: 0 });
    const steps = new DataLoader({ source: inliers, batchSize: 32, workers: 0, outliers: { source: set.source, mode: 'mixed' } });
    expect(steps.numBatches).toBe(Math.ceil((11293 + 80000) / 32));
    await steps.close();
    const small = (await sampler.sample(64, 3)).source;
    const e0 = await batches(small, 16, 0);
    const ids = e0.flatMap((b) => b.x);
    expect(e0.every((b) => b.shape[1] === 20)).toBe(true);
    expect(Math.min(...ids)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...ids)).toBeLessThan(10000);
    expect(Math.max(...ids)).toBeGreaterThan(9000);
    expect(await batches(small, 16, 0)).toEqual(e0); // reproducible
    expect((await batches(small, 16, 1)).flatMap((b) => b.x)).not.toEqual(ids); // fresh next epoch
  });

  it('images: 80,000 of torch.randint(0, 255), values 0..254, in the paper configs only', async () => {
    for (const name of ['cifar10', 'cifar100']) expect(experimentConfig(name).outliers.find((o) => o.name === 'noise')).toMatchObject({ count: 80000, values: 'randint255' });
    expect(experimentConfig('fmnist').outliers.find((o) => o.name === 'noise')).toMatchObject({ count: 4096 });
    expect(experimentConfig('smoke').outliers.find((o) => o.name === 'noise')).toMatchObject({ count: 32 });
    const max = async (values?: 'randint255') => Math.max(...((await new ImageNoiseSampler({ kind: 'uniform', values }).sample(20, 1)).source as ArraySource).data);
    expect(await max('randint255')).toBe(254);
    expect(await max()).toBe(255);
  });
});

describe('OOD test images', () => {
  it("default geometry is the notebooks' Resize([32, 32]) (squash); the OE repo's crops", async () => {
    const dir = join(tmp.dir, 'ood');
    mkdirSync(dir);
    const px = new Uint8Array(32 * 64 * 3).fill(128);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 16; x++) px.set([0, 255, 0], (y * 64 + x) * 3);
    writeFileSync(join(dir, 'wide.png'), png(64, 32, 3, px));
    const green = async (g: 'notebooks' | 'oe-repo') => (await batches(await imageFolder(dir, { ...IMAGE_OOD_GEOMETRY[g], structure: 'flat' }), 1))[0]!.x[1 * 1024 + 16 * 32];
    expect(await green('notebooks')).toBeCloseTo(1, 5); // the left quarter survives the squash
    expect(await green('oe-repo')).toBeCloseTo(128 / 255, 5); // CenterCrop cut it away
  });
});

describe("metrics in the paper's terms", () => {
  it('AUPR by the trapezoid rule from (recall 0, precision 1), hand-computed', () => {
    const m = computeOodMetrics([0.1, 0.2, 0.4], [0.35, 0.8], { prRule: 'trapezoid' });
    // OOD positive: (0,1) (.5,1) (.5,.5) (1,2/3) (1,.5) (1,.4) -> .5 + .5 * (.5 + 2/3) / 2
    expect(m.auprOut).toBeCloseTo(19 / 24, 12);
    // in positive: (1/3,1) (2/3,1) (2/3,2/3) (1,3/4) (1,3/5) -> 2/3 + (1/3) * (2/3 + 3/4) / 2
    expect(m.auprIn).toBeCloseTo(65 / 72, 12);
    expect(computeOodMetrics([0.1, 0.2, 0.4], [0.35, 0.8]).auprOut).toBeCloseTo(5 / 6, 12); // step rule
  });

  it('paper experiments report by that rule with the PR columns named both ways', () => {
    for (const name of ['cifar10', 'cifar100', 'newsgroups']) expect(experimentConfig(name).metrics).toEqual({ prRule: 'trapezoid', paperNames: true });
    expect(experimentConfig('fmnist').metrics).toBeUndefined();
    const evaluation = evaluateScores({ detectors: ['MSP'], in: { name: 'in', scores: { MSP: [0.1, 0.2, 0.4] } }, ood: [{ name: 'o', scores: { MSP: [0.35, 0.8] } }] }, { prRule: 'trapezoid' });
    const r = { experiment: 'x', description: 'd', adapter: 'a', variants: [{ outliers: 'none', description: 'n', evaluation }], options: { prRule: 'trapezoid' as const }, paperNames: true };
    expect(reportMarkdown(r)).toContain('| AUROC | AUPR-IN (paper: AUPR-OUT) | AUPR-OUT (paper: AUPR-IN) | FPR95TPR |');
    expect(reportMarkdown(r)).toContain('79.17'); // 19/24, the paper's "AUPR-IN"
    expect(reportCsv(r).split('\n')[0]).toContain('AUPR-OUT (paper: AUPR-IN)');
    const j = JSON.parse(reportJson(r)) as { pr_rule: string; paper_column_names: Record<string, string> };
    expect(j.pr_rule).toBe('trapezoid');
    expect(j.paper_column_names['AUPR-OUT']).toBe('AUPR-IN');
  });
});

describe('natural outliers', () => {
  it('Tiny300k is a variant of cifar10 and cifar100', () => {
    for (const name of ['cifar10', 'cifar100']) expect(experimentConfig(name).outliers.find((o) => o.name === 'tiny300k')).toEqual({ name: 'tiny300k', kind: 'tiny300k', count: 0 });
  });
});
