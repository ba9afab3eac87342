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
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  Adam, LambdaLR, SGD, getRngState, init, loadModel, manualSeed, runtime, saveModel, setRngState,
  type LRScheduler, type Module, type Optimizer,
} from '../../engine/index.ts';
import {
  CIFAR_MEAN, CIFAR_STD, DataLoader, DataError, DatasetUnavailableError, Vocab, basicEnglish, buildFontGlyphs, buildIconImages, channelStats, convertSource, loadCifar, loadCifar10Grey, loadKmnist, loadMnist, loadMnistOod,
  loadNotMnistSmall, loadGoeSamples, loadTinyImages300k, openImageSet, openTrainTest, type OfflineSet, loadImageOod,
  loadMulti30k, loadNewsgroups20, loadReuters52, loadWikiText2, loadWmt16, pytorchOodText, subset, textSource, Rng, permutation,
  type GetOptions, type ImageTransform, type Source,
} from '../../data/index.ts';
import { BigGANGenerator, CIFAR_TRAIN_CONFIG, GRUClassifier, TransformerModel, WideResNet, generateImages } from '../../models/index.ts';
import { FileSampler, ImageNoiseSampler, LatentSampler, LmSampler, TokenNoiseSampler, saveOutlierSet, type OutlierSampler, type OutlierSet } from '../samplers/index.ts';
import { evaluateScores, scoreRun, type EvalSet, type EvaluationResult, type RunScores } from '../train/evaluate.ts';
import { sampleImages, writeRunFigures } from '../report/index.ts';
import { fileLogger, formatDuration, type LogFn } from '../train/log.ts';
import { plainProgress, timedProgress, type PhaseProgress, type Progress } from '../train/progress.ts';
import { trainLoop, type Classifier, type TrainLoopResult } from '../train/loop.ts';
import { isCorruptCheckpoint, previousCheckpoint } from '../train/checkpoint-files.ts';
import { SafetensorsError } from '../../engine/index.ts';
import { readJsonFile, writeJsonAtomic, writeTextAtomic } from '../train/run-files.ts';
import { NpzFile } from '../../data/index.ts';
import { trainWordLm } from '../train/word-lm.ts';
import { trainBigGANOn } from '../train/biggan.ts';
import { readTorchStateDict, type HostStateTensor } from '../../data/torch-checkpoint.ts';
import { writeReports, type ExperimentReport, type VariantReport } from '../train/report.ts';
import { oeRepoFinetune, type BigGANConfig, type ExperimentConfig, type OodConfig, type OptimizerConfig, type OutlierConfig, type PhaseConfig } from './config.ts';
import { syntheticImages, syntheticTexts } from './synthetic.ts';
import { ConvergenceCurve, curvePoint } from '../sweep/curve.ts';
import { writeConvergenceFigures } from '../sweep/plots.ts';

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
  /** Run the config's usual recipes (`full`) instead of its time-budgeted default. */
  full?: boolean;
  /** The user's OOD test sets (--ood NAME=PATH), reported with the config's and in the mean. */
  ood?: { name: string; path: string }[];
  /** The user's in-distribution (the `images` experiment): labelled train and test sets. */
  train?: string;
  test?: string;
  /** The classifier as "wrn-D-K" (WRN depth D, widen factor K) instead of the config's. */
  model?: string;
  /** How the BigGAN outliers are sampled, overriding the config (--sigma2, --latent-scale, --sample-mode). */
  latent?: { sigma2?: number; scale?: 'std' | 'variance'; mode?: 'train' | 'eval' };
  /** Seed of the outlier sampling and the OE fine-tuning (--seed; default the config's): the sweep's seeds. */
  seed?: number;
  /** Outliers per variant (--count), the OE weight (--lambda), the LM's sampling temperature (--temperature). */
  count?: number;
  lambda?: number;
  temperature?: number;
  /** Stop after the inputs (a generator trained here) and the baseline's evaluation: the sweep's shared base. */
  baseOnly?: boolean;
  /** The OOD metrics after step 0 and every fine-tuning epoch (--eval-every-epoch), or every this many steps too. */
  evalEveryEpoch?: boolean;
  evalEvery?: number;
  /** Where log lines go besides train.log (default stdout). */
  log?: LogFn;
  /** Progress bars per phase (the CLI passes terminalProgress on a TTY); none: log lines only. */
  progress?: Progress;
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
  /** Token sequence length, or 'batch-longest' (ragged sources, each batch padded to its longest with padId). */
  seqLength: number | 'batch-longest';
  padId?: number;
  /** The notebooks' text pipeline (newsgroups pipeline 'paper'): pytorch-ood@415df13's texts, empty lines kept. */
  paperText?: boolean;
  evalTransform: ImageTransform | null;
  trainTransform: ImageTransform | null;
  /** The eval transform with RandomCrop(size, padding 4) + horizontal flip (images; null for text): what `augment` applies. */
  augmentTransform: ImageTransform | null;
}

/**
 * Loads a state dict the user named (--pretrained, --generator) into `model`: safetensors, or a
 * PyTorch torch.save file (.pt/.pth/.bin/.ckpt/.pkl) read as tensors only through the safe
 * unpickler (src/data/torch-checkpoint.ts, as `goe convert` reads it). What the user can fix (a
 * missing file, a pickle that is not a state dict of tensors, keys or shapes of another model) is
 * an ExperimentInputError that says what to do.
 */
export async function loadUserWeights(path: string, model: Module, flag: string): Promise<void> {
  if (!existsSync(path)) throw new ExperimentInputError(`${flag} ${path} does not exist`);
  const torchFile = /\.(pt|pth|pkl|bin|ckpt)$/i.test(path);
  let torchState: Map<string, HostStateTensor> | null = null;
  if (torchFile) {
    try {
      torchState = (await readTorchStateDict(path)).tensors;
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      throw new ExperimentInputError(
        `${flag} ${path} looks like a PyTorch pickle but is not a state dict of tensors that the safe reader takes (${e.message.split('\n')[0]}); ` +
          `convert it with \`goe convert ${path} OUT.safetensors --map NAME\` (goe convert --help lists the maps) and pass the .safetensors`,
      );
    }
  }
  try {
    if (torchState) model.loadStateDict(torchState);
    else await loadModel(path, model);
  } catch (e) {
    const msg = (e as Error).message;
    if (!torchState && isCorruptCheckpoint(e)) throw new ExperimentInputError(`${flag} ${path} is not a readable safetensors file (${msg.split('\n')[0]!.replace(/^safetensors: /, '')}): is it whole? fetch or convert it again`);
    const hint = msg.includes('module.')
      ? ' (its keys start with "module.", as nn.DataParallel saves them: `goe convert IN OUT.safetensors` removes that prefix)'
      : torchState
        ? " (is it the weights of this experiment's model? a checkpoint in another layout converts with goe convert --map NAME)"
        : ' (is it the weights of this experiment\'s model? check its depth, width, classes and input channels)';
    throw new ExperimentInputError(`${flag} ${path} does not fit the model: ${msg.split('\n').slice(0, 4).join('; ')}${hint}`);
  }
}

