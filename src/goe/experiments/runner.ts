/**
 * Runs an experiment end to end into a run folder:
 *
 *   config.json           the configuration as run
 *   train.log             the log (first line: the adapter), appended to when resumed
 *   baseline/             pre-training checkpoint (checkpoint.safetensors) and weights (model.safetensors)
 *   <variant>/            per outlier variant: OE checkpoint, final weights, evaluation.json
 *   outliers/<variant>.npz  generated / noise outlier sets (uint8 NCHW "x" or int32 ids), reused on resume
 *   results.md|csv|json   the OOD tables (per OOD set and mean, MSP and Energy, the metric convention)
 *
 * Every input is located before any training starts, so a missing dataset or generator stops the
 * run at once with a DatasetUnavailableError / ExperimentInputError naming what to put where.
 * `resume` continues every phase from its checkpoint (bit-identical to an uninterrupted run) and
 * reuses finished phases, saved outlier sets and evaluations.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Adam, LambdaLR, SGD, init, loadModel, manualSeed, runtime, saveModel,
  type LRScheduler, type Optimizer,
} from '../../engine/index.ts';
import {
  CIFAR_MEAN, CIFAR_STD, DataLoader, DatasetUnavailableError, Vocab, basicEnglish, loadCifar, loadGoeSamples, loadImageOod,
  loadMulti30k, loadNewsgroups20, loadReuters52, loadWikiText2, loadWmt16, subset, textSource, Rng, permutation,
  type GetOptions, type ImageTransform, type Source,
} from '../../data/index.ts';
import { BigGANGenerator, GRUClassifier, TransformerModel, WideResNet, generateImages } from '../../models/index.ts';
import { FileSampler, ImageNoiseSampler, LatentSampler, LmSampler, TokenNoiseSampler, saveOutlierSet, type OutlierSampler, type OutlierSet } from '../samplers/index.ts';
import { evaluateDetectors, type EvalSet, type EvaluationResult } from '../train/evaluate.ts';
import { fileLogger, formatDuration, type LogFn } from '../train/log.ts';
import { trainLoop, type Classifier, type TrainLoopResult } from '../train/loop.ts';
import { trainWordLm } from '../train/word-lm.ts';
import { trainBigGANOn } from '../train/biggan.ts';
import { writeReports, type ExperimentReport, type VariantReport } from '../train/report.ts';
import { oeRepoFinetune, type ExperimentConfig, type OodConfig, type OptimizerConfig, type OutlierConfig, type PhaseConfig } from './config.ts';
import { syntheticImages, syntheticTexts } from './synthetic.ts';

/** A missing or unusable input that is not a registered dataset (a generator file, a bad option). */
export class ExperimentInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExperimentInputError';
  }
}

export interface RunOptions {
  /** The run folder (created). */
  out: string;
  resume?: boolean;
  /** Override the fine-tuning epochs. */
  epochs?: number;
  /** Fine-tune with the OE repo's recipe (oe_tune.py) instead of the paper's (see oeRepoFinetune). */
  oeRepo?: boolean;
  /** Override the pre-training epochs. */
  pretrainEpochs?: number;
  /** Data folder (default: GOE_DATA_DIR or the user cache). */
  dataDir?: string;
  /** Download missing datasets (default true). */
  download?: boolean;
  /** Baseline weights (safetensors state dict): skips pre-training. */
  pretrained?: string;
  /** Generator weights for 'generated' outliers (BigGAN G or the word LM, safetensors). */
  generator?: string;
  /** Precomputed outliers (.npz "x" / .npy) for the 'generated' variant instead of a generator. */
  outliersFile?: string;
  /** Detectors to evaluate (default: the config's, MSP and Energy). */
  detectors?: ExperimentConfig['detectors'];
  /** Only these outlier variants (names from the config). */
  variants?: string[];
  /** Cap every dataset at this many samples (quick runs, measurements). */
  limit?: number;
  /** Stop every training phase after this many steps (then evaluate what exists). */
  maxSteps?: number;
  /** Loader worker threads. */
  workers?: number;
  /** Where log lines go besides train.log (default stdout). */
  log?: LogFn;
}

