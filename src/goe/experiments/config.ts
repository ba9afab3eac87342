/**
 * Experiment configurations: plain data (JSON-serialisable, written into every run folder) that
 * say what to train, on what, with which outliers, and what to test against. `EXPERIMENTS` holds
 * the paper's runs (cifar10, cifar100, newsgroups) and a tiny `smoke` run on synthetic data made
 * in memory that goes through the same code end to end in about a minute on a software GPU
 * (and `smoke-text`, the same for the text path).
 */

import type { WordLmConfig } from '../train/word-lm.ts';

export type { WordLmConfig };

export type OptimizerConfig =
  | { kind: 'sgd'; lr: number; momentum?: number; nesterov?: boolean; weightDecay?: number }
  | { kind: 'adam'; lr: number; weightDecay?: number };

/** 'constant', or 'cosine': the OE repo's per-step cosine annealing from lr to ~0 (LambdaLR). */
export type ScheduleConfig = 'constant' | 'cosine';

export interface PhaseConfig {
  /** Passes over the data; a fraction (2.5) ends the phase inside its last pass. */
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  /** Random crop (padding 4) + horizontal flip on the inliers, and in fine-tuning on the outliers too (images only). */
  augment?: boolean;
  /**
   * Where a 'cosine' schedule steps in each batch: 'before-update' (the OE repository's baseline.py
   * and oe_tune.py call scheduler.step() before optimizer.step(), so batch k, 1-based, trains at
   * lambda(k)) or 'after-update' (PyTorch >= 1.1's order, lambda(k - 1); the default).
   */
  schedulerStep?: 'before-update' | 'after-update';
  /** Train on a seeded subset of this many inliers (a time budget; absent: all of them). */
  subset?: number;
}

export interface FinetuneConfig extends PhaseConfig {
  /** Weight of the OE term (paper: 0.5). */
  lambda: number;
  /** 'mixed': inliers and outliers shuffled together, batchSize in all (the GOE notebooks); 'paired': batchSize inliers + outlierBatchSize outliers (the OE repo). */
  mode: 'mixed' | 'paired';
  outlierBatchSize?: number;
  /** OE loss averaging: 'mixed' (pytorch-ood, one mean over the batch) or 'separate' (OE repo). */
  averaging: 'mixed' | 'separate';
  /** Start from the pre-trained baseline (images, as the paper) or from a fresh model (text). */
  fromBaseline: boolean;
}

export type DataConfig =
  | { kind: 'cifar'; variant: 'cifar10' | 'cifar100' }
  /** MNIST-format data: the data folder, else Debian's package (Fashion-MNIST), else the download. */
  | { kind: 'mnist'; variant: 'fashion-mnist' | 'mnist' }
  /** The user's images (`goe experiment images --train PATH --test PATH`): class folders, IDX pairs or .npz x/y. */
  | { kind: 'user-images'; train: string; test: string }
  /**
   * 20 Newsgroups. `pipeline: 'paper'` (default): the GOE notebooks over pytorch-ood@415df13 (its
   * texts lose their first word and NLTK stop words; the whole training vocabulary; no truncation;
   * left padding with id 0 (<unk>) to each batch's longest text; Multi30k, WMT16 and WikiText-2 keep
   * empty lines). 'oe-repo': the OE repository's (vocabulary of maxVocab, sequences of seqLength).
   */
  | { kind: 'newsgroups'; pipeline?: 'paper' | 'oe-repo'; seqLength: number; maxVocab: number }
  | { kind: 'synthetic-images'; classes: number; train: number; test: number }
  /** Texts of class-specific words made in memory (the text smoke run). */
  | { kind: 'synthetic-text'; classes: number; train: number; test: number; seqLength: number };

export type ModelConfig =
  /** WideResNet; `pooling: 'global'` for inputs whose final maps are not 8x8 (28x28 images). */
  | { kind: 'wrn'; depth: number; widenFactor: number; dropRate: number; pooling?: 'avg8' | 'global' }
  | { kind: 'gru'; embeddingDim: number; hiddenSize: number; numLayers: number };