function fmt(v: readonly number[]): string {
  return `[${v.map((x) => x.toFixed(4)).join(', ')}]`;
}

/** [C, H, W] of the in-distribution images. */
function imageShape(data: Loaded): [number, number, number] {
  return data.train.sampleShape as [number, number, number];
}

/** True when a saved outlier set came from an unfinished generator (its .json says so). */
function madeProvisionally(saved: string): boolean {
  if (!existsSync(`${saved}.json`)) return false;
  return readJsonFile<{ provisional?: string }>(`${saved}.json`, 'delete it and its .npz to sample the set again').provisional !== undefined;
}

function cap(src: Source, limit: number | undefined, seed: number): Source {
  if (limit === undefined || src.length <= limit) return src;
  if (src.kind === 'npy') return src; // lazily read sets are capped by their sampler
  const idx = Array.from(permutation(src.length, new Rng(seed, 0x11)).subarray(0, limit)).sort((a, b) => a - b);
  return subset(src, idx);
}

async function loadData(c: ExperimentConfig, get: GetOptions, opts: RunOptions, log: LogFn): Promise<Loaded> {
  const norm: ImageTransform | null = c.normalize === true ? { mean: CIFAR_MEAN, std: CIFAR_STD } : c.normalize === false ? null : { mean: c.normalize.mean, std: c.normalize.std };
  const augmented = (t: ImageTransform | null, size: number | [number, number]): ImageTransform => ({ ...(t ?? {}), randomCrop: { size, padding: 4 }, hflip: true });
  const aug = (t: PhaseConfig, size: number): ImageTransform | null => (t.augment ? augmented(norm, size) : norm);
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
      trainTransform: aug(c.pretrain, 32),
      augmentTransform: augmented(norm, 32),
    };
  }
  if (d.kind === 'mnist') {
    const train = await loadMnist(d.variant, 'train', get);
    const test = await loadMnist(d.variant, 'test', get);
    log(`data: ${d.variant} train ${train.length}, test ${test.length} (${train.name})`);
    return {
      modality: 'image', train: cap(train, opts.limit, c.seed), test: cap(test, opts.limit, c.seed), numClasses: train.classes?.length ?? 10,
      vocab: null, texts: null, seqLength: 0, evalTransform: norm, trainTransform: aug(c.pretrain, train.sampleShape[2]!), augmentTransform: augmented(norm, train.sampleShape[2]!),
    };
  }
  if (d.kind === 'user-images') {
    const sets = await openTrainTest(d.train, d.test);
    const norm = await channelStats(sets.train.source, { seed: c.seed });
    log(`data: ${d.train} (${sets.train.source.length} images) / ${d.test} (${sets.test.source.length}), ${sets.classes.length} classes, ` +
      `${sets.train.channels}x${sets.train.height}x${sets.train.width}; normalised with the training set's mean ${fmt(norm.mean)} and std ${fmt(norm.std)}`);
    const t: ImageTransform = { mean: norm.mean, std: norm.std };
    return {
      modality: 'image', train: cap(sets.train.source, opts.limit, c.seed), test: cap(sets.test.source, opts.limit, c.seed), numClasses: sets.classes.length,
      vocab: null, texts: null, seqLength: 0, evalTransform: t, trainTransform: c.pretrain.augment ? augmented(t, [sets.train.height, sets.train.width]) : t,
      augmentTransform: augmented(t, [sets.train.height, sets.train.width]),
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
      trainTransform: aug(c.pretrain, 32),
      augmentTransform: augmented(norm, 32),
    };
  }
  const synthetic = d.kind === 'synthetic-text';
  // the notebooks' pipeline: pytorch-ood's texts, the whole vocabulary, ragged sequences padded per batch with 0 (<unk>)
  const paper = d.kind === 'newsgroups' && (d.pipeline ?? 'paper') === 'paper';
  const train = synthetic ? syntheticTexts({ classes: d.classes, n: d.train, seed: c.seed + 1 }) : await loadNewsgroups20('train', get);
  const test = synthetic ? syntheticTexts({ classes: d.classes, n: d.test, seed: c.seed + 2 }) : await loadNewsgroups20('test', get);
  const prep = (texts: string[]): string[][] => (paper ? texts.map(pytorchOodText) : texts).map(basicEnglish);
  const trainTok = prep(train.texts);
  const vocab = Vocab.build(trainTok, { maxSize: synthetic || paper ? undefined : d.maxVocab });
  const seqLength = paper ? ('batch-longest' as const) : d.seqLength;
  const padId = paper ? vocab.unkIndex : undefined;
  log(`data: ${synthetic ? 'synthetic texts' : '20 Newsgroups'} train ${train.texts.length}, test ${test.texts.length}, vocabulary ${vocab.size}${paper ? ", the notebooks' pipeline (whole texts, padded per batch with <unk>)" : ''}`);
  return {
    modality: 'text',
    train: cap(textSource(trainTok, train.labels, vocab, { length: seqLength, padId, name: '20ng-train', classes: train.classes }), opts.limit, c.seed),
    test: cap(textSource(prep(test.texts), test.labels, vocab, { length: seqLength, padId, name: '20ng-test', classes: test.classes }), opts.limit, c.seed),
    numClasses: train.classes.length,
    vocab,
    texts: { train: train.texts, test: test.texts },
    seqLength,
    padId,
    paperText: paper,
    evalTransform: null,
    trainTransform: null,
    augmentTransform: null,
  };
}