export interface PhaseSummary {
  name: string;
  steps: number;
  epochs: number;
  seconds: number;
  stepsPerSecond: number;
  firstLoss: number | null;
  lastLoss: number | null;
  losses: { step: number; loss: number }[];
}

export interface ExperimentResult {
  dir: string;
  report: ExperimentReport;
  files: { markdown: string; csv: string; json: string };
  phases: PhaseSummary[];
  seconds: number;
}

interface Loaded {
  modality: 'image' | 'text';
  /** Raw training / test texts (text data): what the word LM is trained and validated on. */
  texts: { train: string[]; test: string[] } | null;
  train: Source;
  test: Source;
  numClasses: number;
  vocab: Vocab | null;
  seqLength: number;
  evalTransform: ImageTransform | null;
  trainTransform: ImageTransform | null;
}

function cap(src: Source, limit: number | undefined, seed: number): Source {
  if (limit === undefined || src.length <= limit) return src;
  if (src.kind === 'npy') return src; // lazily read sets are capped by their sampler
  const idx = Array.from(permutation(src.length, new Rng(seed, 0x11)).subarray(0, limit)).sort((a, b) => a - b);
  return subset(src, idx);
}

async function loadData(c: ExperimentConfig, get: GetOptions, opts: RunOptions, log: LogFn): Promise<Loaded> {
  const norm: ImageTransform | null = c.normalize ? { mean: CIFAR_MEAN, std: CIFAR_STD } : null;
  const aug = (t: PhaseConfig): ImageTransform | null => (t.augment ? { ...(norm ?? {}), randomCrop: { size: 32, padding: 4 }, hflip: true } : norm);
  const d = c.data;
  if (d.kind === 'synthetic-images') {
    return {
      modality: 'image',
      train: syntheticImages({ classes: d.classes, n: d.train, seed: c.seed + 1, name: 'synthetic-train' }),
      test: syntheticImages({ classes: d.classes, n: d.test, seed: c.seed + 2, name: 'synthetic-test' }),
      numClasses: d.classes,
      vocab: null,
      texts: null,
      seqLength: 0,
      evalTransform: norm,
      trainTransform: aug(c.pretrain),
    };
  }
  if (d.kind === 'cifar') {
    const train = await loadCifar(d.variant, 'train', get);
    const test = await loadCifar(d.variant, 'test', get);
    log(`data: ${d.variant} train ${train.length}, test ${test.length}`);
    return {
      modality: 'image',
      train: cap(train, opts.limit, c.seed),
      test: cap(test, opts.limit, c.seed),
      numClasses: d.variant === 'cifar10' ? 10 : 100,
      vocab: null,
      texts: null,
      seqLength: 0,
      evalTransform: norm,
      trainTransform: aug(c.pretrain),
    };
  }
  const synthetic = d.kind === 'synthetic-text';
  const train = synthetic ? syntheticTexts({ classes: d.classes, n: d.train, seed: c.seed + 1 }) : await loadNewsgroups20('train', get);
  const test = synthetic ? syntheticTexts({ classes: d.classes, n: d.test, seed: c.seed + 2 }) : await loadNewsgroups20('test', get);
  const trainTok = train.texts.map(basicEnglish);
  const vocab = Vocab.build(trainTok, { maxSize: synthetic ? undefined : d.maxVocab });
  log(`data: ${synthetic ? 'synthetic texts' : '20 Newsgroups'} train ${train.texts.length}, test ${test.texts.length}, vocabulary ${vocab.size}`);
  return {
    modality: 'text',
    train: cap(textSource(trainTok, train.labels, vocab, { length: d.seqLength, name: '20ng-train', classes: train.classes }), opts.limit, c.seed),
    test: cap(textSource(test.texts.map(basicEnglish), test.labels, vocab, { length: d.seqLength, name: '20ng-test', classes: test.classes }), opts.limit, c.seed),
    numClasses: train.classes.length,
    vocab,
    texts: { train: train.texts, test: test.texts },
    seqLength: d.seqLength,
    evalTransform: null,
    trainTransform: null,
  };
}