export type OutlierConfig =
  | { name: string; kind: 'none' }
  /** `values: 'randint255'`: pixels 0..254 (the notebooks' torch.randint(0, 255)); default 0..255. */
  | { name: string; kind: 'image-noise'; noise: 'uniform' | 'gaussian'; count: number; values?: 'randint255' }
  /**
   * Random token sequences: ids from [ids[0], ids[1]) (default: the vocabulary without its specials);
   * `fresh`: drawn anew on every access, so each epoch sees new ones (the notebook's noise Dataset).
   */
  | { name: string; kind: 'token-noise'; tokens: number; count: number; ids?: [number, number]; fresh?: boolean }
  /**
   * A class-conditional BigGAN sampled at the latent scale sigma2, classes uniform. Its weights:
   * --generator FILE; else `file` (the paper's released samples) when present; else trained here
   * with `train`. `latent` says how sigma2 is read ('std': z ~ N(0, sigma2^2 I), BigGAN-PyTorch's
   * z_var, the default; 'variance': z ~ N(0, sigma2 I)); `sampleMode` is G's mode while sampling
   * ('train': batch statistics over chunks of the G batch size, sample.py's default; 'eval').
   */
  | { name: string; kind: 'biggan'; sigma2: number; count: number; file?: 'goe-cifar100-samples'; train?: BigGANConfig; latent?: 'std' | 'variance'; sampleMode?: 'train' | 'eval' }
  /**
   * The word-level Transformer LM sampled at temperature T; count = outlier texts of 20 words (paper:
   * 100,000 words = 5,000). Trained on the training texts with `train` (word_language_model's
   * defaults) unless --generator gives its weights.
   */
  | { name: string; kind: 'lm'; temperature: number; count: number; train: WordLmConfig }
  | { name: string; kind: 'wikitext2'; count: number }
  /** TinyImages 300K (the OE repository's natural outliers, Table 1's "Tiny300k" row); count 0: all 300,000, read lazily. */
  | { name: string; kind: 'tiny300k'; count: number }
  | { name: string; kind: 'file'; path: string };

/** BigGAN training (launch_cifar_ema.sh: ch 64, batch 50, 4 D steps, EMA from 1000; 500 epochs = 125,000 iterations on 50,000 images). */
export interface BigGANConfig {
  iterations: number;
  ch?: number;
  /** G's first feature map (4 for 32x32; 7 with 2 up-samplings for 28x28). */
  bottomWidth?: number;
  upsamples?: number;
  /** Adam learning rate of both G and D (2e-4). */
  lr?: number;
  batchSize?: number;
  numDSteps?: number;
  ema?: boolean;
  emaStart?: number;
}

export type OodConfig =
  | { name: string; kind: 'image-ood'; id: 'textures' | 'lsun-crop' | 'lsun-resize' | 'tinyimagenet-crop' | 'tinyimagenet-resize' }
  /** A set built on this machine (font glyphs, icons from Debian packages), converted to the inliers' channels and size. */
  | { name: string; kind: 'built'; id: 'glyphs' | 'icons' }
  /** A downloadable set in the data folder, converted to the inliers' channels and size; left out (and said so) when absent. */
  | { name: string; kind: 'dataset'; id: 'mnist' | 'kmnist' | 'notmnist' | 'cifar10-grey'; optional: true }
  /** The user's file or folder (--ood NAME=PATH): IDX, .npy/.npz or PNG/JPEG images. */
  | { name: string; kind: 'user'; path: string }
  | { name: string; kind: 'image-noise'; noise: 'uniform' | 'gaussian'; count: number }
  | { name: string; kind: 'text'; id: 'reuters52' | 'multi30k' | 'wmt16' }
  | { name: string; kind: 'token-noise'; tokens: number; count: number };