async function loadOod(sets: readonly OodConfig[], data: Loaded, get: GetOptions, c: ExperimentConfig, opts: RunOptions, log: LogFn): Promise<EvalSet[]> {
  const out: EvalSet[] = [];
  for (const [i, s] of sets.entries()) {
    let source: Source;
    if (s.kind === 'user') {
      const [channels, height, width] = imageShape(data);
      source = await openImageSet(s.path, { channels: channels as 1 | 3, height, width });
    } else if (s.kind === 'built' || s.kind === 'dataset') {
      const set = await offlineSet(s, get, log);
      if (set === null) continue;
      const [channels, height, width] = imageShape(data);
      source = convertSource(set.source, { channels: channels as 1 | 3, height, width });
    } else if (s.kind === 'image-ood') {
      source = await loadImageOod(s.id, { ...get, geometry: opts.oeRepo ? 'oe-repo' : 'notebooks' });
    } else if (s.kind === 'image-noise') {
      // test noise uses seeds apart from the training outliers' (seed + 1000 + i)
      source = (await new ImageNoiseSampler({ kind: s.noise, shape: imageShape(data) }).sample(Math.min(s.count, opts.limit ?? Infinity), c.seed + 1000 + i)).source;
    } else if (s.kind === 'token-noise') {
      const noise = new TokenNoiseSampler({ vocabSize: data.vocab!.size, tokens: s.tokens, seqLength: data.seqLength, padIndex: data.padId ?? data.vocab!.padIndex });
      source = (await noise.sample(Math.min(s.count, opts.limit ?? Infinity), c.seed + 1000 + i)).source;
    } else {
      const lines = { keepEmpty: data.paperText === true };
      const texts = s.id === 'reuters52' ? (await loadReuters52('test', get)).texts : s.id === 'multi30k' ? await loadMulti30k('test', get, lines) : await loadWmt16(get, lines);
      const prepped = s.id === 'reuters52' && data.paperText ? texts.map(pytorchOodText) : texts;
      source = textSource(prepped.map(basicEnglish), null, data.vocab!, { length: data.seqLength, padId: data.padId, name: s.name });
    }
    const limit = Math.min(opts.limit ?? Infinity, c.oodLimit ?? Infinity);
    out.push({ name: s.name, source: cap(source, Number.isFinite(limit) ? limit : undefined, c.seed + i) });
  }
  return out;
}

/** A set built on this machine or a downloadable one; null (and a log line) when an optional one is absent. */
async function offlineSet(s: Extract<OodConfig, { kind: 'built' | 'dataset' }>, get: GetOptions, log: LogFn): Promise<OfflineSet | null> {
  const o = { dir: get.dir, download: false };
  try {
    if (s.kind === 'built') return await (s.id === 'glyphs' ? buildFontGlyphs({ dir: get.dir }) : buildIconImages({ dir: get.dir }));
    switch (s.id) {
      case 'mnist':
        return await loadMnistOod(o);
      case 'kmnist':
        return await loadKmnist('test', o);
      case 'notmnist':
        return await loadNotMnistSmall(o);
      case 'cifar10-grey':
        return await loadCifar10Grey(o);
    }
  } catch (e) {
    // a built set whose packages are missing, or a downloadable one not in the data folder
    if (!(e instanceof DataError)) throw e;
    log(`OOD set ${s.name} left out: ${e.message.split('\n')[0]}`);
    return null;
  }
}

/** What makes a variant's outliers, resolved (and checked) before any training. */
async function outlierSampler(o: OutlierConfig, data: Loaded, get: GetOptions, opts: RunOptions, log: LogFn, seed: number, progress: Progress, sampling: { phase: PhaseProgress | null }): Promise<OutlierSampler | null> {
  switch (o.kind) {
    case 'none':
      return null;
    case 'image-noise':
      return new ImageNoiseSampler({ kind: o.noise, shape: imageShape(data), values: o.values ?? 'full' });
    case 'token-noise':
      return new TokenNoiseSampler({ vocabSize: data.vocab!.size, tokens: o.tokens, seqLength: data.seqLength, padIndex: data.padId ?? data.vocab!.padIndex, ids: o.ids, fresh: o.fresh });
    case 'tiny300k': {
      const src = await loadTinyImages300k(get);
      if (src.kind === 'npy') return new FileSampler(src.path, { name: 'tiny300k', layout: 'HWC' });
      return { name: 'tiny300k', sample: async (n, seed) => ({ name: 'tiny300k', source: n > 0 && n < src.length ? cap(src, n, seed) : src, info: { sampler: 'tiny300k', n: src.length } }) };
    }
    case 'file':
      if (!existsSync(o.path)) throw new ExperimentInputError(`outlier file ${o.path} does not exist`);
      return new FileSampler(o.path);
    case 'wikitext2': {
      const lines = await loadWikiText2('train', get, { keepEmpty: data.paperText === true });
      const src = textSource(lines.map(basicEnglish), null, data.vocab!, { length: data.seqLength, padId: data.padId, name: 'wikitext-2' });
      return { name: 'wikitext-2', sample: async (n, seed) => ({ name: 'wikitext-2', source: n > 0 && n < src.length ? cap(src, n, seed) : src, info: { sampler: 'wikitext-2', lines: lines.length } }) };
    }
    case 'biggan': {
      if (opts.outliersFile !== undefined) return outliersFileSampler(opts.outliersFile, data);
      const t = o.train;
      const sampleFrom = (G: BigGANGenerator): OutlierSampler =>
        new LatentSampler({
          sigma2: o.sigma2, scale: o.latent ?? 'std', mode: o.sampleMode ?? 'train', chunk: t?.batchSize ?? CIFAR_TRAIN_CONFIG.batchSize, onProgress: (done) => sampling.phase?.update(done),
          generator: { dimZ: G.dimZ, numClasses: G.nClasses, generate: (z, y) => generateImages(G, z, y), eval: () => G.eval(), train: () => G.train() },
        });
      const [channels, height] = data.train.sampleShape as [number, number, number];
      const shape = bigGANShape(height, t);
      if (opts.generator !== undefined) {
        const G = new BigGANGenerator({ nClasses: data.numClasses, ch: t?.ch, outChannels: channels, ...shape });
        await loadUserWeights(opts.generator, G, '--generator');
        return sampleFrom(G);
      }
      if (o.file !== undefined) {
        try {
          const src = await loadGoeSamples(50, get);
          return src.kind === 'npy' ? new FileSampler(src.path, { name: 'samples-50.0.npz' }) : { name: src.name, sample: async () => ({ name: src.name, source: src, info: { sampler: 'file' } }) };
        } catch (e) {
          if (!(e instanceof DatasetUnavailableError) || t === undefined) throw e;
          log(`[${o.name}] the paper's generated samples are not available (${e.message}); training a BigGAN instead`);
        }
      }
      if (t !== undefined) {
        // train it as the paper did (BigGAN-PyTorch's CIFAR script on the training images), once per run folder
        mkdirSync(join(opts.out, 'generator'), { recursive: true });
        const iterations = opts.maxSteps !== undefined ? Math.min(t.iterations, opts.maxSteps) : t.iterations;
        // a training set smaller than one iteration's images trains on smaller batches (said in the log)
        const perIteration = (t.batchSize ?? CIFAR_TRAIN_CONFIG.batchSize) * (t.numDSteps ?? CIFAR_TRAIN_CONFIG.numDSteps);
        let batchSize = t.batchSize;
        if (data.train.length < perIteration) {
          batchSize = Math.floor(data.train.length / (t.numDSteps ?? CIFAR_TRAIN_CONFIG.numDSteps));
          if (batchSize < 1) throw new ExperimentInputError(`the BigGAN needs at least ${t.numDSteps ?? CIFAR_TRAIN_CONFIG.numDSteps} training images, there are ${data.train.length}`);
          log(`[biggan] ${data.train.length} training images, fewer than one iteration's ${perIteration}: batches of ${batchSize}`);
        }
        const bar = progress.phase(`biggan (${o.name})`, iterations, 'iterations');
        const { trainer, G } = await trainBigGANOn({
          onIteration: (itr) => bar.update(itr),
          train: data.train, numClasses: data.numClasses, iterations, generator: { ...(t.ch !== undefined ? { ch: t.ch } : {}), ...shape },
          config: {
            ...(batchSize !== undefined ? { batchSize } : {}), ...(t.numDSteps !== undefined ? { numDSteps: t.numDSteps } : {}), ...(t.ema !== undefined ? { ema: t.ema } : {}),
            ...(t.emaStart !== undefined ? { emaStart: t.emaStart } : {}), ...(t.lr !== undefined ? { gLr: t.lr, dLr: t.lr } : {}),
          },
          checkpoint: join(opts.out, 'generator', 'biggan.safetensors'), checkpointEvery: Math.min(2000, Math.max(1, Math.ceil(t.iterations / 5))), resume: opts.resume,
          logEvery: t.iterations < 20 ? 1 : 10, seed: seed + 5, workers: opts.workers, log,
        });
        bar.end();
        await saveModel(join(opts.out, 'generator', 'G.safetensors'), G);
        void trainer; // owns G (and D, the optimizers) for the rest of the run
        return iterations < t.iterations ? provisional(sampleFrom(G), `BigGAN stopped by --max-steps at iteration ${iterations} of ${t.iterations}`) : sampleFrom(G);
      }
      throw new ExperimentInputError(
        `the "${o.name}" outliers come from a BigGAN trained on the in-distribution data, sampled at sigma^2 = ${o.sigma2}: ` +
          'pass --generator FILE (BigGAN-PyTorch G weights as a safetensors state dict) or --outliers-file FILE.npz (precomputed uint8 NCHW samples, key "x"), ' +
          `or leave this variant out with --variants ${['none', 'noise'].join(',')}`,
      );
    }
    case 'lm': {
      if (opts.outliersFile !== undefined) return outliersFileSampler(opts.outliersFile, data);
      let generator = opts.generator;
      if (generator !== undefined && !existsSync(generator)) throw new ExperimentInputError(`--generator ${generator} does not exist`);
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
          writeTextAtomic(`${generator}.words.json`, JSON.stringify(lm.words));
          lm.model.dispose();
        }
      }
      const wordsFile = `${generator}.words.json`;
      if (!existsSync(wordsFile)) throw new ExperimentInputError(`the LM's vocabulary is missing: expected a JSON array of its words by id at ${wordsFile}`);
      const words = readJsonFile<string[]>(wordsFile, 'it must be the JSON array of the LM\'s words by id written beside its weights');
      const t = o.train;
      const model = new TransformerModel(words.length, { ninp: t.emsize ?? 200, nhid: t.nhid ?? 200, nlayers: t.nlayers ?? 2, nhead: t.nhead ?? 2, dropout: t.dropout ?? 0.2 });
      if (opts.generator !== undefined) await loadUserWeights(generator, model, '--generator');
      else await loadModel(generator, model);
      return new LmSampler({ model, lmWords: words, vocab: data.vocab!, seqLength: data.seqLength, padId: data.padId, temperature: o.temperature });
    }
  }
}