async function loadOod(sets: readonly OodConfig[], data: Loaded, get: GetOptions, c: ExperimentConfig, opts: RunOptions): Promise<EvalSet[]> {
  const out: EvalSet[] = [];
  for (const [i, s] of sets.entries()) {
    let source: Source;
    if (s.kind === 'image-ood') {
      source = await loadImageOod(s.id, get);
    } else if (s.kind === 'image-noise') {
      // test noise uses seeds apart from the training outliers' (seed + 1000 + i)
      source = (await new ImageNoiseSampler({ kind: s.noise }).sample(Math.min(s.count, opts.limit ?? Infinity), c.seed + 1000 + i)).source;
    } else if (s.kind === 'token-noise') {
      const noise = new TokenNoiseSampler({ vocabSize: data.vocab!.size, tokens: s.tokens, seqLength: data.seqLength, padIndex: data.vocab!.padIndex });
      source = (await noise.sample(Math.min(s.count, opts.limit ?? Infinity), c.seed + 1000 + i)).source;
    } else {
      const texts = s.id === 'reuters52' ? (await loadReuters52('test', get)).texts : s.id === 'multi30k' ? await loadMulti30k('test', get) : await loadWmt16(get);
      source = textSource(texts.map(basicEnglish), null, data.vocab!, { length: data.seqLength, name: s.name });
    }
    out.push({ name: s.name, source: cap(source, opts.limit, c.seed + i) });
  }
  return out;
}

