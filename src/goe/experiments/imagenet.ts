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
 * Not done here (said so in the log and the README): --resume (each phase restarts), checkpoints
 * inside the 1,000 steps.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import {
  SGD, init, loadModel, manualSeed, memoryStats, noGrad, randn, runtime, saveModel, scope, tensor, type Module,
} from '../../engine/index.ts';
import { DataLoader, DataError, Rng, dataDir, imageFolder, loadImageNetVariant, permutation, subset, type ImageTransform, type Source } from '../../data/index.ts';
import { BigGANDeep, bigGANDeepConfig, checkBigGANDeepConfig, type BigGANDeepConfig } from '../../models/biggan-deep.ts';
import { VisionTransformer, VIT_PRESETS, type ViTOptions } from '../../models/vit.ts';
import { resnet } from '../../models/resnet.ts';
import { ImageNoiseSampler, sampleClasses } from '../samplers/index.ts';
import { latentStd } from '../samplers/latent.ts';
import { scoreRun, evaluateScores, type EvalSet, type EvaluationResult } from '../train/evaluate.ts';
import { writeReports, type ExperimentReport, type VariantReport } from '../train/report.ts';
import { fileLogger, formatDuration, type LogFn } from '../train/log.ts';
import type { Classifier } from '../train/loop.ts';
import { sampleImages, writeRunFigures } from '../report/index.ts';
import { ExperimentInputError } from './runner.ts';
import { accumulateOeGradients, largestActivationBytes, planMicroBatch } from './imagenet-train.ts';

/** The classifiers: the paper's two and a reduced ViT for tests and quick runs. */
export const IMAGENET_MODELS = {
  /**
   * pytorch-ood's VisionTransformer 'b16-im21k-224' (the paper's notebook): LayerNorm eps 1e-5 and
   * its default dropout_rate 0.1 (after the positions, the attention output, the GELU and fc2: the
   * places of torchvision's `dropout`), active while fine-tuning; attention dropout 0.
   */
  'vit-b16': { kind: 'vit', vit: { ...VIT_PRESETS.vit_b_16_pytorch_ood, dropout: 0.1 } },
  /** torchvision's vit_b_16 (LayerNorm eps 1e-6), for its or timm's weights. */
  'vit-b16-torchvision': { kind: 'vit', vit: VIT_PRESETS.vit_b_16 },
  /** torchvision's resnet101 (Table 3 / Fig. 3). */
  resnet101: { kind: 'resnet', resnet: 'resnet101' },
  /** A reduced ViT (224 px, patch 32, 2 layers of width 32, vit-b16's eps and dropout): tests and quick runs, random weights allowed. */
  'vit-tiny': { kind: 'vit', vit: { imageSize: 224, patchSize: 32, numLayers: 2, numHeads: 2, hiddenDim: 32, mlpDim: 64, numClasses: 1000, layerNormEps: 1e-5, dropout: 0.1 } },
} as const satisfies Record<string, { kind: 'vit'; vit: ViTOptions } | { kind: 'resnet'; resnet: string }>;

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
  logEvery: 20,
};

export const IMAGENET_VARIANTS = ['none', 'noise', 'generated'] as const;

export interface ImageNetOptions {
  out: string;
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
  maxSteps?: number;
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

function makeClassifier(name: ImageNetModelName): { model: Classifier; kind: 'vit' | 'resnet' } {
  const spec = IMAGENET_MODELS[name];
  if (spec.kind === 'vit') return { model: new VisionTransformer({ ...spec.vit }) as unknown as Classifier, kind: 'vit' };
  return { model: resnet(spec.resnet) as unknown as Classifier, kind: 'resnet' };
}

/** Bytes the engine's buffer pool holds (live and free): with the pool trimmed at a phase's start, the phase's peak. */
function poolBytes(): number {
  return runtime().device.pool.stats().bytes;
}

function memoryLine(phase: string): string {
  const m = memoryStats();
  return `[${phase}] peak GPU memory ${(poolBytes() / 2 ** 20).toFixed(1)} MiB (buffer pool), ${m.tensors} tensors / ${m.storages} storages alive`;
}

/** Writes uint8 CHW images as PNG files img-000000.png ... into `dir` (the notebook's sample folder). */
async function writePngs(dir: string, data: Uint8Array, n: number, c: number, h: number, w: number, first: number): Promise<void> {
  const plane = h * w;
  const hwc = Buffer.alloc(plane * c);
  for (let i = 0; i < n; i++) {
    const at = i * c * plane;
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) hwc[p * c + k] = data[at + k * plane + p]!;
    await sharp(hwc, { raw: { width: w, height: h, channels: c as 3 } }).png().toFile(join(dir, `img-${String(first + i).padStart(6, '0')}.png`));
  }
}