/**
 * A saved outlier set read lazily, read whole: the run that made it held it in memory, and the
 * variant's pictures take a subset of it (a lazily read .npy source cannot be subset).
 */
async function readWhole(src: Source, path: string): Promise<Source> {
  if (src.kind !== 'npy') return src;
  const a = await (await NpzFile.open(path)).array('x');
  const data = new Uint8Array(new SharedArrayBuffer(a.data.byteLength));
  data.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  if (src.dtype !== 'uint8') throw new DataError(`expected a uint8 outlier set, got ${src.dtype}`, path);
  return { kind: 'array', name: src.name, length: src.length, sampleShape: src.sampleShape, layout: src.layout, dtype: 'uint8', data, labels: null };
}

/**
 * --outliers-file, checked before any training: it exists, is an .npz (array "x") or .npy that
 * opens, holds outliers, and (images) they have the inliers' shape.
 */
async function outliersFileSampler(path: string, data: Loaded): Promise<FileSampler> {
  if (!existsSync(path) || !statSync(path).isFile()) throw new ExperimentInputError(`--outliers-file ${path} does not exist`);
  if (!/\.(npz|npy)$/i.test(path)) throw new ExperimentInputError(`--outliers-file ${path} is not an .npz (outliers under "x") or .npy file: save the samples with numpy.savez or numpy.save`);
  const sampler = new FileSampler(path);
  const src = await sampler.open(); // a DataError naming the file when it does not parse
  if (src.length === 0) throw new ExperimentInputError(`--outliers-file ${path} holds no outliers (0 samples)`);
  const want = data.train.sampleShape;
  if (data.modality === 'image' && src.sampleShape.join('x') !== want.join('x')) {
    throw new ExperimentInputError(`--outliers-file ${path} holds ${src.sampleShape.join('x')} samples, the inliers are ${want.join('x')} (channels x height x width): resize them to match`);
  }
  return sampler;
}

