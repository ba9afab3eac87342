/**
 * What the demo page does with a run folder, free of the DOM and of Node (the page calls it in the
 * browser; test/browser/demo.test.ts calls the same functions under Node to compare the numbers):
 *
 *  - openRun: reads config.json, results.json, the chosen variant's model.safetensors and
 *    scores.npz, and generator/G.safetensors, and rebuilds the classifier and the BigGAN generator
 *    from the run's config (the shapes the run trained);
 *  - classify: one image -> class, softmax, and the MSP and Energy outlier scores (higher = more
 *    OOD, as src/goe/detectors computes them for the report);
 *  - thresholds: per detector and OOD set, the score at which 95% of that set's OOD images are
 *    flagged (the operating point of the report's FPR95TPR, src/goe/metrics/curve-areas.ts's
 *    fprAtTpr), with the in-distribution FPR there recomputed beside the report's value;
 *  - sampleGenerator: G(z, y) at a latent scale, as the run sampled its outliers (the run's
 *    latent reading and G's mode), for the sigma^2 slider.
 */
import { unzipSync } from 'fflate';
import { loadModelFromSafetensors, noGrad, randn, scope, tensor, type Tensor } from '../engine/api.ts';
import { parseSafetensors } from '../engine/io/safetensors.ts';
import { WideResNet } from '../models/wideresnet.ts';
import { Generator, toUint8 } from '../models/biggan.ts';
import { energyScore, mspScore } from '../goe/detectors/logit-scores.ts';
import { parseNpyScores } from '../goe/metrics/npy.ts';

/** Reads a file of the run folder by its relative path ('generated/model.safetensors'); null when absent. */
export type RunReader = (path: string) => Promise<Uint8Array | null>;

/** The class names of src/data/idx.ts (FASHION_MNIST_CLASSES; that module reads files with Node). */
const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
/** src/data/transforms.ts's CIFAR_MEAN / CIFAR_STD (config `normalize: true`). */
const CIFAR_MEAN = [0.4914, 0.4824, 0.4467];
const CIFAR_STD = [0.2471, 0.2435, 0.2616];

/** The in-distribution FPR and the flagging threshold at 95% TPR for one detector and OOD set. */
export interface Threshold {
  detector: string;
  outlierSet: string;
  /** Flag as OOD when score >= threshold. */
  threshold: number;
  /** Fraction of the in-distribution test set flagged at this threshold (recomputed from scores.npz). */
  fpr: number;
  /** The report's FPR95TPR for this row (results.json), for comparison; null if not in the report. */
  reportFpr: number | null;
}

export interface DemoRun {
  name: string;
  variant: string;
  variants: string[];
  description: string;
  accuracy: number | null;
  classes: string[];
  channels: number;
  size: number;
  mean: number[];
  std: number[];
  classifier: WideResNet;
  generator: Generator | null;
  /** G.safetensors as loaded: every sampling starts from it (see sampleGenerator). */
  generatorBytes: Uint8Array | null;
  /** How the run read its latent number ('std': z ~ N(0, s^2); 'variance': z ~ N(0, s)) and G's mode. */
  latent: { scale: 'std' | 'variance'; mode: 'train' | 'eval'; sigma2: number };
  thresholds: Threshold[];
  dispose(): void;
}

interface RunConfig {
  name?: string;
  description?: string;
  data?: { kind?: string; variant?: string };
  model?: { kind?: string; depth?: number; widenFactor?: number; dropRate?: number; pooling?: 'avg8' | 'global' };
  outliers?: { name: string; kind: string; sigma2?: number; latent?: 'std' | 'variance'; sampleMode?: 'train' | 'eval'; train?: { ch?: number; bottomWidth?: number; upsamples?: number } }[];
  normalize?: boolean | { mean: number[]; std: number[] };
}

interface ResultsRow { detector: string; outlier_set: string; FPR95TPR: number }
interface Results { variants?: { outliers: string; accuracy?: number; rows?: ResultsRow[]; extra_rows?: ResultsRow[] }[] }

async function need(read: RunReader, path: string, what: string): Promise<Uint8Array> {
  const b = await read(path);
  if (!b) throw new Error(`the run folder has no ${path} (${what}): pick the folder of a finished \`goe run\` / \`goe experiment\``);
  return b;
}