export interface ExperimentConfig {
  name: string;
  /** One line for listings. */
  title: string;
  description: string;
  data: DataConfig;
  model: ModelConfig;
  /** Supervised training of the baseline (skipped with --pretrained FILE). */
  pretrain: PhaseConfig;
  finetune: FinetuneConfig;
  /** One OE run per entry ('none' = the baseline itself). */
  outliers: OutlierConfig[];
  /** OOD test sets whose mean is the paper's number. */
  ood: OodConfig[];
  /** Further OOD sets reported separately (not in the mean). */
  extraOod?: OodConfig[];
  detectors: ('MSP' | 'Energy' | 'MaxLogit' | 'Entropy')[];
  /**
   * How the report computes and names the PR areas (default: the step rule, columns named by the
   * positive class). The paper experiments use pytorch-ood@415df13's trapezoid rule and name the PR
   * columns both ways (the paper's "AUPR-IN" is the OOD-positive area).
   */
  metrics?: { prRule: 'step' | 'trapezoid'; paperNames: boolean };
  /** Normalise images: true = the CIFAR mean/std, or per-channel values in [0, 1] units. */
  normalize: boolean | { mean: number[]; std: number[] };
  /** Cap every OOD test set at this many images (a seeded subset; a time budget). */
  oodLimit?: number;
  /** What `--full` changes: the usual recipe where the default is cut to a time budget. */
  full?: Partial<Pick<ExperimentConfig, 'pretrain' | 'finetune' | 'outliers' | 'oodLimit' | 'model'>>;
  seed: number;
  /** Seed of the outlier sampling and OE fine-tuning when it differs from `seed` (--seed: a sweep's seeds share the baseline). */
  oeSeed?: number;
  logEvery: number;
  /** Mid-epoch checkpoints every this many steps (epoch ends always checkpoint). */
  checkpointEvery: number;
  evalBatchSize: number;
}

/** The paper's numbers: pytorch-ood@415df13's PR areas (trapezoid from (recall 0, precision 1)), columns named both ways. */
const PAPER_METRICS = { prRule: 'trapezoid', paperNames: true } as const;

const CIFAR_OOD: OodConfig[] = [
  { name: 'Textures', kind: 'image-ood', id: 'textures' },
  { name: 'LSUN Crop', kind: 'image-ood', id: 'lsun-crop' },
  { name: 'LSUN Resize', kind: 'image-ood', id: 'lsun-resize' },
  { name: 'TinyImageNet Crop', kind: 'image-ood', id: 'tinyimagenet-crop' },
  { name: 'TinyImageNet Resize', kind: 'image-ood', id: 'tinyimagenet-resize' },
];
const NOISE_OOD: OodConfig[] = [
  { name: 'Gaussian noise', kind: 'image-noise', noise: 'gaussian', count: 10000 },
  { name: 'Uniform noise', kind: 'image-noise', noise: 'uniform', count: 10000 },
];

function cifar(variant: 'cifar10' | 'cifar100'): ExperimentConfig {
  const classes = variant === 'cifar10' ? 10 : 100;
  return {
    name: variant,
    title: `paper Table 1, ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'}: WRN-40-2, OE with none / noise / BigGAN (sigma^2 = 50) outliers, 5 OOD sets`,
    description:
      `GOE on ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} (paper Table 1): WRN-40-2 baseline, then Outlier Exposure fine-tuning for 25 epochs ` +
      '(SGD lr 0.001, batch 256 of inliers and outliers mixed, lambda 0.5, no augmentation, CIFAR normalisation) with no outliers, ' +
      'uniform noise (80,000 images of torch.randint(0, 255), as the notebooks), or BigGAN samples at sigma^2 = 50; MSP and Energy against Textures, LSUN crop/resize, TinyImageNet crop/resize (mean over these five). ' +
      `The baseline is trained as the OE repo's (100 epochs, SGD lr 0.1 Nesterov momentum 0.9, wd 5e-4, cosine, batch 128, crop+flip) unless --pretrained gives its weights.`,
    data: { kind: 'cifar', variant },
    model: { kind: 'wrn', depth: 40, widenFactor: 2, dropRate: 0.3 },
    // the OE repository's baseline.py: its LambdaLR cosine is stepped before each update
    pretrain: { epochs: 100, batchSize: 128, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, schedule: 'cosine', augment: true, schedulerStep: 'before-update' },
    finetune: { epochs: 25, batchSize: 256, optimizer: { kind: 'sgd', lr: 0.001 }, schedule: 'constant', lambda: 0.5, mode: 'mixed', averaging: 'mixed', fromBaseline: true },
    outliers: [
      { name: 'none', kind: 'none' },
      // the notebooks: 80,000 images of torch.randint(0, 255)
      { name: 'noise', kind: 'image-noise', noise: 'uniform', count: 80000, values: 'randint255' },
      { name: 'generated', kind: 'biggan', sigma2: 50, count: 50000, train: { iterations: 125000 }, ...(classes === 100 ? { file: 'goe-cifar100-samples' as const } : {}) },
      // natural outliers (Table 1's OE row): the whole 300K set, mixed into the batches like the others
      { name: 'tiny300k', kind: 'tiny300k', count: 0 },
    ],
    ood: CIFAR_OOD,
    extraOod: NOISE_OOD,
    detectors: ['MSP', 'Energy'],
    metrics: PAPER_METRICS,
    normalize: true,
    seed: 0,
    logEvery: 20,
    checkpointEvery: 200,
    evalBatchSize: 256,
  };
}

