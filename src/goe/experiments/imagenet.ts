/**
 * `goe experiment imagenet` (`npm run goe:imagenet`): the paper's ImageNet-1K row (Table 1 with the
 * ViT, Table 3 / Fig. 3 with the ResNet-101), as the notebook oe-imagenet-transformer.ipynb runs it:
 *
 *   - classifier: a pretrained ViT-B/16 (the notebook: pytorch-ood's VisionTransformer with the
 *     'b16-im21k-224' weights, ImageNet-21k pretrained and 1k fine-tuned) or torchvision's
 *     ResNet-101; --weights FILE gives its weights (safetensors, `goe convert` makes them);
 *   - data: ImageNet's training split (the OE inliers) and validation split (the in-distribution
 *     test set) from class-folder trees (they cannot be downloaded), ImageNet-A, -R and -O (OOD,
 *     downloaded and md5-checked); every image ToRGB, Resize((224, 224)) (squashing, Pillow's
 *     bilinear), ToTensor, Normalize(mean 0.5, std 0.5);
 *   - outliers: none (the pretrained model itself), uniform noise (torch.randint(0, 255) images at
 *     224x224, as the notebooks draw them), or samples of a pretrained BigGAN at sigma^2 = 2 with
 *     classes uniform over the 1000, written as an image folder (the notebook's layout) and read
 *     back through the same Resize((224, 224));
 *   - fine-tuning: 1,000 batches of 64 inliers + 64 outliers (concatenated), plain SGD lr 0.001,
 *     pytorch-ood's OutlierExposureLoss (alpha 0.5, one mean over the batch); a batch that does
 *     not fit the device runs as accumulated micro-batches (imagenet-train.ts);
 *   - testing: MSP and Energy, the validation set against each of ImageNet-A, -R, -O, the mean of
 *     the three as the headline; pytorch-ood@415df13's PR areas, columns named both ways.
 *
 * The generator: the paper does not name its checkpoint. The default is biggan-deep-128 of the
 * huggingface port (src/models/biggan-deep.ts): the paper says "a pre-trained BigGAN" for
 * ImageNet, the port is the PyTorch BigGAN a 2022 notebook would load (pip install
 * pytorch-pretrained-biggan; BigGAN-PyTorch's own ImageNet weights are a 128x128 model too), and
 * 128 pixels is the smallest released resolution, the cheapest to sample, whose images the
 * pipeline resizes to 224 anyway. --generator-config biggan-deep-256 (or 512) takes the others.
 * The latent: z ~ N(0, s^2 I) with s = sigma^2 = 2 under the default 'std' reading (the reference
 * code's z_var convention the other experiments use; --latent-scale variance gives s = sqrt 2),
 * untruncated, with the port's truncation-1 batch-norm statistics (--truncation picks others);
 * the generator in evaluation mode (the port's batch norm always uses stored statistics, and its
 * spectral norms then keep their stored u, v).
 *
 * Resuming (`resume`, --resume DIR) works as in the other experiments (runner.ts): the run folder's
 * config.json must be this experiment's with the same settings (else exit 2, the folder untouched:
 * runner.ts's prepareRunFolder); each fine-tuning phase runs in the shared training loop
 * (src/goe/train/loop.ts, its micro-batch step through `accumulate`), checkpointed every
 * `checkpointEvery` batches and when --max-steps stops it, the last two kept with CRCs checked on
 * load, and continued bit-identically; a finished evaluation is reused; an interrupted BigGAN
 * sampling keeps its finished images (imagenet-outliers.ts). The loop's divergence guard stops a
 * phase whose loss, gradients or weights become non-finite, naming the step and the last good
 * checkpoint, and never writes a checkpoint from that state.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SGD, init, loadModel, manualSeed, memoryStats, runtime, saveModel, type Module } from '../../engine/index.ts';
import { DataLoader, Rng, dataDir, imageFolder, loadImageNetVariant, permutation, subset, type ImageTransform, type Source } from '../../data/index.ts';
import { BigGANDeep, bigGANDeepConfig, checkBigGANDeepConfig, type BigGANDeepConfig } from '../../models/biggan-deep.ts';
import { VisionTransformer, VIT_PRESETS, type ViTOptions } from '../../models/vit.ts';
import { ResNet, type ResNetBlockKind } from '../../models/resnet.ts';
import { ImageNoiseSampler } from '../samplers/index.ts';
import { latentStd } from '../samplers/latent.ts';
import { scoreRun, evaluateScores, type EvalSet, type EvaluationResult } from '../train/evaluate.ts';
import { writeReports, type ExperimentReport, type VariantReport } from '../train/report.ts';
import { fileLogger, formatDuration, type LogFn } from '../train/log.ts';
import { trainLoop, type Classifier } from '../train/loop.ts';
import { writeJsonAtomic } from '../train/run-files.ts';
import { sampleImages, writeRunFigures } from '../report/index.ts';
import { ExperimentInputError, isInputError, prepareRunFolder } from './runner.ts';
import { accumulateOeGradients, largestActivationBytes, planMicroBatch } from './imagenet-train.ts';
import { finishedSamples, sampleGenerated } from './imagenet-outliers.ts';

export type ImageNetModelSpec =
  | { kind: 'vit'; vit: ViTOptions; reduced?: true }
  | { kind: 'resnet'; block: ResNetBlockKind; layers: readonly [number, number, number, number]; baseWidth: number; reduced?: true };

/** The classifiers: the paper's two, and a reduced ViT and ResNet (random weights allowed) for tests and quick runs. */
export const IMAGENET_MODELS = {
  /**
   * pytorch-ood's VisionTransformer 'b16-im21k-224' (the paper's notebook): LayerNorm eps 1e-5 and
   * its default dropout_rate 0.1 (after the positions, the attention output, the GELU and fc2: the
   * places of torchvision's `dropout`), active while fine-tuning; attention dropout 0.
   */
  'vit-b16': { kind: 'vit', vit: { ...VIT_PRESETS.vit_b_16_pytorch_ood, dropout: 0.1 } },
  /** torchvision's vit_b_16 (LayerNorm eps 1e-6), for its or timm's weights. */
  'vit-b16-torchvision': { kind: 'vit', vit: VIT_PRESETS.vit_b_16 },
  /** torchvision's resnet101 (Table 3 / Fig. 3; RESNET_PRESETS.resnet101). */
  resnet101: { kind: 'resnet', block: 'bottleneck', layers: [3, 4, 23, 3], baseWidth: 64 },
  /** A reduced ViT (224 px, patch 32, 2 layers of width 32, vit-b16's eps and dropout). */
  'vit-tiny': { kind: 'vit', reduced: true, vit: { imageSize: 224, patchSize: 32, numLayers: 2, numHeads: 2, hiddenDim: 32, mlpDim: 64, numClasses: 1000, layerNormEps: 1e-5, dropout: 0.1 } },
  /** A reduced ResNet-101 layout: Bottleneck blocks, one per stage, base width 4 (torchvision's module tree and BatchNorm). */
  'resnet-tiny': { kind: 'resnet', reduced: true, block: 'bottleneck', layers: [1, 1, 1, 1], baseWidth: 4 },
} as const satisfies Record<string, ImageNetModelSpec>;