/** What makes a variant's outliers, resolved (and checked) before any training. */
async function outlierSampler(o: OutlierConfig, data: Loaded, get: GetOptions, opts: RunOptions, log: LogFn, seed: number): Promise<OutlierSampler | null> {
  switch (o.kind) {
    case 'none':
      return null;
    case 'image-noise':
      return new ImageNoiseSampler({ kind: o.noise });
    case 'token-noise':
      return new TokenNoiseSampler({ vocabSize: data.vocab!.size, tokens: o.tokens, seqLength: data.seqLength, padIndex: data.vocab!.padIndex });
    case 'file':
      if (!existsSync(o.path)) throw new ExperimentInputError(`outlier file ${o.path} does not exist`);
      return new FileSampler(o.path);
    case 'wikitext2': {
      const lines = await loadWikiText2('train', get);
      const src = textSource(lines.map(basicEnglish), null, data.vocab!, { length: data.seqLength, name: 'wikitext-2' });
      return { name: 'wikitext-2', sample: async (n, seed) => ({ name: 'wikitext-2', source: n > 0 && n < src.length ? cap(src, n, seed) : src, info: { sampler: 'wikitext-2', lines: lines.length } }) };
    }
    case 'biggan': {
      if (opts.outliersFile !== undefined) return new FileSampler(opts.outliersFile);
      const sampleFrom = (G: BigGANGenerator): OutlierSampler =>
        new LatentSampler({ sigma2: o.sigma2, generator: { dimZ: G.dimZ, numClasses: G.nClasses, generate: (z, y) => generateImages(G, z, y), eval: () => G.eval() } });
      if (opts.generator !== undefined) {
        const G = new BigGANGenerator({ nClasses: data.numClasses, ch: o.train?.ch });
        await loadModel(opts.generator, G);
        return sampleFrom(G);
      }
      if (o.file !== undefined) {
        try {
          const src = await loadGoeSamples(50, get);
          return src.kind === 'npy' ? new FileSampler(src.path, { name: 'samples-50.0.npz' }) : { name: src.name, sample: async () => ({ name: src.name, source: src, info: { sampler: 'file' } }) };
        } catch (e) {
          if (!(e instanceof DatasetUnavailableError) || o.train === undefined) throw e;
          log(`[${o.name}] the paper's generated samples are not available (${e.message}); training a BigGAN instead`);
        }
      }
      if (o.train !== undefined) {
        // train it as the paper did (BigGAN-PyTorch's CIFAR script on the training images), once per run folder
        mkdirSync(join(opts.out, 'generator'), { recursive: true });
        const t = o.train;
        const { trainer, G } = await trainBigGANOn({
          train: data.train, numClasses: data.numClasses, iterations: t.iterations, generator: t.ch !== undefined ? { ch: t.ch } : {},
          config: { ...(t.batchSize !== undefined ? { batchSize: t.batchSize } : {}), ...(t.numDSteps !== undefined ? { numDSteps: t.numDSteps } : {}), ...(t.ema !== undefined ? { ema: t.ema } : {}), ...(t.emaStart !== undefined ? { emaStart: t.emaStart } : {}) },
          checkpoint: join(opts.out, 'generator', 'biggan.safetensors'), checkpointEvery: 2000, resume: opts.resume, logEvery: t.iterations < 100 ? 1 : 100, seed: seed + 5, workers: opts.workers, log,
        });
        await saveModel(join(opts.out, 'generator', 'G.safetensors'), G);
        void trainer; // owns G (and D, the optimizers) for the rest of the run
        return sampleFrom(G);
      }
      throw new ExperimentInputError(
        `the "${o.name}" outliers come from a BigGAN trained on the in-distribution data, sampled at sigma^2 = ${o.sigma2}: ` +
          'pass --generator FILE (BigGAN-PyTorch G weights as a safetensors state dict) or --outliers-file FILE.npz (precomputed uint8 NCHW samples, key "x"), ' +
          `or leave this variant out with --variants ${['none', 'noise'].join(',')}`,
      );
    }
    case 'lm': {
      if (opts.outliersFile !== undefined) return new FileSampler(opts.outliersFile);
      let generator = opts.generator;
      if (generator === undefined) {
        // train it as the paper did (word_language_model on the training texts), once per run folder
        mkdirSync(join(opts.out, 'generator'), { recursive: true });
        generator = join(opts.out, 'generator', 'lm.safetensors');
        if (!(opts.resume && existsSync(generator) && existsSync(`${generator}.words.json`))) {
          const t = o.train;
          const lm = await trainWordLm({
            texts: data.texts!.train, valTexts: data.texts!.test, epochs: t.epochs, emsize: t.emsize, nhid: t.nhid, nlayers: t.nlayers, nhead: t.nhead,
            dropout: t.dropout, lr: t.lr, clip: t.clip, bptt: t.bptt, batchSize: t.batchSize, checkpoint: join(opts.out, 'generator', 'checkpoint.safetensors'),
            resume: opts.resume, seed: seed + 7, log, logEvery: 50,
          });
          await saveModel(generator, lm.model);
          writeFileSync(`${generator}.words.json`, JSON.stringify(lm.words));
          lm.model.dispose();
        }
      }
      const wordsFile = `${generator}.words.json`;
      if (!existsSync(wordsFile)) throw new ExperimentInputError(`the LM's vocabulary is missing: expected a JSON array of its words by id at ${wordsFile}`);
      const words = JSON.parse(readFileSync(wordsFile, 'utf8')) as string[];
      const t = o.train;
      const model = new TransformerModel(words.length, { ninp: t.emsize ?? 200, nhid: t.nhid ?? 200, nlayers: t.nlayers ?? 2, nhead: t.nhead ?? 2, dropout: t.dropout ?? 0.2 });
      await loadModel(generator, model);
      return new LmSampler({ model, lmWords: words, vocab: data.vocab!, seqLength: data.seqLength, temperature: o.temperature });
    }
  }
}

function makeModel(c: ExperimentConfig, data: Loaded): Classifier {
  const m = c.model;
  if (m.kind === 'wrn') return new WideResNet(data.numClasses, { depth: m.depth, widenFactor: m.widenFactor, dropRate: m.dropRate });
  const gru = new GRUClassifier(data.numClasses, data.vocab!.size, { embeddingDim: m.embeddingDim, hiddenSize: m.hiddenSize, numLayers: m.numLayers, paddingIdx: data.vocab!.padIndex });
  return gru as unknown as Classifier;
}

function makeOptimizer(model: Classifier, o: OptimizerConfig): Optimizer<any> {
  if (o.kind === 'sgd') return new SGD(model.parameters(), { lr: o.lr, momentum: o.momentum ?? 0, nesterov: o.nesterov ?? false, weightDecay: o.weightDecay ?? 0 });
  return new Adam(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay ?? 0 });
}