export const NEWSGROUPS: ExperimentConfig = {
  name: 'newsgroups',
  title: 'paper Table 2, 20 Newsgroups: GRU, OE with none / random tokens / LM (T = 2) / WikiText-2, 3 OOD sets',
  description:
    'GOE on 20 Newsgroups (paper Table 2): GRU classifier (embedding 50, GRU 128 x 2) trained 10 epochs with Adam lr 1e-3, batch 32, ' +
    'with Outlier Exposure (lambda 0.5) on no outliers, random 20-token sequences (80,000 per epoch, ids in [0, 10000), drawn afresh), Transformer-LM samples at T = 2 (100,000 words), or WikiText-2; ' +
    'MSP and Energy against Reuters52, Multi30k and WMT16 (mean over these three). The notebooks\' text pipeline: pytorch-ood@415df13\'s texts (first word and NLTK stop words dropped for 20NG and Reuters52), ' +
    'basic_english tokens, the whole training vocabulary, no truncation, left padding with id 0 to each batch\'s longest text.',
  data: { kind: 'newsgroups', pipeline: 'paper', seqLength: 100, maxVocab: 10000 },
  model: { kind: 'gru', embeddingDim: 50, hiddenSize: 128, numLayers: 2 },
  pretrain: { epochs: 10, batchSize: 32, optimizer: { kind: 'adam', lr: 1e-3 }, schedule: 'constant' },
  finetune: { epochs: 10, batchSize: 32, optimizer: { kind: 'adam', lr: 1e-3 }, schedule: 'constant', lambda: 0.5, mode: 'mixed', averaging: 'mixed', fromBaseline: false },
  outliers: [
    { name: 'none', kind: 'none' },
    // the notebook: 80,000 sequences of 20 ids from torch.randint(0, 10000), drawn on every access
    { name: 'noise', kind: 'token-noise', tokens: 20, count: 80000, ids: [0, 10000], fresh: true },
    { name: 'generated', kind: 'lm', temperature: 2, count: 5000, train: { epochs: 40 } },
    { name: 'wiki2', kind: 'wikitext2', count: 0 },
  ],
  ood: [
    { name: 'Reuters52', kind: 'text', id: 'reuters52' },
    { name: 'Multi30k', kind: 'text', id: 'multi30k' },
    { name: 'WMT16', kind: 'text', id: 'wmt16' },
  ],
  detectors: ['MSP', 'Energy'],
  metrics: PAPER_METRICS,
  normalize: false,
  seed: 0,
  logEvery: 50,
  checkpointEvery: 500,
  evalBatchSize: 256,
};

/** Fashion-MNIST's per-channel mean and std of the training images in [0, 1] units. */
export const FASHION_MNIST_MEAN = [0.286] as const;
export const FASHION_MNIST_STD = [0.353] as const;