/**
 * Samples `n` BigGAN-deep images into `dir` as PNGs, chunk by chunk (never more than one chunk in
 * memory): z ~ N(0, std^2 I) from the engine's seeded Philox stream (offsets by row, so the set
 * does not depend on the chunk), classes uniform (seeded), uint8 as sample.py converts.
 */
async function sampleGenerated(G: BigGANDeep, n: number, std: number, truncation: number, seed: number, dir: string, log: LogFn): Promise<Record<string, unknown>> {
  mkdirSync(dir, { recursive: true });
  G.eval();
  G.freezeSpectralNorms(); // W / sigma once for all chunks (the same numbers as per forward)
  const classes = sampleClasses(n, G.numClasses, seed);
  const chunk = 16;
  const t0 = performance.now();
  for (let done = 0; done < n; done += chunk) {
    const m = Math.min(chunk, n - done);
    const px = await noGrad(() => scope(() => {
      const z = randn([m, G.dimZ], { seed, offset: Math.ceil((done * G.dimZ) / 4), std });
      return G.forward(z, tensor(classes.subarray(done, done + m), [m], 'i32'), truncation);
    })).data() as Float32Array;
    const bad = px.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`the generator's image ${done + Math.floor(bad / (px.length / m))} holds ${px[bad]}: are the weights those of this config (--generator-config), converted from the port's checkpoint?`);
    const u8 = new Uint8Array(px.length);
    for (let i = 0; i < px.length; i++) {
      const v = Math.fround(Math.fround(Math.fround(px[i]! + 1) * 255) / 2);
      u8[i] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
    }
    const r = G.resolution;
    await writePngs(dir, u8, m, 3, r, r, done);
    if (done === 0 || (done / chunk) % 50 === 0) log(`[generated] ${done + m}/${n} images (${((done + m) / ((performance.now() - t0) / 1000)).toFixed(2)} images/s)`);
  }
  return { sampler: 'biggan-deep', config: G.config.output_dim, sigma2: std, zStd: std, truncation, n, seed, resolution: G.resolution };
}