export type ImageNetModelName = keyof typeof IMAGENET_MODELS;

/** The recipe (REFERENCE.md, the notebook); every number here is what the paper's code ran. */
export const IMAGENET_RECIPE = {
  steps: 1000,
  inliersPerBatch: 64,
  outliersPerBatch: 64,
  lr: 0.001,
  lambda: 0.5,
  sigma2: 2,
  latent: 'std' as 'std' | 'variance',
  truncation: 1,
  /** Outliers made per variant: one per outlier slot of the 1,000 batches. */
  count: 64000,
  /** Noise images held in memory (224x224x3 bytes each, 1.5 GB): drawn with replacement by the loader. */
  noiseCount: 10000,
  /** The normalisation of every image (the notebook's Normalize(0.5, 0.5)). */
  normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  size: 224,
  detectors: ['MSP', 'Energy'] as const,
  seed: 0,
  /** The loss is read back (and the divergence flag checked) every batch: a batch of 128 images at 224 px dwarfs one readback. */
  logEvery: 1,
  /** Fine-tuning checkpoints (ours, not the paper's): every 50 of the 1,000 batches, about 350 MB each for ViT-B/16. */
  checkpointEvery: 50,
};

export const IMAGENET_VARIANTS = ['none', 'noise', 'generated'] as const;