/**
 * The main job (`goe run`): GOE on Fashion-MNIST, sized for about 20 minutes (22 measured) on a 2-core
 * software adapter (bench/NOTES.md, "fmnist default run", has the time per phase); `--full`
 * restores the usual recipes. What the budget cuts, each chosen by a measurement there:
 *   - classifier WRN-10-1 without dropout on 1x28x28 (global average pooling over the 7x7 maps),
 *     2 epochs (938 steps of 128; SGD lr 0.2 Nesterov, wd 5e-4, cosine), no augmentation: a step
 *     costs ~0.7 s on lavapipe, and in PyTorch this recipe reaches 90.4-90.7% over three seeds,
 *     where lr 0.1 needs 2.5 epochs for 90.7% (2 epochs: 89.7-90.0%) and 1 epoch gives 87.2%
 *     (bench/fmnist_recipe_torch.py);
 *   - BigGAN with G_ch = D_ch = 8 (G 244k / D 67k parameters) at 28x28 grey (bottom width 7, two
 *     up-samplings), batch 32, 2 D steps, Adam 5e-4, no EMA, 80 iterations (~1.7 s each: every
 *     iteration is ~2,600 small dispatches), where the CIFAR script trains 125,000;
 *   - OE fine-tuning for 64 steps of 128 mixed inliers (a seeded 4,096 subset) and 4,096
 *     outliers at SGD lr 0.003 with momentum 0.9, where the paper fine-tunes 25 epochs at lr 0.001
 *     without momentum (about 10,000 steps of 256); lr 0.01 cost 1.4-3.3 points of accuracy in
 *     PyTorch (bench/fmnist_oe_torch.py);
 *   - OOD test sets capped at 2,000 images (seeded subsets), noise sets 1,000; the
 *     in-distribution test set is whole.
 * Outliers: none, uniform noise, BigGAN samples at the reference's latent scale (z std 50, G in
 * training mode, sample.py's defaults). OOD sets, all real images converted to 1x28x28 grey:
 * letters and digits rendered from the machine's fonts, icons from Debian packages, and MNIST,
 * KMNIST, notMNIST and CIFAR-10 (grey) when they are in the data folder; the mean over these is the
 * headline; Gaussian and uniform noise are reported apart.
 */