/** --train/--test, --ood and --model into the config; what does not fit the experiment is refused. */
function applyUserData(c: ExperimentConfig, opts: RunOptions): void {
  const image = c.model.kind === 'wrn';
  if (c.data.kind === 'user-images') {
    if (opts.train === undefined || opts.test === undefined) throw new ExperimentInputError(`the ${c.name} experiment needs --train PATH and --test PATH (class folders, an IDX images file with its labels beside it, or an .npz with x and y)`);
    c.data = { kind: 'user-images', train: opts.train, test: opts.test };
  } else if (opts.train !== undefined || opts.test !== undefined) {
    throw new ExperimentInputError(`--train and --test belong to the images experiment (goe experiment images --train PATH --test PATH); ${c.name} has its own data`);
  }
  if (opts.ood !== undefined && opts.ood.length > 0) {
    if (!image) throw new ExperimentInputError(`--ood takes image sets; ${c.name} is a text experiment`);
    const taken = new Set([...c.ood, ...(c.extraOod ?? [])].map((o) => o.name));
    for (const o of opts.ood) {
      if (taken.has(o.name)) throw new ExperimentInputError(`--ood ${o.name}: ${c.name} already has an OOD set of that name; pick another`);
      c.ood.push({ name: o.name, kind: 'user', path: o.path });
    }
  }
  if (opts.latent !== undefined) {
    const gan = c.outliers.filter((o) => o.kind === 'biggan');
    if (gan.length === 0) throw new ExperimentInputError(`--sigma2, --latent-scale and --sample-mode set the BigGAN outliers; ${c.name} has none`);
    for (const o of gan) {
      if (opts.latent.sigma2 !== undefined) o.sigma2 = opts.latent.sigma2;
      if (opts.latent.scale !== undefined) o.latent = opts.latent.scale;
      if (opts.latent.mode !== undefined) o.sampleMode = opts.latent.mode;
    }
  }
  applySweepParams(c, opts);
  if (opts.model !== undefined) {
    const m = /^wrn-(\d+)-(\d+)$/.exec(opts.model);
    if (!image || m === null) throw new ExperimentInputError(`--model ${opts.model}: the ${c.name} experiment's classifier ${image ? 'is a WideResNet, wrn-D-K' : 'is not a WideResNet'}`);
    const base = c.model.kind === 'wrn' ? c.model : null;
    c.model = { kind: 'wrn', depth: Number(m[1]), widenFactor: Number(m[2]), dropRate: base?.dropRate ?? 0, pooling: base?.pooling ?? 'global' };
  }
}

/** --seed, --count, --lambda, --temperature into the config (recorded in config.json, checked on --resume). */
function applySweepParams(c: ExperimentConfig, opts: RunOptions): void {
  if (opts.seed !== undefined) c.oeSeed = opts.seed;
  if (opts.lambda !== undefined) c.finetune.lambda = opts.lambda;
  if (opts.count !== undefined) for (const o of c.outliers) if ('count' in o) o.count = opts.count;
  if (opts.temperature !== undefined) {
    const lm = c.outliers.filter((o) => o.kind === 'lm');
    if (lm.length === 0) throw new ExperimentInputError(`--temperature sets the LM outliers' sampling temperature; ${c.name} has none (image experiments take --sigma2)`);
    for (const o of lm) o.temperature = opts.temperature;
  }
}

/**
 * The classifier for the user's images when --model does not say: WRN-10-1 up to 32x32 (the
 * fmnist budget's network), WRN-16-1 above (two stride-2 stages leave larger maps, which it pools
 * globally); either way global average pooling, so any size works.
 */
export function userImagesModel(height: number, width: number): { depth: number; widenFactor: number } {
  return Math.max(height, width) <= 32 ? { depth: 10, widenFactor: 1 } : { depth: 16, widenFactor: 1 };
}

/**
 * mkdir -p one level at a time: Node's recursive mkdir loops forever where the kernel answers
 * ENOENT for an existing parent (/proc). A level another process made meanwhile is fine (sweep
 * points started together share their parent folders), so EEXIST on a folder is not an error.
 */
export function makeFolder(dir: string, mkdir: (d: string) => void = mkdirSync): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      mkdir(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(d).isDirectory()) throw e;
    }
  }
}

/**
 * The run folder, checked before anything is written or trained: it must be a writable folder
 * (created when missing), and a resumed one must hold a run of this experiment with this
 * configuration (every key of `c` but `run`; the imagenet experiment passes its own); a refused
 * folder is left untouched.
 */
export function prepareRunFolder(dir: string, c: { name: string }, resume: boolean): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new ExperimentInputError(`--out ${dir} is a file, not a folder: name a folder for the run`);
  try {
    makeFolder(dir);
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (e) {
    throw new ExperimentInputError(`--out ${dir} cannot be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): name a folder you can write to`);
  }
  const file = join(dir, 'config.json');
  if (!resume || !existsSync(file)) return;
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ExperimentInputError(`--resume ${dir}: its config.json cannot be read (${(e as Error).message}); start a new run folder`);
  }
  if (saved.name !== c.name) throw new ExperimentInputError(`--resume ${dir}: that folder holds a run of "${String(saved.name)}", not "${c.name}"; resume it with its own experiment or start a new folder`);
  const now = JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
  const differ = Object.keys({ ...now, ...saved }).filter((k) => k !== 'run' && JSON.stringify(now[k]) !== JSON.stringify(saved[k]));
  if (differ.length > 0) throw new ExperimentInputError(`--resume ${dir}: the run was made with other settings (${differ.join(', ')} differ); resume with the same options or start a new folder`);
}

/** The phases a run goes through (for the progress counter; a guess where inputs decide). */
function plannedPhases(c: ExperimentConfig, opts: RunOptions): number {
  let n = opts.pretrained === undefined ? 1 : 0;
  for (const o of c.outliers) {
    n += o.kind === 'none' ? 1 : 3; // evaluation; or sampling, fine-tuning, evaluation
    if (o.kind === 'biggan' && o.train !== undefined && o.file === undefined && opts.generator === undefined && opts.outliersFile === undefined) n++;
  }
  return n;
}

/** A sampler whose sets say they come from an unfinished generator (never reused on --resume). */
function provisional(sampler: OutlierSampler, why: string): OutlierSampler {
  return { name: sampler.name, sample: async (n, seed) => {
    const set = await sampler.sample(n, seed);
    return { ...set, info: { ...set.info, provisional: why } };
  } };
}

/** G's bottom width and up-samplings for square images of this height (config values win). */
function bigGANShape(height: number, t: BigGANConfig | undefined): { bottomWidth: number; upsamples: number } {
  if (t?.bottomWidth !== undefined || t?.upsamples !== undefined) {
    const shape = { bottomWidth: t.bottomWidth ?? 4, upsamples: t.upsamples ?? 3 };
    if (shape.bottomWidth * 2 ** shape.upsamples !== height) throw new ExperimentInputError(`the BigGAN's bottom width ${shape.bottomWidth} with ${shape.upsamples} up-samplings makes ${shape.bottomWidth * 2 ** shape.upsamples}x${shape.bottomWidth * 2 ** shape.upsamples} images, the data is ${height}x${height}`);
    return shape;
  }
  for (const upsamples of [3, 2, 4, 5]) {
    const bottomWidth = height / 2 ** upsamples;
    if (Number.isInteger(bottomWidth) && bottomWidth >= 3 && bottomWidth <= 8) return { bottomWidth, upsamples };
  }
  throw new ExperimentInputError(`no BigGAN shape makes ${height}x${height} images (bottom width 3-8 times 2^2..2^5): resize the images, e.g. to 28, 32 or 64`);
}