function json<T>(bytes: Uint8Array, path: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Opens a run folder; `variant` picks the fine-tuned model (default: the generated-outlier one). */
export async function openRun(read: RunReader, variant?: string): Promise<DemoRun> {
  const config = json<RunConfig>(await need(read, 'config.json', "the run's settings"), 'config.json');
  const resultsBytes = await read('results.json');
  const results = resultsBytes ? json<Results>(resultsBytes, 'results.json') : { variants: [] };
  if (config.model?.kind !== 'wrn') throw new Error(`the demo runs image classifiers (WideResNet); this run's model is ${JSON.stringify(config.model?.kind)}`);
  const variants = (results.variants ?? []).map((v) => v.outliers);
  const chosen = variant ?? (variants.includes('generated') ? 'generated' : variants[variants.length - 1] ?? 'none');
  const modelPath = (await read(`${chosen}/model.safetensors`)) ? `${chosen}/model.safetensors` : 'baseline/model.safetensors';
  const modelBytes = await need(read, modelPath, `the ${chosen} classifier's weights`);
  const st = parseSafetensors(modelBytes, { source: modelPath });
  const fc = st.tensors.get('fc.bias');
  const conv1 = st.tensors.get('conv1.weight');
  if (!fc || !conv1) throw new Error(`${modelPath} has no fc.bias / conv1.weight: not a WideResNet state dict`);
  const numClasses = fc.shape[0]!;
  const channels = conv1.shape[1]!;
  const m = config.model;
  const classifier = new WideResNet(numClasses, { depth: m.depth, widenFactor: m.widenFactor, dropRate: m.dropRate ?? 0, inChannels: channels, pooling: m.pooling });
  loadModelFromSafetensors(classifier, modelBytes, true, modelPath);
  classifier.eval();

  const isMnist = config.data?.kind === 'mnist';
  const size = isMnist ? 28 : 32;
  const norm = config.normalize;
  const mean = norm === true ? CIFAR_MEAN : norm && typeof norm === 'object' ? norm.mean : new Array<number>(channels).fill(0);
  const std = norm === true ? CIFAR_STD : norm && typeof norm === 'object' ? norm.std : new Array<number>(channels).fill(1);
  const classes = isMnist && config.data?.variant === 'fashion-mnist' && numClasses === 10 ? FASHION_MNIST_CLASSES
    : config.data?.kind === 'cifar10' && numClasses === 10 ? CIFAR10_CLASSES
    : Array.from({ length: numClasses }, (_, i) => `class ${i}`);

  const big = (config.outliers ?? []).find((o) => o.kind === 'biggan');
  let generator: Generator | null = null;
  const gBytes = await read('generator/G.safetensors');
  if (big && gBytes) {
    const t = big.train ?? {};
    generator = new Generator({ nClasses: numClasses, ch: t.ch, outChannels: channels, bottomWidth: t.bottomWidth ?? size / 8, upsamples: t.upsamples ?? 3 });
    loadModelFromSafetensors(generator, gBytes, true, 'generator/G.safetensors');
  }

  const report = (results.variants ?? []).find((v) => v.outliers === chosen);
  const thresholds = await readThresholds(read, chosen, [...(report?.rows ?? []), ...(report?.extra_rows ?? [])]);
  return {
    name: config.name ?? 'run', variant: chosen, variants, description: config.description ?? '', accuracy: report?.accuracy ?? null,
    classes, channels, size, mean, std, classifier, generator, generatorBytes: generator ? gBytes : null,
    latent: { scale: big?.latent ?? 'variance', mode: big?.sampleMode ?? 'eval', sigma2: big?.sigma2 ?? 1 },
    thresholds,
    dispose() {
      classifier.dispose?.();
      generator?.dispose?.();
    },
  };
}

async function readThresholds(read: RunReader, variant: string, rows: ResultsRow[]): Promise<Threshold[]> {
  const npz = await read(`${variant}/scores.npz`);
  const manifestBytes = await read(`${variant}/scores.npz.json`);
  if (!npz || !manifestBytes) return [];
  const manifest = json<{ detectors: string[]; in: { key: string }; ood: { name: string; key: string }[] }>(manifestBytes, `${variant}/scores.npz.json`);
  const files = unzipSync(npz);
  const arr = (key: string): Float64Array | null => {
    const f = files[`${key}.npy`];
    return f ? parseNpyScores(f, `${variant}/scores.npz:${key}`) : null;
  };
  const out: Threshold[] = [];
  for (const detector of manifest.detectors) {
    const inScores = arr(`${manifest.in.key}__${detector}`);
    if (!inScores) continue;
    for (const set of manifest.ood) {
      const ood = arr(`${set.key}__${detector}`);
      if (!ood) continue;
      const { threshold, fpr } = thresholdAtTpr(inScores, ood, 0.95);
      const row = rows.find((r) => r.detector === detector && r.outlier_set === set.name);
      out.push({ detector, outlierSet: set.name, threshold, fpr, reportFpr: row ? row.FPR95TPR : null });
    }
  }
  return out;
}

/**
 * The report's operating point (fprAtTpr over tie groups, OOD positive): sweeping distinct scores
 * from high to low, the first score t where #{ood >= t} >= tpr * nOod; returns t and #{in >= t} / nIn.
 */
export function thresholdAtTpr(inScores: ArrayLike<number>, oodScores: ArrayLike<number>, tpr: number): { threshold: number; fpr: number } {
  const ood = Float64Array.from(oodScores).sort().reverse();
  const ins = Float64Array.from(inScores).sort().reverse();
  let i = 0;
  let j = 0;
  while (i < ood.length || j < ins.length) {
    const v = Math.max(i < ood.length ? ood[i]! : -Infinity, j < ins.length ? ins[j]! : -Infinity);
    while (i < ood.length && ood[i] === v) i++;
    while (j < ins.length && ins[j] === v) j++;
    if (i / ood.length >= tpr) return { threshold: v, fpr: j / ins.length };
  }
  return { threshold: -Infinity, fpr: 1 };
}

export interface Classification {
  logits: number[];
  probs: number[];
  cls: number;
  /** Outlier scores (higher = more OOD): MSP = -max softmax, Energy = -logsumexp(logits). */
  scores: { MSP: number; Energy: number };
}

/** Classifies one image: `pixels` uint8 [C, size, size] (channel-major), 0-255. */
export async function classify(run: DemoRun, pixels: Uint8Array): Promise<Classification> {
  const { channels: C, size: S } = run;
  if (pixels.length !== C * S * S) throw new Error(`the image must be ${C}x${S}x${S} bytes, got ${pixels.length}`);
  const x = new Float32Array(C * S * S);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < S * S; i++) x[c * S * S + i] = (pixels[c * S * S + i]! / 255 - run.mean[c]!) / run.std[c]!;
  }
  const [logits, msp, energy] = noGrad(() => scope(() => {
    const z = run.classifier.forward(tensor(x, [1, C, S, S]));
    return [z, mspScore(z), energyScore(z)] as const;
  }));
  try {
    const l = Array.from(await logits.data());
    const m = Math.max(...l);
    const e = l.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    const probs = e.map((v) => v / s);
    return { logits: l, probs, cls: l.indexOf(m), scores: { MSP: (await msp.data())[0]!, Energy: (await energy.data())[0]! } };
  } finally {
    for (const t of [logits, msp, energy]) t.dispose();
  }
}