export const FMNIST: ExperimentConfig = {
  name: 'fmnist',
  title: 'the main job, ~20 min on a 2-core CPU: Fashion-MNIST, WRN-10-1, OE with none / noise / BigGAN outliers, real OOD sets',
  description:
    'GOE on Fashion-MNIST (1x28x28 grey), cut to a 20-minute budget on a 2-core software adapter: WRN-10-1 trained 2 epochs at lr 0.2, ' +
    'a BigGAN (ch 8, 80 iterations) trained on the training images, OE fine-tuning (64 steps of 128 mixed inliers and outliers, SGD lr 0.003, lambda 0.5) ' +
    'with no outliers, uniform noise, or BigGAN samples at z std 50 (BigGAN-PyTorch z_var, G in training mode); MSP and Energy against ' +
    'real OOD sets converted to 1x28x28 (font glyphs, icons, and MNIST / KMNIST / notMNIST / CIFAR-10 grey when present; mean over these), ' +
    'Gaussian/uniform noise apart. `--full` runs the usual recipes (WRN-40-2, 100 epochs, the CIFAR BigGAN script, the paper\'s 25-epoch fine-tuning).',
  data: { kind: 'mnist', variant: 'fashion-mnist' },
  model: { kind: 'wrn', depth: 10, widenFactor: 1, dropRate: 0, pooling: 'global' },
  pretrain: { epochs: 2, batchSize: 128, optimizer: { kind: 'sgd', lr: 0.2, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, schedule: 'cosine' },
  finetune: {
    epochs: 1, batchSize: 128, subset: 4096, optimizer: { kind: 'sgd', lr: 0.003, momentum: 0.9 }, schedule: 'constant',
    lambda: 0.5, mode: 'mixed', averaging: 'mixed', fromBaseline: true,
  },
  outliers: [
    { name: 'none', kind: 'none' },
    { name: 'noise', kind: 'image-noise', noise: 'uniform', count: 4096 },
    {
      name: 'generated', kind: 'biggan', sigma2: 50, latent: 'std', sampleMode: 'train', count: 4096,
      train: { iterations: 80, ch: 8, bottomWidth: 7, upsamples: 2, batchSize: 32, numDSteps: 2, lr: 5e-4, ema: false },
    },
  ],
  ood: [
    { name: 'Font glyphs', kind: 'built', id: 'glyphs' },
    { name: 'Icons', kind: 'built', id: 'icons' },
    { name: 'MNIST', kind: 'dataset', id: 'mnist', optional: true },
    { name: 'KMNIST', kind: 'dataset', id: 'kmnist', optional: true },
    { name: 'notMNIST', kind: 'dataset', id: 'notmnist', optional: true },
    { name: 'CIFAR-10 (grey)', kind: 'dataset', id: 'cifar10-grey', optional: true },
  ],
  extraOod: [
    { name: 'Gaussian noise', kind: 'image-noise', noise: 'gaussian', count: 1000 },
    { name: 'Uniform noise', kind: 'image-noise', noise: 'uniform', count: 1000 },
  ],
  detectors: ['MSP', 'Energy'],
  normalize: { mean: [...FASHION_MNIST_MEAN], std: [...FASHION_MNIST_STD] },
  oodLimit: 2000,
  seed: 0,
  logEvery: 20,
  checkpointEvery: 100,
  evalBatchSize: 256,
  full: {
    oodLimit: undefined,
    model: { kind: 'wrn', depth: 40, widenFactor: 2, dropRate: 0.3, pooling: 'global' },
    pretrain: { epochs: 100, batchSize: 128, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, schedule: 'cosine', augment: true },
    finetune: { epochs: 25, batchSize: 256, optimizer: { kind: 'sgd', lr: 0.001 }, schedule: 'constant', lambda: 0.5, mode: 'mixed', averaging: 'mixed', fromBaseline: true },
    outliers: [
      { name: 'none', kind: 'none' },
      { name: 'noise', kind: 'image-noise', noise: 'uniform', count: 60000 },
      {
        name: 'generated', kind: 'biggan', sigma2: 50, latent: 'std', sampleMode: 'train', count: 60000,
        train: { iterations: 150000, bottomWidth: 7, upsamples: 2 },
      },
    ],
  },
};

/**
 * `goe experiment images --train PATH --test PATH`: GOE on the user's own labelled images (class
 * folders, IDX pairs or .npz x/y). The runner fills in the data paths, normalises with the training
 * set's per-channel mean and std, and picks the WRN from the image size unless --model says
 * otherwise (see runner.ts, userImagesModel); the rest is the fmnist recipe.
 */
export const IMAGES: ExperimentConfig = {
  ...FMNIST,
  name: 'images',
  title: 'your own images: --train PATH --test PATH (class folders, IDX pairs, .npz x/y), OE with none / noise / BigGAN outliers',
  description:
    'GOE on the user\'s images: a WideResNet trained on --train, a BigGAN trained on the same images, OE fine-tuning with no outliers, ' +
    'uniform noise or BigGAN samples at z std 50, MSP and Energy against font glyphs and icons converted to the images\' shape and the --ood sets ' +
    '(mean over these; Gaussian/uniform noise apart).',
  data: { kind: 'user-images', train: '', test: '' },
  // the BigGAN's shape follows the images' size (runner.ts, bigGANShape)
  outliers: FMNIST.outliers.map((o) => (o.kind === 'biggan' && o.train ? { ...o, train: { ...o.train, bottomWidth: undefined, upsamples: undefined } } : o)),
  full: { ...FMNIST.full, outliers: FMNIST.full!.outliers!.map((o) => (o.kind === 'biggan' && o.train ? { ...o, train: { ...o.train, bottomWidth: undefined, upsamples: undefined } } : o)) },
  ood: [
    { name: 'Font glyphs', kind: 'built', id: 'glyphs' },
    { name: 'Icons', kind: 'built', id: 'icons' },
  ],
  normalize: false,
};

/**
 * End to end in about a minute on lavapipe: 4 classes of smooth synthetic 32x32 images (each
 * class its own colour waves) made in memory, a tiny BigGAN (ch 4) trained for 2 iterations,
 * WRN-10-1 without dropout, 2 epochs of pre-training, then OE fine-tuning for 2 epochs on uniform
 * noise (separable from the inliers) and on the BigGAN's samples at sigma^2 = 50, evaluated
 * against Gaussian and uniform noise test sets. Learning rates are raised (0.05 / 0.01) so the
 * few steps visibly change the model.
 */
export const SMOKE: ExperimentConfig = {
  name: 'smoke',
  title: 'about a minute on a software GPU: synthetic images, WRN-10-1, tiny BigGAN, OE with noise / generated outliers',
  description: 'Smoke test of the whole GOE pipeline on synthetic in-memory data (4 classes of colour-wave images, WRN-10-1): a tiny BigGAN trained and sampled at sigma^2 = 50, baseline training, OE fine-tuning on uniform noise and on generated outliers, MSP/Energy evaluation and reports.',
  data: { kind: 'synthetic-images', classes: 4, train: 32, test: 16 },
  model: { kind: 'wrn', depth: 10, widenFactor: 1, dropRate: 0 },
  pretrain: { epochs: 2, batchSize: 16, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 }, schedule: 'constant' },
  finetune: { epochs: 2, batchSize: 16, optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9 }, schedule: 'constant', lambda: 0.5, mode: 'mixed', averaging: 'mixed', fromBaseline: true },
  outliers: [
    { name: 'none', kind: 'none' },
    { name: 'noise', kind: 'image-noise', noise: 'uniform', count: 32 },
    { name: 'generated', kind: 'biggan', sigma2: 50, count: 32, train: { iterations: 2, ch: 4, batchSize: 8, numDSteps: 2, ema: false } },
  ],
  ood: [
    { name: 'Gaussian noise', kind: 'image-noise', noise: 'gaussian', count: 16 },
    { name: 'Uniform noise', kind: 'image-noise', noise: 'uniform', count: 16 },
  ],
  detectors: ['MSP', 'Energy'],
  normalize: true,
  seed: 0,
  logEvery: 1,
  checkpointEvery: 2,
  evalBatchSize: 16,
};