function makeModel(c: ExperimentConfig, data: Loaded): Classifier {
  const m = c.model;
  if (m.kind === 'wrn') return new WideResNet(data.numClasses, { depth: m.depth, widenFactor: m.widenFactor, dropRate: m.dropRate, inChannels: data.train.sampleShape[0], pooling: m.pooling });
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

/** The inliers a phase trains on: all, or its seeded `subset` (the same for every run of the seed). */
function phaseSubset(src: Source, p: PhaseConfig, seed: number): Source {
  return p.subset === undefined ? src : cap(src, p.subset, seed);
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
  if (opts.full && c.full !== undefined) Object.assign(c, structuredClone(c.full));
  delete c.full;
  applyUserData(c, opts);
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
  if (c.outliers.length === 0) throw new ExperimentInputError(`no outlier variant to run for ${c.name}: name at least one with --variants (has: ${config.outliers.map((o) => o.name).join(', ')})`);
  const dir = opts.out;
  prepareRunFolder(dir, c, opts.resume === true);
  const log = fileLogger(join(dir, 'train.log'), opts.log);
  const progress = timedProgress(opts.progress ?? plainProgress(() => {}));
  progress.plan(plannedPhases(c, opts));
  const sampling: { phase: PhaseProgress | null } = { phase: null };
  const { device } = await init();
  log(device.describe());
  log(`experiment ${c.name}${opts.resume ? ' (resume)' : ''} -> ${dir}`);
  writeJsonAtomic(join(dir, 'config.json'), { ...c, run: { ...opts, log: undefined, progress: undefined } });
  const get: GetOptions = { dir: opts.dataDir, download: opts.download ?? true };

  // 1. every input, before the classifiers are trained (a word LM without --generator is trained here)
  const data = await loadData(c, get, opts, log);
  if (c.data.kind === 'user-images' && opts.model === undefined && c.model.kind === 'wrn') {
    const [, h, w] = imageShape(data);
    c.model = { ...c.model, ...userImagesModel(h, w), pooling: 'global' };
    log(`classifier: WRN-${c.model.depth}-${c.model.widenFactor} for ${h}x${w} images (--model wrn-D-K to choose)`);
  }
  manualSeed(c.seed);
  const baseline = makeModel(c, data);
  const afterInit = getRngState(); // baseline training continues this stream, whatever runs in between
  if (opts.pretrained !== undefined) await loadUserWeights(opts.pretrained, baseline, '--pretrained');
  const ood = await loadOod(c.ood, data, get, c, opts, log);
  const extra = c.extraOod ? await loadOod(c.extraOod, data, get, c, opts, log) : [];
  if (ood.length === 0) throw new ExperimentInputError(`no OOD test set is available for ${c.name}: add one with --ood NAME=PATH (an IDX file, .npy/.npz or a folder of images)`);
  const samplers = new Map<string, OutlierSampler | null>();
  for (const o of c.outliers) samplers.set(o.name, await outlierSampler(o, data, get, opts, log, c.seed, progress, sampling));
  log(`OOD test sets: ${ood.map((s) => `${s.name} (${s.source.length})`).join(', ')}${extra.length ? `; also ${extra.map((s) => s.name).join(', ')}` : ''}`);

  const phases: PhaseSummary[] = [];
  const evalBase = { detectors: c.detectors, batchSize: c.evalBatchSize, transform: data.evalTransform, workers: opts.workers };
  const metricOptions = c.metrics === undefined ? {} : { prRule: c.metrics.prRule };
  /** Evaluates (or, resuming, reuses the evaluation of a finished phase); `complete`: the model's training phase finished. */
  /**
   * Evaluates (or, resuming, reuses the evaluation of a finished phase); `complete`: the model's
   * training phase finished. The in-distribution set is scored once for the OOD sets and the extra
   * ones; image runs also write the variant's pictures and every sample's scores (scores.npz).
   */
  const evaluate = async (model: Classifier, sub: string, complete: boolean, outliers: OutlierSet | null): Promise<{ evaluation: EvaluationResult; extra?: EvaluationResult; figures?: string }> => {
    const file = join(dir, sub, 'evaluation.json');
    if (opts.resume && existsSync(file)) {
      let saved: { complete?: boolean; evaluation: EvaluationResult; extra?: EvaluationResult; figures?: string } = {} as never;
      try {
        saved = JSON.parse(readFileSync(file, 'utf8')) as typeof saved;
      } catch (e) {
        log(`[${sub}] ${file} is not whole JSON (${(e as Error).message}): evaluating again`);
      }
      if (saved.complete === true && complete) {
        log(`[${sub}] evaluation reused from ${file}`);
        const { complete: _, ...res } = saved;
        return res;
      }
    }
    const te = performance.now();
    const images = data.test.length + [...ood, ...extra].reduce((a, e) => a + e.source.length, 0);
    const bar = progress.phase(`evaluate ${sub}`, images, 'images');
    let scored = 0;
    const scores = await scoreRun(model, { name: 'in-distribution test', source: data.test }, [...ood, ...extra], { ...evalBase, onBatch: (k: number) => bar.update((scored += k)) });
    bar.end();
    const part = (sets: readonly EvalSet[]): RunScores => ({ ...scores, ood: scores.ood.filter((s) => sets.some((e) => e.name === s.name)) });
    const evaluation = evaluateScores(part(ood), metricOptions);
    const res: { evaluation: EvaluationResult; extra?: EvaluationResult; figures?: string } = extra.length > 0 ? { evaluation, extra: evaluateScores(part(extra), metricOptions) } : { evaluation };
    if (data.modality === 'image') {
      const figures = await writeRunFigures({
        dir: join(dir, sub), relativeTo: dir, title: sub, scores,
        ...(outliers !== null ? { outliers: { ...(await sampleImages(outliers.source, 64, { seed: c.seed })), label: `Outliers: ${outliers.name}` } } : {}),
        ...(outliers !== null && sub !== 'noise' ? { training: await sampleImages(data.train, 64, { seed: c.seed }) } : {}),
      });
      res.figures = figures.markdown;
    }
    writeJsonAtomic(file, { complete, ...res });
    const acc = evaluation.accuracy === null ? '' : `accuracy ${(evaluation.accuracy * 100).toFixed(2)}%, `;
    const means = c.detectors.map((d) => `${d} AUROC ${(evaluation.reports[d]!.mean.auroc * 100).toFixed(2)} FPR95 ${(evaluation.reports[d]!.mean.fpr95tpr * 100).toFixed(2)}`).join('; ');
    log(`[${sub}] ${acc}${means} (mean over ${ood.length} OOD sets, ${formatDuration((performance.now() - te) / 1000)})`);
    return res;
  };

  // 2. the baseline
  mkdirSync(join(dir, 'baseline'), { recursive: true });
  setRngState(afterInit);
  const baselineWeights = join(dir, 'baseline', 'model.safetensors');
  let baselineDone = true;
  if (opts.pretrained !== undefined) {
    await saveModel(baselineWeights, baseline); // the fine-tuning phases start from baselineWeights
    log(`baseline weights from ${opts.pretrained}`);
  } else {
    const loader = new DataLoader({ source: phaseSubset(data.train, c.pretrain, c.seed + 0x5b), batchSize: c.pretrain.batchSize, seed: c.seed, transform: data.trainTransform, workers: opts.workers });
    const opt = makeOptimizer(baseline, c.pretrain.optimizer);
    const baseSteps = Math.round(c.pretrain.epochs * loader.numBatches);
    const bar = progress.phase('baseline', baseSteps, 'steps');
    try {
      const r = await trainLoop({
        onStep: (step) => bar.update(step),
        name: 'baseline', model: baseline, loader, epochs: c.pretrain.epochs, optimizer: opt, scheduler: makeScheduler(opt, c.pretrain, baseSteps),
        schedulerUnit: 'step', schedulerBeforeUpdate: c.pretrain.schedulerStep === 'before-update', loss: 'ce', logEvery: c.logEvery, checkpoint: join(dir, 'baseline', 'checkpoint.safetensors'),
        checkpointEvery: c.checkpointEvery, resume: opts.resume, log, stopAfter: opts.maxSteps, meta: { experiment: c.name },
      });
      phases.push(summary('baseline', r));
      log(`[baseline] ${r.steps} steps in ${formatDuration(r.seconds)} (${r.stepsPerSecond.toFixed(2)} steps/s this run)${r.interrupted ? '; stopped by --max-steps, --resume continues it' : ''}`);
      baselineDone = !r.interrupted;
    } finally {
      bar.end();
      await loader.close();
      opt.dispose();
    }
    await saveModel(baselineWeights, baseline);
  }

  // 3. one OE run per outlier variant
  const variants: VariantReport[] = [];
  const idle: string[] = []; // requested variants that did nothing: the run ends with an input error (exit 2)
  for (const o of c.outliers) {
    const vi = seedIndex.get(o.name)!;
    const oeSeed = c.oeSeed ?? c.seed;
    const sub = o.name;
    mkdirSync(join(dir, sub), { recursive: true });
    const sampler = samplers.get(o.name)!;
    if (sampler !== null && opts.baseOnly) continue; // the sweep's base: its points fine-tune
    if (sampler === null) {
      const ev = await evaluate(baseline, sub, baselineDone, null);
      variants.push({ outliers: o.name, description: `${baselineDone ? '' : 'PROVISIONAL (training stopped by --max-steps). '}No outliers: the baseline classifier.`, evaluation: ev.evaluation, extra: ev.extra, figures: ev.figures, training: phases.find((p) => p.name === 'baseline') as unknown as Record<string, unknown> });
      continue;
    }
    if (!baselineDone) log(`[${sub}] fine-tunes the partial baseline (stopped by --max-steps): its numbers are provisional`);
    // the outliers: reuse a saved set, else sample (seeded) and save it
    mkdirSync(join(dir, 'outliers'), { recursive: true });
    const saved = join(dir, 'outliers', `${sub}.npz`);
    const count = 'count' in o ? (opts.limit !== undefined && (o.count === 0 || o.count > opts.limit) ? opts.limit : o.count) : (opts.limit ?? 0);
    let set: OutlierSet;
    if (opts.resume && existsSync(saved) && !madeProvisionally(saved)) {
      set = await new FileSampler(saved).sample(0, 0);
      set = { ...set, source: await readWhole(set.source, saved) };
      if (existsSync(`${saved}.json`)) {
        // describe the set as it was made, not as the file it was reloaded from
        const { name, ...info } = readJsonFile<{ name: string } & Record<string, unknown>>(`${saved}.json`, 'delete it and its .npz to sample the set again');
        set = { ...set, name, info };
      }
      log(`[${sub}] outliers reused from ${saved} (${set.source.length})`);
    } else {
      const ts = performance.now();
      sampling.phase = progress.phase(`outliers ${sub}`, count, 'samples');
      set = await sampler.sample(count, oeSeed + 100 + vi);
      sampling.phase.end();
      sampling.phase = null;
      if (set.source.length === 0) throw new ExperimentInputError(`[${sub}] ${set.name} gave no outliers (asked for ${count || 'all'}): the variant would fine-tune on nothing; check its source or leave it out with --variants`);
      if (set.source.kind === 'array') await saveOutlierSet(saved, set);
      log(`[${sub}] ${set.source.length} outliers from ${set.name} in ${formatDuration((performance.now() - ts) / 1000)}${set.source.kind === 'array' ? ` -> ${saved}` : ''}`);
    }
    // a variant fine-tuned from an unfinished baseline (--max-steps) starts over once the baseline is done
    const fromPartial = join(dir, sub, 'from-partial-baseline');
    let resumeVariant = opts.resume;
    if (opts.resume && baselineDone && existsSync(fromPartial)) {
      rmSync(join(dir, sub, 'checkpoint.safetensors'), { force: true });
      rmSync(previousCheckpoint(join(dir, sub, 'checkpoint.safetensors')), { force: true });
      rmSync(fromPartial);
      resumeVariant = false;
      log(`[${sub}] restarts: it was fine-tuned from the unfinished baseline`);
    }
    if (!baselineDone) writeFileSync(fromPartial, 'fine-tuned from the baseline stopped by --max-steps; --resume restarts this phase once the baseline is done\n');
    manualSeed(oeSeed + 1 + vi);
    const model = makeModel(c, data);
    if (c.finetune.fromBaseline) await loadModel(baselineWeights, model);
    const ft = c.finetune;
    // `augment` (--oe-repo): oe_tune.py crops and flips the inliers and the outliers alike
    const ftTransform = ft.augment ? data.augmentTransform : data.evalTransform;
    const loader = new DataLoader({
      source: phaseSubset(data.train, ft, oeSeed + 0x5c + vi), batchSize: ft.batchSize, seed: oeSeed + 1 + vi, transform: ftTransform, workers: opts.workers,
      outliers: { source: set.source, mode: ft.mode, batchSize: ft.outlierBatchSize, transform: ftTransform },
    });
    const opt = makeOptimizer(model, ft.optimizer);
    let done = true;
    const ftSteps = Math.round(ft.epochs * loader.numBatches);
    const bar = progress.phase(`oe-${sub}`, ftSteps, 'steps');
    // --eval-every-epoch: the OOD metrics of the starting model (step 0) and after every epoch
    const curve = opts.evalEveryEpoch || (opts.evalEvery ?? 0) > 0 ? new ConvergenceCurve(join(dir, sub, 'curve.json'), resumeVariant === true) : null;
    const evalPoint = async (step: number, epoch: number): Promise<void> => {
      if (curve === null || curve.has(step)) return;
      const ev = evaluateScores(await scoreRun(model, { name: 'in-distribution test', source: data.test }, ood, evalBase), metricOptions);
      curve.add(curvePoint(step, epoch, ev));
      log(`[oe-${sub}] step ${step}: ${c.detectors.map((d) => `${d} AUROC ${(ev.reports[d]!.mean.auroc * 100).toFixed(2)}`).join(', ')} (curve)`);
    };
    await evalPoint(0, 0);
    try {
      const r = await trainLoop({
        onStep: (step) => bar.update(step),
        name: `oe-${sub}`, model, loader, epochs: ft.epochs, optimizer: opt, scheduler: makeScheduler(opt, ft, ftSteps), schedulerUnit: 'step',
        schedulerBeforeUpdate: ft.schedulerStep === 'before-update',
        loss: 'oe', lambda: ft.lambda, averaging: ft.averaging, logEvery: c.logEvery, checkpoint: join(dir, sub, 'checkpoint.safetensors'),
        checkpointEvery: c.checkpointEvery, resume: resumeVariant, log, stopAfter: opts.maxSteps, meta: { experiment: c.name, outliers: sub },
        ...(curve !== null ? { onEval: evalPoint, evalEvery: opts.evalEvery } : {}),
      });
      phases.push(summary(`oe-${sub}`, r));
      if (r.steps === 0) idle.push(`${sub} ran 0 fine-tuning steps (${ft.epochs} epochs of ${loader.numBatches} batches)`);
      log(`[oe-${sub}] ${r.steps} steps in ${formatDuration(r.seconds)} (${r.stepsPerSecond.toFixed(2)} steps/s this run)${r.interrupted ? '; stopped by --max-steps, --resume continues it' : ''}`);
      done = !r.interrupted && baselineDone;
    } finally {
      bar.end();
      await loader.close();
      opt.dispose();
    }
    await saveModel(join(dir, sub, 'model.safetensors'), model);
    const ev = await evaluate(model, sub, done, set);
    variants.push({
      outliers: o.name,
      description: `${done ? '' : 'PROVISIONAL (training stopped by --max-steps). '}Outlier Exposure fine-tuning (${ft.epochs} epoch${ft.epochs === 1 ? "" : "s"}, lambda ${ft.lambda}, ${ft.mode} batches of ${ft.batchSize}) on ${set.source.length} outliers from ${set.name} (${JSON.stringify(set.info)}).`,
      evaluation: ev.evaluation,
      extra: ev.extra,
      figures: ev.figures,
      training: phases.find((p) => p.name === `oe-${sub}`) as unknown as Record<string, unknown>,
      ...(curve !== null ? { curve: curve.points } : {}),
    });
    model.dispose();
  }
  baseline.dispose();

  const report: ExperimentReport = { experiment: c.name, description: c.description, adapter: runtime().device.describe(), variants, options: metricOptions, paperNames: c.metrics?.paperNames };
  const files = writeReports(dir, report);
  if (variants.some((v) => v.curve !== undefined)) log(`convergence curves: ${(await writeConvergenceFigures(dir, variants, c.detectors)).join(', ')}`);
  const seconds = (performance.now() - t0) / 1000;
  writeJsonAtomic(join(dir, 'summary.json'), { experiment: c.name, seconds, timings: progress.timings, phases });
  log(`time per phase: ${progress.timings.map((t) => `${t.phase} ${formatDuration(t.seconds)}`).join(', ')}`);
  log(`results: ${files.markdown} (${formatDuration(seconds)} in all)`);
  for (const v of variants) if (c.detectors.every((d) => (v.evaluation.reports[d]?.rows.length ?? 0) === 0)) idle.push(`${v.outliers} scored no OOD set`);
  if (idle.length > 0) throw new ExperimentInputError(`requested variant(s) did nothing: ${idle.join('; ')}; the others' results are in ${files.markdown}`);
  return { dir, report, files, phases, seconds };
}

/** True when the error is a missing input the user can fix (exit 2 in the CLI). */
export function isInputError(e: unknown): boolean {
  // a safetensors file that does not read back whole (structure or checksums) is a corrupt input too;
  // a SafetensorsError without a file (writing) is a bug
  return e instanceof DataError || e instanceof ExperimentInputError || (e instanceof SafetensorsError && e.file !== undefined);
}

/** An experiment's inputs without a run (src/goe/select): its data, classifiers of its shape, a sampler per outlier variant. */
export interface ExperimentInputs {
  config: ExperimentConfig;
  modality: 'image' | 'text';
  train: Source;
  test: Source;
  evalTransform: ImageTransform | null;
  /** A fresh classifier of the experiment's architecture (load the baseline into it). */
  classifier(): Classifier;
  /** The sampler of one outlier variant (a BigGAN / LM from opts.generator; never trained here). */
  sampler(o: OutlierConfig): Promise<OutlierSampler | null>;
}

export async function openExperimentInputs(config: ExperimentConfig, opts: RunOptions): Promise<ExperimentInputs> {
  const c: ExperimentConfig = structuredClone(config);
  if (opts.full && c.full !== undefined) Object.assign(c, structuredClone(c.full));
  delete c.full;
  applyUserData(c, opts);
  const log = opts.log ?? ((): void => {});
  const get: GetOptions = { dir: opts.dataDir, download: opts.download ?? true };
  await init();
  const data = await loadData(c, get, opts, log);
  if (c.data.kind === 'user-images' && opts.model === undefined && c.model.kind === 'wrn') {
    const [, h, w] = imageShape(data);
    c.model = { ...c.model, ...userImagesModel(h, w), pooling: 'global' };
  }
  const progress = timedProgress(plainProgress(() => {}));
  return {
    config: c, modality: data.modality, train: data.train, test: data.test, evalTransform: data.evalTransform,
    classifier: () => makeModel(c, data),
    sampler: (o) => {
      if ((o.kind === 'biggan' || o.kind === 'lm') && opts.generator === undefined) throw new ExperimentInputError(`the ${o.name} outliers need the generator's weights (--generator)`);
      return outlierSampler(o, data, get, opts, log, c.seed, progress, { phase: null });
    },
  };
}