/**
 * n images from G at latent number `sigma2` (read as the run read it: its `latent.scale`), z from
 * the seeded GPU generator, classes 0, 1, 2, ... in turn; uint8 [n, C, size, size] as the run
 * saved its outliers (sample.py's conversion).
 */
export async function sampleGenerator(run: DemoRun, sigma2: number, n: number, seed: number): Promise<Uint8Array> {
  const G = run.generator;
  if (!G) throw new Error('this run has no generator (generator/G.safetensors and a biggan outlier entry in config.json)');
  if (!(sigma2 >= 0) || !Number.isFinite(sigma2)) throw new Error(`sigma^2 must be a finite number >= 0, got ${sigma2}`);
  const std = run.latent.scale === 'std' ? sigma2 : Math.sqrt(sigma2); // src/goe/samplers/latent.ts latentStd
  // In train mode every forward advances the spectral norms' power iteration (u) and the BatchNorm
  // running statistics: start each sampling from the saved state, so a slider position and seed
  // always give the same images (and the page equals Node's, whatever was sampled before).
  if (run.generatorBytes) loadModelFromSafetensors(G, run.generatorBytes, true, 'generator/G.safetensors');
  if (run.latent.mode === 'train') G.train();
  else G.eval();
  const y = Int32Array.from({ length: n }, (_, i) => i % G.nClasses);
  const img: Tensor = noGrad(() => scope(() => G.forward(randn([n, G.dimZ], { seed, std }), tensor(y, [n], 'i32'))));
  try {
    return toUint8((await img.data()) as Float32Array);
  } finally {
    img.dispose();
  }
}