/**
 * The text path of the smoke run (not a paper experiment): texts of class-specific words, the
 * basic_english tokenizer and a vocabulary built from them, a small GRU classifier, OE with random
 * 20-token sequences and with samples of a tiny word LM trained on the texts (T = 2), evaluated
 * against other random token sequences.
 */
export const SMOKE_TEXT: ExperimentConfig = {
  name: 'smoke-text',
  title: 'the text path in seconds: synthetic texts, GRU, tiny word LM, OE with random tokens / LM samples',
  description: 'Smoke test of the text pipeline on synthetic in-memory texts (3 classes of class-specific words, GRU 16 x 1): training, a tiny word LM trained and sampled at T = 2, OE on random token sequences and on LM samples, MSP/Energy evaluation and reports.',
  data: { kind: 'synthetic-text', classes: 3, train: 48, test: 24, seqLength: 24 },
  model: { kind: 'gru', embeddingDim: 8, hiddenSize: 16, numLayers: 1 },
  pretrain: { epochs: 2, batchSize: 16, optimizer: { kind: 'adam', lr: 1e-2 }, schedule: 'constant' },
  finetune: { epochs: 2, batchSize: 16, optimizer: { kind: 'adam', lr: 1e-2 }, schedule: 'constant', lambda: 0.5, mode: 'mixed', averaging: 'mixed', fromBaseline: true },
  outliers: [
    { name: 'none', kind: 'none' },
    { name: 'noise', kind: 'token-noise', tokens: 20, count: 32 },
    { name: 'generated', kind: 'lm', temperature: 2, count: 16, train: { epochs: 2, emsize: 8, nhid: 8, nlayers: 1, nhead: 2, dropout: 0, lr: 5, bptt: 8, batchSize: 4 } },
  ],
  ood: [{ name: 'Random tokens', kind: 'token-noise', tokens: 20, count: 24 }],
  detectors: ['MSP', 'Energy'],
  normalize: false,
  seed: 0,
  logEvery: 1,
  checkpointEvery: 2,
  evalBatchSize: 24,
};

/**
 * The OE repo's own OE fine-tuning recipe (CIFAR/oe_tune.py): 10 epochs, SGD lr 0.001 with cosine
 * annealing stepped per batch before the update, Nesterov momentum 0.9, wd 5e-4, 128 inliers + 256
 * outliers per batch, the two means of its loss, RandomCrop(32, padding 4) + horizontal flip on the
 * inliers (train_transform) and on the outliers (ood_data's transform).
 */
export function oeRepoFinetune(f: FinetuneConfig): FinetuneConfig {
  return {
    ...f, epochs: 10, batchSize: 128, outlierBatchSize: 256, mode: 'paired', averaging: 'separate', schedule: 'cosine', schedulerStep: 'before-update', augment: true,
    optimizer: { kind: 'sgd', lr: 0.001, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
  };
}

export const EXPERIMENTS: Readonly<Record<string, ExperimentConfig>> = {
  fmnist: FMNIST,
  images: IMAGES,
  cifar10: cifar('cifar10'),
  cifar100: cifar('cifar100'),
  newsgroups: NEWSGROUPS,
  smoke: SMOKE,
  'smoke-text': SMOKE_TEXT,
};

export function experimentConfig(name: string): ExperimentConfig {
  const c = EXPERIMENTS[name];
  if (c === undefined) throw new RangeError(`unknown experiment "${name}" (known: ${Object.keys(EXPERIMENTS).join(', ')})`);
  return structuredClone(c);
}