export interface ImageNetOptions {
  out: string;
  /** Continue the run in `out` from its checkpoints (same settings, else an input error). */
  resume?: boolean;
  model?: ImageNetModelName;
  /** Classifier weights (safetensors); required for the pretrained models. */
  weights?: string;
  /** BigGAN-deep weights (safetensors of the port's state_dict); required for the released configs. */
  generator?: string;
  /** A preset name (biggan-deep-128 ...) or the port's config.json. */
  generatorConfig?: string;
  /** The 'generated' outliers as a folder of images made beforehand (no generator runs). */
  outliersDir?: string;
  dataDir?: string;
  imagenetTrain?: string;
  imagenetVal?: string;
  /** Extracted ImageNet-A/-R/-O class-folder trees to use instead of the data folder's downloads. */
  imagenetA?: string;
  imagenetR?: string;
  imagenetO?: string;
  download?: boolean;
  variants?: string[];
  limit?: number;
  /** Fine-tuning batches per variant (default the recipe's 1,000). */
  steps?: number;
  /** Stop each fine-tuning phase after this many batches in this call (checkpointed; resume continues it), then evaluate. */
  maxSteps?: number;
  /** The fine-tuning learning rate (default the recipe's 0.001). */
  lr?: number;
  /** Fine-tuning checkpoint interval in batches (default 50); the phase's end and a --max-steps stop are always checkpointed. */
  checkpointEvery?: number;
  microBatch?: number;
  workers?: number;
  sigma2?: number;
  latentScale?: 'std' | 'variance';
  truncation?: number;
  count?: number;
  seed?: number;
  log?: LogFn;
}

export interface ImageNetResult {
  dir: string;
  report: ExperimentReport;
  files: { markdown: string; csv: string; json: string };
  seconds: number;
}

const fail = (msg: string): never => {
  throw new ExperimentInputError(msg);
};

/** The two ImageNet splits, located before anything else runs; a missing one says what to put where. */
export function locateImageNet(o: Pick<ImageNetOptions, 'dataDir' | 'imagenetTrain' | 'imagenetVal'>): { train: string; val: string } {
  const base = join(o.dataDir ?? dataDir(), 'imagenet');
  const val = o.imagenetVal ?? join(base, 'val');
  const train = o.imagenetTrain ?? join(base, 'train');
  const missing = [['validation', val, '--imagenet-val'], ['training', train, '--imagenet-train']].filter(([, p]) => !existsSync(p!) || !statSync(p!).isDirectory());
  if (missing.length > 0) {
    fail(
      `ImageNet cannot be downloaded (its licence requires an account at image-net.org): ${missing.map(([what, p]) => `the ${what} split is not at ${p}`).join('; ')}. ` +
        `Put ILSVRC2012's class folders (n01440764/, n01443537/, ... with the JPEG files inside, torchvision's ImageFolder layout) at ${join(base, 'val')} and ${join(base, 'train')}, ` +
        'or name them with --imagenet-val PATH and --imagenet-train PATH (--data-dir DIR looks in DIR/imagenet/).',
    );
  }
  return { train, val };
}

function capped(src: Source, limit: number | undefined, seed: number): Source {
  if (limit === undefined || src.length <= limit) return src;
  const idx = Array.from(permutation(src.length, new Rng(seed, 0x11)).subarray(0, limit)).sort((a, b) => a - b);
  return subset(src, idx);
}

function makeClassifier(spec: ImageNetModelSpec): Classifier {
  if (spec.kind === 'vit') return new VisionTransformer({ ...spec.vit }) as unknown as Classifier;
  return new ResNet(spec.block, spec.layers, { baseWidth: spec.baseWidth }) as unknown as Classifier;
}

/** Bytes the engine's buffer pool holds (live and free): with the pool trimmed at a phase's start, the phase's peak. */
function poolBytes(): number {
  return runtime().device.pool.stats().bytes;
}

function memoryLine(phase: string): string {
  const m = memoryStats();
  return `[${phase}] peak GPU memory ${(poolBytes() / 2 ** 20).toFixed(1)} MiB (buffer pool), ${m.tensors} tensors / ${m.storages} storages alive`;
}

/** A variant's saved evaluation, when a resumed run may reuse it (written whole by a finished phase). */
function savedEvaluation(file: string, log: LogFn): { evaluation: EvaluationResult; figures: string } | null {
  if (!existsSync(file)) return null;
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { complete?: boolean; evaluation: EvaluationResult; figures?: string };
    return saved.complete === true && saved.figures !== undefined ? { evaluation: saved.evaluation, figures: saved.figures } : null;
  } catch (e) {
    log(`${file} is not whole JSON (${(e as Error).message}): evaluating again`);
    return null;
  }
}