/** Runs the experiment into `opts.out`; every input is checked before any model runs. */
export async function runImageNet(opts: ImageNetOptions): Promise<ImageNetResult> {
  const t0 = performance.now();
  const R = IMAGENET_RECIPE;
  const modelName = opts.model ?? 'vit-b16';
  if (!(modelName in IMAGENET_MODELS)) fail(`--model ${modelName}: the imagenet experiment's classifiers are ${Object.keys(IMAGENET_MODELS).join(', ')}`);
  const reduced = modelName === 'vit-tiny';
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
  // inputs first: weights, data, OOD sets
  if (opts.weights === undefined && !reduced) {
    fail(`--weights FILE is needed: the paper fine-tunes a pretrained ${modelName} (convert its PyTorch checkpoint with goe convert IN OUT.safetensors); --model vit-tiny runs a reduced, randomly initialised ViT`);
  }
  for (const [flag, p] of [['--weights', opts.weights], ['--generator', opts.generator]] as const) if (p !== undefined && !existsSync(p)) fail(`${flag} ${p} does not exist`);
  if (opts.outliersDir !== undefined && (!existsSync(opts.outliersDir) || !statSync(opts.outliersDir).isDirectory())) fail(`--outliers-dir ${opts.outliersDir} is not a folder of images`);
  if (variants.includes('generated') && opts.generator === undefined && opts.outliersDir === undefined && genConfigName !== 'biggan-deep-tiny') {
    fail(`the "generated" outliers need the pretrained BigGAN's weights: --generator FILE (the port's ${genConfigName}-pytorch_model.bin converted by goe convert), --outliers-dir DIR (samples already made, e.g. the notebook's image folder), or leave the variant out with --variants none,noise`);
  }
  const { train: trainDir, val: valDir } = locateImageNet(opts);
  const dir = resolve(opts.out);
  mkdirSync(dir, { recursive: true });
  const log = fileLogger(join(dir, 'train.log'), opts.log);
  const { device } = await init();
  log(device.describe());
  log(`experiment imagenet (${modelName}) -> ${dir}`);
  const seed = opts.seed ?? R.seed;
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

  // the classifier and its weights
  manualSeed(seed);
  const { model: baseline, kind } = makeClassifier(modelName);
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
  const binding = device.limits.maxStorageBufferBindingSize;
  const batch = R.inliersPerBatch + R.outliersPerBatch;
  const microBatch = opts.microBatch ?? planMicroBatch(batch, largestActivationBytes(baseline as never, kind), binding);
  log(`batches of ${R.inliersPerBatch} inliers + ${R.outliersPerBatch} outliers in micro-batches of ${microBatch} (largest activation ${(largestActivationBytes(baseline as never, kind) / 2 ** 20).toFixed(1)} MiB per sample, storage binding ${(binding / 2 ** 20).toFixed(0)} MiB)`);

  const norm: ImageTransform = R.normalize;
  const evalOpts = { detectors: R.detectors, batchSize: microBatch, transform: norm, workers: opts.workers };
  const metricOptions = { prRule: 'trapezoid' as const };
  const evaluate = async (model: Classifier, sub: string, outlierSource: Source | null, label: string): Promise<{ evaluation: EvaluationResult; figures: string }> => {
    runtime().device.pool.trim();
    const te = performance.now();
    const scores = await scoreRun(model, { name: 'ImageNet validation', source: val }, ood, evalOpts);
    const evaluation = evaluateScores(scores, metricOptions);
    const figures = await writeRunFigures({
      dir: join(dir, sub), relativeTo: dir, title: sub, scores,
      ...(outlierSource !== null ? { outliers: { ...(await sampleImages(outlierSource, 32, { seed })), label } } : {}),
      ...(outlierSource !== null && sub !== 'noise' ? { training: await sampleImages(train, 32, { seed }) } : {}),
    });
    writeFileSync(join(dir, sub, 'evaluation.json'), JSON.stringify({ complete: true, evaluation }, null, 2) + '\n');
    const acc = evaluation.accuracy === null ? '' : `accuracy ${(evaluation.accuracy * 100).toFixed(2)}%, `;
    log(`[${sub}] ${acc}${R.detectors.map((d) => `${d} AUROC ${(evaluation.reports[d]!.mean.auroc * 100).toFixed(2)} FPR95 ${(evaluation.reports[d]!.mean.fpr95tpr * 100).toFixed(2)}`).join('; ')} (mean over ${ood.length} OOD sets, ${formatDuration((performance.now() - te) / 1000)})`);
    log(memoryLine(`evaluate ${sub}`));
    return { evaluation, figures: figures.markdown };
  };

  const reports: VariantReport[] = [];
  const steps = Math.min(R.steps, opts.maxSteps ?? R.steps);
  const count = Math.min(opts.count ?? R.count, opts.limit ?? Infinity);
  for (const [vi, v] of IMAGENET_VARIANTS.entries()) {
    if (!variants.includes(v)) continue;
    mkdirSync(join(dir, v), { recursive: true });
    if (v === 'none') {
      const ev = await evaluate(baseline, v, null, '');
      reports.push({ outliers: v, description: `No outliers: the ${opts.weights !== undefined ? 'pretrained' : 'randomly initialised'} ${modelName}.`, evaluation: ev.evaluation, figures: ev.figures });
      continue;
    }
    // the outliers
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
      const sigma2 = opts.sigma2 ?? R.sigma2;
      const scale = opts.latentScale ?? R.latent;
      const std = latentStd(sigma2, scale);
      const folder = join(dir, 'outliers', 'generated');
      info = await sampleGenerated(G, count, std, truncation, seed + 100 + vi, folder, log);
      info = { ...info, sigma2, latentScale: scale, generator: opts.generator ?? 'random', generatorConfig: genConfigName };
      G.dispose();
      outliers = await imageFolder(folder, { ...geometry, structure: 'flat' });
      label = `Generated outliers (${genConfigName}, sigma^2 = ${sigma2} read as ${scale})`;
    }
    log(`[${v}] ${outliers.length} outliers in ${formatDuration((performance.now() - ts) / 1000)}`);
    log(memoryLine(`outliers ${v}`));

    // fine-tuning from the baseline weights
    runtime().device.pool.trim();
    manualSeed(seed + 1 + vi);
    const { model } = makeClassifier(modelName);
    await loadModel(baselineWeights, model as unknown as Module);
    model.train();
    const opt = new SGD(model.parameters(), { lr: R.lr });
    const loader = new DataLoader({
      source: train, batchSize: R.inliersPerBatch, seed: seed + 1 + vi, transform: norm, workers: opts.workers, dropLast: train.length >= R.inliersPerBatch,
      outliers: { source: outliers, mode: 'paired', batchSize: R.outliersPerBatch, transform: norm },
    });
    const tf = performance.now();
    const losses: { step: number; loss: number }[] = [];
    let step = 0;
    try {
      for (let epoch = 0; step < steps; epoch++) {
        for await (const b of loader.epoch(epoch)) {
          opt.zeroGrad();
          const loss = accumulateOeGradients(model, b.x as Float32Array, b.shape, b.y, { lambda: R.lambda, microBatch });
          opt.step();
          step++;
          if (step === 1 || step % R.logEvery === 0 || step === steps) {
            const l = await loss.item();
            losses.push({ step, loss: l });
            log(`[oe-${v}] step ${step}/${steps} loss ${l.toFixed(4)} (${(step / ((performance.now() - tf) / 1000)).toFixed(3)} steps/s)`);
          }
          loss.dispose();
          if (step >= steps) break;
        }
      }
    } finally {
      await loader.close();
      opt.dispose();
    }
    const seconds = (performance.now() - tf) / 1000;
    log(`[oe-${v}] ${step} steps in ${formatDuration(seconds)}${steps < R.steps ? ` (stopped by --max-steps; the recipe runs ${R.steps})` : ''}`);
    log(memoryLine(`oe-${v}`));
    await saveModel(join(dir, v, 'model.safetensors'), model as unknown as Module);
    const ev = await evaluate(model, v, outliers, label);
    reports.push({
      outliers: v,
      description: `${steps < R.steps ? 'PROVISIONAL (training stopped by --max-steps). ' : ''}Outlier Exposure fine-tuning of the ${modelName}: ${step} batches of ${R.inliersPerBatch} inliers + ${R.outliersPerBatch} outliers (micro-batches of ${microBatch}), plain SGD lr ${R.lr}, pytorch-ood's OE loss (alpha ${R.lambda}), on ${outliers.length} outliers (${JSON.stringify(info)}).`,
      evaluation: ev.evaluation,
      figures: ev.figures,
      training: { steps: step, seconds, stepsPerSecond: step / seconds, losses, microBatch },
    });
    model.dispose();
  }
  baseline.dispose();
  const report: ExperimentReport = {
    experiment: 'imagenet',
    description:
      `GOE on ImageNet-1K (paper Table 1 / Table 3): the ${modelName} fine-tuned with Outlier Exposure for ${steps} batches of 64 ImageNet training images + 64 outliers ` +
      '(plain SGD lr 0.001, pytorch-ood OE loss, alpha 0.5) on no outliers, uniform noise, or pretrained BigGAN-deep samples at sigma^2 = 2; MSP and Energy, the validation set against ImageNet-A, -R, -O (mean over the three); ' +
      'every image Resize((224, 224)) and Normalize(0.5, 0.5) as the notebook.',
    adapter: runtime().device.describe(),
    variants: reports,
    options: metricOptions,
    paperNames: true,
  };
  const files = writeReports(dir, report);
  const seconds = (performance.now() - t0) / 1000;
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ experiment: 'imagenet', seconds, model: modelName, microBatch }, null, 2) + '\n');
  log(`results: ${files.markdown} (${formatDuration(seconds)} in all)`);
  return { dir, report, files, seconds };
}

/** True for the errors the CLI reports as input errors (exit 2). */
export function isImageNetInputError(e: unknown): boolean {
  return e instanceof ExperimentInputError || e instanceof DataError;
}