/** The OE repo's cosine_annealing(step, total, 1, 1e-6 / lr) as a LambdaLR factor, stepped per batch. */
function makeScheduler(opt: Optimizer<any>, p: PhaseConfig, totalSteps: number): LRScheduler | undefined {
  if (p.schedule === 'constant') return undefined;
  const lrMin = 1e-6 / p.optimizer.lr;
  return new LambdaLR(opt, (step: number) => lrMin + (1 - lrMin) * 0.5 * (1 + Math.cos((step / totalSteps) * Math.PI)));
}

function summary(name: string, r: TrainLoopResult): PhaseSummary {
  const first = r.losses[0]?.loss ?? null;
  const last = r.losses.length > 0 ? r.losses[r.losses.length - 1]!.loss : null;
  return { name, steps: r.steps, epochs: r.epochs, seconds: r.seconds, stepsPerSecond: r.stepsPerSecond, firstLoss: first, lastLoss: last, losses: r.losses.map((l) => ({ step: l.step, loss: l.loss })) };
}

export async function runExperiment(config: ExperimentConfig, opts: RunOptions): Promise<ExperimentResult> {
  const t0 = performance.now();
  const c: ExperimentConfig = structuredClone(config);
  // seeds follow a variant's place in the full config, so running a subset gives the same numbers
  const seedIndex = new Map(c.outliers.map((o, i) => [o.name, i]));
  if (opts.oeRepo) c.finetune = oeRepoFinetune(c.finetune);
  if (opts.epochs !== undefined) c.finetune.epochs = opts.epochs;
  if (opts.pretrainEpochs !== undefined) c.pretrain.epochs = opts.pretrainEpochs;
  if (opts.detectors !== undefined) c.detectors = [...opts.detectors];
  if (opts.variants !== undefined) {
    const unknown = opts.variants.filter((v) => !c.outliers.some((o) => o.name === v));
    if (unknown.length > 0) throw new ExperimentInputError(`unknown outlier variant(s) ${unknown.join(', ')} for ${c.name} (has: ${c.outliers.map((o) => o.name).join(', ')})`);
    c.outliers = c.outliers.filter((o) => opts.variants!.includes(o.name));
  }
  const dir = opts.out;
  mkdirSync(dir, { recursive: true });
  const log = fileLogger(join(dir, 'train.log'), opts.log);
  const { device } = await init();
  log(device.describe());
  log(`experiment ${c.name}${opts.resume ? ' (resume)' : ''} -> ${dir}`);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...c, run: { ...opts, log: undefined } }, null, 2) + '\n');
  const get: GetOptions = { dir: opts.dataDir, download: opts.download ?? true };

  // 1. every input, before the classifiers are trained (a word LM without --generator is trained here)
  const data = await loadData(c, get, opts, log);
  const ood = await loadOod(c.ood, data, get, c, opts);
  const extra = c.extraOod ? await loadOod(c.extraOod, data, get, c, opts) : [];
  const samplers = new Map<string, OutlierSampler | null>();
  for (const o of c.outliers) samplers.set(o.name, await outlierSampler(o, data, get, opts, log, c.seed));
  log(`OOD test sets: ${ood.map((s) => `${s.name} (${s.source.length})`).join(', ')}${extra.length ? `; also ${extra.map((s) => s.name).join(', ')}` : ''}`);

  const phases: PhaseSummary[] = [];
  const evalOpts = { detectors: c.detectors, batchSize: c.evalBatchSize, transform: data.evalTransform, workers: opts.workers };
  /** Evaluates (or, resuming, reuses the evaluation of a finished phase); `complete`: the model's training phase finished. */
  const evaluate = async (model: Classifier, sub: string, complete: boolean): Promise<{ evaluation: EvaluationResult; extra?: EvaluationResult }> => {
    const file = join(dir, sub, 'evaluation.json');
    if (opts.resume && existsSync(file)) {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { complete?: boolean; evaluation: EvaluationResult; extra?: EvaluationResult };
      if (saved.complete === true && complete) {
        log(`[${sub}] evaluation reused from ${file}`);
        return saved.extra ? { evaluation: saved.evaluation, extra: saved.extra } : { evaluation: saved.evaluation };
      }
    }
    const te = performance.now();
    const evaluation = await evaluateDetectors(model, { name: 'in-distribution test', source: data.test }, ood, evalOpts);
    const ex = extra.length > 0 ? await evaluateDetectors(model, { name: 'in-distribution test', source: data.test }, extra, evalOpts) : undefined;
    const res = ex ? { evaluation, extra: ex } : { evaluation };
    writeFileSync(file, JSON.stringify({ complete, ...res }, null, 2) + '\n');
    const acc = evaluation.accuracy === null ? '' : `accuracy ${(evaluation.accuracy * 100).toFixed(2)}%, `;
    const means = c.detectors.map((d) => `${d} AUROC ${(evaluation.reports[d]!.mean.auroc * 100).toFixed(2)} FPR95 ${(evaluation.reports[d]!.mean.fpr95tpr * 100).toFixed(2)}`).join('; ');
    log(`[${sub}] ${acc}${means} (mean over ${ood.length} OOD sets, ${formatDuration((performance.now() - te) / 1000)})`);
    return res;
  };

  // 2. the baseline
  mkdirSync(join(dir, 'baseline'), { recursive: true });
  manualSeed(c.seed);
  const baseline = makeModel(c, data);
  const baselineWeights = join(dir, 'baseline', 'model.safetensors');
  let baselineDone = true;
  if (opts.pretrained !== undefined) {
    if (!existsSync(opts.pretrained)) throw new ExperimentInputError(`--pretrained ${opts.pretrained} does not exist`);
    await loadModel(opts.pretrained, baseline);
    log(`baseline weights from ${opts.pretrained}`);
  } else {
    const loader = new DataLoader({ source: data.train, batchSize: c.pretrain.batchSize, seed: c.seed, transform: data.trainTransform, workers: opts.workers });
    const opt = makeOptimizer(baseline, c.pretrain.optimizer);
    try {
      const r = await trainLoop({
        name: 'baseline', model: baseline, loader, epochs: c.pretrain.epochs, optimizer: opt, scheduler: makeScheduler(opt, c.pretrain, c.pretrain.epochs * loader.numBatches),
        schedulerUnit: 'step', loss: 'ce', logEvery: c.logEvery, checkpoint: join(dir, 'baseline', 'checkpoint.safetensors'),
        checkpointEvery: c.checkpointEvery, resume: opts.resume, log, stopAfter: opts.maxSteps, meta: { experiment: c.name },
      });
      phases.push(summary('baseline', r));
      log(`[baseline] ${r.steps} steps in ${formatDuration(r.seconds)} (${r.stepsPerSecond.toFixed(2)} steps/s this run)${r.interrupted ? '; stopped by --max-steps, --resume continues it' : ''}`);
      baselineDone = !r.interrupted;
    } finally {
      await loader.close();
      opt.dispose();
    }
    await saveModel(baselineWeights, baseline);
  }

  // 3. one OE run per outlier variant
  const variants: VariantReport[] = [];
  for (const o of c.outliers) {
    const vi = seedIndex.get(o.name)!;
    const sub = o.name;
    mkdirSync(join(dir, sub), { recursive: true });
    const sampler = samplers.get(o.name)!;
    if (sampler === null) {
      const ev = await evaluate(baseline, sub, baselineDone);
      variants.push({ outliers: o.name, description: `${baselineDone ? '' : 'PROVISIONAL (training stopped by --max-steps). '}No outliers: the baseline classifier.`, evaluation: ev.evaluation, extra: ev.extra, training: phases.find((p) => p.name === 'baseline') as unknown as Record<string, unknown> });
      continue;
    }
    if (!baselineDone) {
      log(`[${sub}] skipped: the baseline it fine-tunes is not finished (--resume continues it)`);
      continue;
    }
    // the outliers: reuse a saved set, else sample (seeded) and save it
    mkdirSync(join(dir, 'outliers'), { recursive: true });
    const saved = join(dir, 'outliers', `${sub}.npz`);
    const count = 'count' in o ? (opts.limit !== undefined && (o.count === 0 || o.count > opts.limit) ? opts.limit : o.count) : (opts.limit ?? 0);
    let set: OutlierSet;
    if (opts.resume && existsSync(saved)) {
      set = await new FileSampler(saved).sample(0, 0);
      if (existsSync(`${saved}.json`)) {
        // describe the set as it was made, not as the file it was reloaded from
        const { name, ...info } = JSON.parse(readFileSync(`${saved}.json`, 'utf8')) as { name: string } & Record<string, unknown>;
        set = { ...set, name, info };
      }
      log(`[${sub}] outliers reused from ${saved} (${set.source.length})`);
    } else {
      const ts = performance.now();
      set = await sampler.sample(count, c.seed + 100 + vi);
      if (set.source.kind === 'array') await saveOutlierSet(saved, set);
      log(`[${sub}] ${set.source.length} outliers from ${set.name} in ${formatDuration((performance.now() - ts) / 1000)}${set.source.kind === 'array' ? ` -> ${saved}` : ''}`);
    }
    manualSeed(c.seed + 1 + vi);
    const model = makeModel(c, data);
    if (c.finetune.fromBaseline) await loadModel(baselineWeights, model);
    const ft = c.finetune;
    const loader = new DataLoader({
      source: data.train, batchSize: ft.batchSize, seed: c.seed + 1 + vi, transform: data.evalTransform, workers: opts.workers,
      outliers: { source: set.source, mode: ft.mode, batchSize: ft.outlierBatchSize, transform: data.evalTransform },
    });
    const opt = makeOptimizer(model, ft.optimizer);
    let done = true;
    try {
      const r = await trainLoop({
        name: `oe-${sub}`, model, loader, epochs: ft.epochs, optimizer: opt, scheduler: makeScheduler(opt, ft, ft.epochs * loader.numBatches), schedulerUnit: 'step',
        loss: 'oe', lambda: ft.lambda, averaging: ft.averaging, logEvery: c.logEvery, checkpoint: join(dir, sub, 'checkpoint.safetensors'),
        checkpointEvery: c.checkpointEvery, resume: opts.resume, log, stopAfter: opts.maxSteps, meta: { experiment: c.name, outliers: sub },
      });
      phases.push(summary(`oe-${sub}`, r));
      log(`[oe-${sub}] ${r.steps} steps in ${formatDuration(r.seconds)} (${r.stepsPerSecond.toFixed(2)} steps/s this run)${r.interrupted ? '; stopped by --max-steps, --resume continues it' : ''}`);
      done = !r.interrupted;
    } finally {
      await loader.close();
      opt.dispose();
    }
    await saveModel(join(dir, sub, 'model.safetensors'), model);
    const ev = await evaluate(model, sub, done);
    variants.push({
      outliers: o.name,
      description: `${done ? '' : 'PROVISIONAL (training stopped by --max-steps). '}Outlier Exposure fine-tuning (${ft.epochs} epochs, lambda ${ft.lambda}, ${ft.mode} batches of ${ft.batchSize}) on ${set.source.length} outliers from ${set.name} (${JSON.stringify(set.info)}).`,
      evaluation: ev.evaluation,
      extra: ev.extra,
      training: phases.find((p) => p.name === `oe-${sub}`) as unknown as Record<string, unknown>,
    });
    model.dispose();
  }
  baseline.dispose();

  const report: ExperimentReport = { experiment: c.name, description: c.description, adapter: runtime().device.describe(), variants };
  const files = writeReports(dir, report);
  const seconds = (performance.now() - t0) / 1000;
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ experiment: c.name, seconds, phases }, null, 2) + '\n');
  log(`results: ${files.markdown} (${formatDuration(seconds)} in all)`);
  return { dir, report, files, phases, seconds };
}

/** True when the error is a missing input the user can fix (exit 2 in the CLI). */
export function isInputError(e: unknown): boolean {
  return e instanceof DatasetUnavailableError || e instanceof ExperimentInputError;
}