/** Runs the experiment into `opts.out`; every input is checked before any model runs. */
export async function runImageNet(opts: ImageNetOptions): Promise<ImageNetResult> {
  const t0 = performance.now();
  const R = IMAGENET_RECIPE;
  const modelName = opts.model ?? 'vit-b16';
  if (!(modelName in IMAGENET_MODELS)) fail(`--model ${modelName}: the imagenet experiment's classifiers are ${Object.keys(IMAGENET_MODELS).join(', ')}`);
  const spec: ImageNetModelSpec = IMAGENET_MODELS[modelName];
  const variants = opts.variants ?? [...IMAGENET_VARIANTS];
  const unknown = variants.filter((v) => !(IMAGENET_VARIANTS as readonly string[]).includes(v));
  if (unknown.length > 0) fail(`unknown outlier variant(s) ${unknown.join(', ')} for imagenet (has: ${IMAGENET_VARIANTS.join(', ')})`);
  const genConfigName = opts.generatorConfig ?? 'biggan-deep-128';
  let genConfig: BigGANDeepConfig | undefined;
  try {
    // a preset name, or the port's config.json (config.py's keys)
    genConfig = genConfigName.endsWith('.json') ? (JSON.parse(readFileSync(genConfigName, 'utf8')) as BigGANDeepConfig) : bigGANDeepConfig(genConfigName);
    checkBigGANDeepConfig(genConfig);
  } catch (e) {
    fail(`--generator-config ${genConfigName}: ${(e as Error).message}`);
  }
  const truncation = opts.truncation ?? R.truncation;
  if (!(truncation > 0 && truncation <= 1)) fail(`--truncation must be in (0, 1] (the port's batch-norm statistics), got ${truncation}`);
  const lr = opts.lr ?? R.lr;
  if (!(lr > 0 && Number.isFinite(lr))) fail(`--lr must be a finite number > 0, got ${lr}`);
  // inputs first: weights, data, OOD sets
  if (opts.weights === undefined && spec.reduced !== true) {
    fail(`--weights FILE is needed: the paper fine-tunes a pretrained ${modelName} (convert its PyTorch checkpoint with goe convert IN OUT.safetensors); --model vit-tiny or resnet-tiny runs a reduced, randomly initialised classifier`);
  }
  for (const [flag, p] of [['--weights', opts.weights], ['--generator', opts.generator]] as const) if (p !== undefined && !existsSync(p)) fail(`${flag} ${p} does not exist`);
  if (opts.outliersDir !== undefined && (!existsSync(opts.outliersDir) || !statSync(opts.outliersDir).isDirectory())) fail(`--outliers-dir ${opts.outliersDir} is not a folder of images`);
  if (variants.includes('generated') && opts.generator === undefined && opts.outliersDir === undefined && genConfigName !== 'biggan-deep-tiny') {
    fail(`the "generated" outliers need the pretrained BigGAN's weights: --generator FILE (the port's ${genConfigName}-pytorch_model.bin converted by goe convert), --outliers-dir DIR (samples already made, e.g. the notebook's image folder), or leave the variant out with --variants none,noise`);
  }
  const { train: trainDir, val: valDir } = locateImageNet(opts);
  const { device } = await init();
  const binding = device.limits.maxStorageBufferBindingSize;
  const batch = R.inliersPerBatch + R.outliersPerBatch;
  const perSample = largestActivationBytes(spec);
  const microBatch = opts.microBatch ?? planMicroBatch(batch, perSample, binding);
  const steps = opts.steps ?? R.steps;
  const seed = opts.seed ?? R.seed;
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(p));
  // what decides the numbers: a resumed run must have the same (the micro-batch too: each draws its own dropout masks)
  const config = {
    name: 'imagenet', model: modelName, weights: abs(opts.weights), generator: abs(opts.generator), generatorConfig: genConfigName, outliersDir: abs(opts.outliersDir),
    variants, limit: opts.limit, steps, lr, sigma2: opts.sigma2 ?? R.sigma2, latentScale: opts.latentScale ?? R.latent, truncation, count: opts.count, seed, microBatch,
  };
  const dir = resolve(opts.out);
  const resume = opts.resume === true;
  prepareRunFolder(dir, config, resume);
  const log = fileLogger(join(dir, 'train.log'), opts.log);
  log(device.describe());
  log(`experiment imagenet (${modelName})${resume ? ' (resume)' : ''} -> ${dir}`);
  writeJsonAtomic(join(dir, 'config.json'), { ...config, run: { ...opts, log: undefined } });
  const geometry = { resize: [R.size, R.size] as [number, number] };
  const trainAll = await imageFolder(trainDir, geometry);
  const valAll = await imageFolder(valDir, geometry);
  const classes = valAll.classes ?? [];
  if ((trainAll.classes ?? []).join('/') !== classes.join('/')) {
    fail(`the training split's class folders (${trainAll.classes?.length ?? 0} in ${trainDir}) differ from the validation split's (${classes.length} in ${valDir}): both need the same class folders, whose sorted order gives the labels`);
  }
  const train = capped(trainAll, opts.limit, seed);
  const val = capped(valAll, opts.limit, seed + 1);
  if (classes.length !== 1000) log(`note: ${valDir} has ${classes.length} class folders, not ImageNet's 1000: labels are their sorted positions, so the pretrained model's accuracy is not ImageNet's`);
  const get = { dir: opts.dataDir, download: opts.download ?? true };
  const oodPaths: [string, 'imagenet-a' | 'imagenet-r' | 'imagenet-o', string | undefined][] = [['ImageNet-A', 'imagenet-a', opts.imagenetA], ['ImageNet-R', 'imagenet-r', opts.imagenetR], ['ImageNet-O', 'imagenet-o', opts.imagenetO]];
  const ood: EvalSet[] = [];
  for (const [i, [name, id, path]] of oodPaths.entries()) {
    const src = path !== undefined ? await imageFolder(path, geometry) : await loadImageNetVariant(id, { ...get, resize: [R.size, R.size], centerCrop: undefined });
    ood.push({ name, source: capped(src, opts.limit, seed + 10 + i) });
  }
  log(`data: train ${train.length} (${trainDir}), validation ${val.length} (${valDir}); OOD ${ood.map((s) => `${s.name} ${s.source.length}`).join(', ')}; Resize((224, 224)), Normalize(0.5, 0.5)`);

  // the classifier and its weights (remade the same way when resumed)
  manualSeed(seed);
  const baseline = makeClassifier(spec);
  if (opts.weights !== undefined) {
    try {
      await loadModel(opts.weights, baseline as unknown as Module);
    } catch (e) {
      fail(`--weights ${opts.weights} does not fit ${modelName}: ${(e as Error).message.split('\n').slice(0, 3).join('; ')} (convert the PyTorch checkpoint with goe convert; --model says which architecture)`);
    }
    log(`classifier ${modelName} from ${opts.weights}`);
  } else log(`classifier ${modelName}: random initialisation (reduced model, no pretrained weights)`);
  const baselineWeights = join(dir, 'baseline', 'model.safetensors');
  mkdirSync(join(dir, 'baseline'), { recursive: true });
  await saveModel(baselineWeights, baseline as unknown as Module);
  log(`batches of ${R.inliersPerBatch} inliers + ${R.outliersPerBatch} outliers in micro-batches of ${microBatch} (largest activation ${(perSample / 2 ** 20).toFixed(1)} MiB per sample, storage binding ${(binding / 2 ** 20).toFixed(0)} MiB)`);

  const norm: ImageTransform = R.normalize;
  const evalOpts = { detectors: R.detectors, batchSize: microBatch, transform: norm, workers: opts.workers };
  const metricOptions = { prRule: 'trapezoid' as const };
  /** Evaluates (or, resumed, reuses a finished phase's evaluation); `complete`: the model's training phase finished. */
  const evaluate = async (model: Classifier, sub: string, complete: boolean, outlierSource: Source | null, label: string): Promise<{ evaluation: EvaluationResult; figures: string }> => {
    const file = join(dir, sub, 'evaluation.json');
    const saved = resume && complete ? savedEvaluation(file, log) : null;
    if (saved !== null) {
      log(`[${sub}] evaluation reused from ${file}`);
      return saved;
    }
    runtime().device.pool.trim();
    const te = performance.now();
    const scores = await scoreRun(model, { name: 'ImageNet validation', source: val }, ood, evalOpts);
    const evaluation = evaluateScores(scores, metricOptions);
    const figures = await writeRunFigures({
      dir: join(dir, sub), relativeTo: dir, title: sub, scores,
      ...(outlierSource !== null ? { outliers: { ...(await sampleImages(outlierSource, 32, { seed })), label } } : {}),
      ...(outlierSource !== null && sub !== 'noise' ? { training: await sampleImages(train, 32, { seed }) } : {}),
    });
    writeJsonAtomic(file, { complete, evaluation, figures: figures.markdown });
    const acc = evaluation.accuracy === null ? '' : `accuracy ${(evaluation.accuracy * 100).toFixed(2)}%, `;
    log(`[${sub}] ${acc}${R.detectors.map((d) => `${d} AUROC ${(evaluation.reports[d]!.mean.auroc * 100).toFixed(2)} FPR95 ${(evaluation.reports[d]!.mean.fpr95tpr * 100).toFixed(2)}`).join('; ')} (mean over ${ood.length} OOD sets, ${formatDuration((performance.now() - te) / 1000)})`);
    log(memoryLine(`evaluate ${sub}`));
    return { evaluation, figures: figures.markdown };
  };

  const reports: VariantReport[] = [];
  const count = Math.min(opts.count ?? R.count, opts.limit ?? Infinity);
  for (const [vi, v] of IMAGENET_VARIANTS.entries()) {
    if (!variants.includes(v)) continue;
    mkdirSync(join(dir, v), { recursive: true });
    if (v === 'none') {
      const ev = await evaluate(baseline, v, true, null, '');
      reports.push({ outliers: v, description: `No outliers: the ${opts.weights !== undefined ? 'pretrained' : 'randomly initialised'} ${modelName}.`, evaluation: ev.evaluation, figures: ev.figures });
      continue;
    }
    // the outliers (noise: remade from its seed; generated: a finished folder is reused when resumed)
    runtime().device.pool.trim();
    const ts = performance.now();
    let outliers: Source;
    let info: Record<string, unknown>;
    let label: string;
    if (v === 'noise') {
      const n = Math.min(opts.count ?? R.noiseCount, opts.limit ?? Infinity);
      const set = await new ImageNoiseSampler({ kind: 'uniform', shape: [3, R.size, R.size], values: 'randint255' }).sample(n, seed + 100 + vi);
      outliers = set.source;
      info = set.info;
      label = 'Uniform noise outliers (torch.randint(0, 255))';
    } else if (opts.outliersDir !== undefined) {
      outliers = await imageFolder(opts.outliersDir, { ...geometry, structure: 'flat' });
      outliers = capped(outliers, opts.count ?? opts.limit, seed + 100 + vi);
      info = { sampler: 'folder', path: opts.outliersDir, n: outliers.length };
      label = `Generated outliers (${opts.outliersDir})`;
    } else {
      const folder = join(dir, 'outliers', 'generated');
      const sigma2 = config.sigma2;
      const scale = config.latentScale;
      const finished = resume ? finishedSamples(folder) : null;
      if (finished !== null) {
        info = finished;
        log(`[generated] outliers reused from ${folder} (${String(finished.n)} images)`);
      } else {
        manualSeed(seed + 100 + vi); // a random generator's weights (biggan-deep-tiny) do not depend on the phases before
        const G = new BigGANDeep(genConfig!);
        if (opts.generator !== undefined) {
          try {
            await loadModel(opts.generator, G);
          } catch (e) {
            fail(`--generator ${opts.generator} does not fit ${genConfigName}: ${(e as Error).message.split('\n').slice(0, 3).join('; ')}`);
          }
        } else {
          G.settleSpectralNorms();
          log(`[generated] ${genConfigName}: random weights (reduced generator, no released checkpoint), one power iteration on every spectral norm as the port's converter does`);
        }
        const describe = { sigma2, latentScale: scale, generator: opts.generator ?? 'random', generatorConfig: genConfigName };
        info = await sampleGenerated(G, { n: count, std: latentStd(sigma2, scale), truncation, seed: seed + 100 + vi, dir: folder, resume, log, describe });
        G.dispose();
      }
      outliers = await imageFolder(folder, { ...geometry, structure: 'flat' });
      label = `Generated outliers (${genConfigName}, sigma^2 = ${sigma2} read as ${scale})`;
    }
    log(`[${v}] ${outliers.length} outliers in ${formatDuration((performance.now() - ts) / 1000)}`);
    log(memoryLine(`outliers ${v}`));

    // fine-tuning from the baseline weights, in the shared loop (checkpoints, resume, divergence guard)
    runtime().device.pool.trim();
    manualSeed(seed + 1 + vi);
    const model = makeClassifier(spec);
    await loadModel(baselineWeights, model as unknown as Module);
    const opt = new SGD(model.parameters(), { lr });
    const loader = new DataLoader({
      source: train, batchSize: R.inliersPerBatch, seed: seed + 1 + vi, transform: norm, workers: opts.workers, dropLast: train.length >= R.inliersPerBatch,
      outliers: { source: outliers, mode: 'paired', batchSize: R.outliersPerBatch, transform: norm },
    });
    let training: { steps: number; seconds: number; stepsPerSecond: number; losses: { step: number; loss: number }[]; microBatch: number };
    let done: boolean;
    try {
      const r = await trainLoop({
        name: `oe-${v}`, model, loader, epochs: steps / loader.numBatches, optimizer: opt, loss: 'oe', lambda: R.lambda, averaging: 'mixed',
        accumulate: (b) => accumulateOeGradients(model, b.x as Float32Array, b.shape, b.y, { lambda: R.lambda, microBatch }),
        logEvery: R.logEvery, checkpoint: join(dir, v, 'checkpoint.safetensors'), checkpointEvery: opts.checkpointEvery ?? R.checkpointEvery,
        resume, stopAfter: opts.maxSteps, log, meta: { experiment: 'imagenet', outliers: v },
      });
      done = !r.interrupted;
      training = { steps: r.steps, seconds: r.seconds, stepsPerSecond: r.stepsPerSecond, losses: r.losses.map((l) => ({ step: l.step, loss: l.loss })), microBatch };
      log(`[oe-${v}] ${r.steps} of ${steps} steps, ${formatDuration(r.seconds)} this run (${r.stepsPerSecond.toFixed(3)} steps/s)${r.interrupted ? '; stopped by --max-steps, --resume continues it' : ''}`);
    } finally {
      await loader.close();
      opt.dispose();
    }
    log(memoryLine(`oe-${v}`));
    await saveModel(join(dir, v, 'model.safetensors'), model as unknown as Module);
    const ev = await evaluate(model, v, done, outliers, label);
    reports.push({
      outliers: v,
      description: `${done ? '' : 'PROVISIONAL (training stopped by --max-steps). '}Outlier Exposure fine-tuning of the ${modelName}: ${training.steps} of ${steps} batches of ${R.inliersPerBatch} inliers + ${R.outliersPerBatch} outliers (micro-batches of ${microBatch}), plain SGD lr ${lr}, pytorch-ood's OE loss (alpha ${R.lambda}), on ${outliers.length} outliers (${JSON.stringify(info)}).`,
      evaluation: ev.evaluation,
      figures: ev.figures,
      training,
    });
    model.dispose();
  }
  baseline.dispose();
  const report: ExperimentReport = {
    experiment: 'imagenet',
    description:
      `GOE on ImageNet-1K (paper Table 1 / Table 3): the ${modelName} fine-tuned with Outlier Exposure for ${steps} batches of 64 ImageNet training images + 64 outliers ` +
      `(plain SGD lr ${lr}, pytorch-ood OE loss, alpha 0.5) on no outliers, uniform noise, or pretrained BigGAN-deep samples at sigma^2 = ${config.sigma2}; MSP and Energy, the validation set against ImageNet-A, -R, -O (mean over the three); ` +
      'every image Resize((224, 224)) and Normalize(0.5, 0.5) as the notebook.',
    adapter: runtime().device.describe(),
    variants: reports,
    options: metricOptions,
    paperNames: true,
  };
  const files = writeReports(dir, report);
  const seconds = (performance.now() - t0) / 1000;
  writeJsonAtomic(join(dir, 'summary.json'), { experiment: 'imagenet', seconds, model: modelName, microBatch });
  log(`results: ${files.markdown} (${formatDuration(seconds)} in all)`);
  return { dir, report, files, seconds };
}

/** True for the errors the CLI reports as input errors (exit 2): the other experiments' rule (runner.ts). */
export function isImageNetInputError(e: unknown): boolean {
  return isInputError(e);
}
