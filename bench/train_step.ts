/**
 * Training steps end to end (issue 19): forward, backward and the optimizer update of the models
 * this project trains, each beside PyTorch (Debian's /usr/bin/python3, torch 1.13, the committed
 * peer bench/train_step_torch.py, the same thread count) in the same run, so a noisy machine
 * slows both alike.
 *
 *   node bench/train_step.ts [--json] [--models wrn40,wrn10,biggan,gru,lm|vit,resnet101,biggan128] [--batch N]
 *                            [--steps N] [--threads N] [--no-torch] [--caps portable|minimal] [--profile]
 *                            [--python /usr/bin/python3] [--torch-device cpu|cuda] [--torch-steps N] [--torch-warmup N]
 *
 * Models (the paper's configurations; data is random, its shapes are the real ones):
 *   wrn40   WRN-40-2, CIFAR 3x32x32, batch 128 (`--batch` for quick runs), SGD nesterov wd 5e-4, dropout 0.3
 *   wrn10   the fmnist classifier: WRN-10-1, 1x28x28, global pooling, batch 128, SGD momentum
 *   biggan  the fmnist BigGAN iteration: ch 8, 7x7 -> 28x28 grey, 10 classes, batch 32, 2 D steps + 1 G step, Adam
 *   gru     the newsgroups GRU classifier: vocabulary 30,000, embedding 50, GRU 128 x 2, 20 classes, batch 32, 100 tokens, Adam
 *   lm      word_language_model's Transformer: vocabulary 33,278 (WikiText-2's), emsize/nhid 200, 2 layers, 2 heads,
 *           bptt 35, batch 20, SGD lr 20, gradients clipped to 0.25
 * Opt-in (issue 16, item 5; not in the default list: seconds to minutes a step on a software adapter):
 *   vit        ViT-B/16 (torchvision's vit_b_16, VIT_PRESETS.vit_b_16) at 224x224, forward, cross-entropy,
 *              backward, plain SGD lr 0.001 (the paper's fine-tuning, IMAGENET_RECIPE.lr), batch 2 here
 *   resnet101  torchvision's ResNet-101, BatchNorm in training mode, the same SGD, batch 2 here
 *   biggan128  BigGAN-deep-128 (the imagenet experiment's generator, src/models/biggan-deep.ts, random
 *              weights after the converter's power iteration, W / sigma frozen as the experiment
 *              samples): one batch of images at the recipe's z std (sigma^2 = 2 read as 'std') and
 *              truncation 1, eval mode, no grad, all pixels read back; batch 2 here. Images/s too.
 *   These three take one warm-up step (the others two), and the PyTorch peer runs torchvision's
 *   vit_b_16 / resnet101 (random weights) and bench/biggan_deep_torch.py's model. Debian's CPU
 *   torch does its matrix products through the reference BLAS (BLAS_INFO=generic, 0.1-4 GFLOP/s here),
 *   so its ViT step takes a minute or more: on the CPU its vit peer runs one step without warm-up
 *   unless --torch-steps / --torch-warmup say otherwise, and the row prints the peer's BLAS rate.
 *
 * Reported per model (medians over the timed steps):
 *   wall       one step from its first op until the loss is read back (the step's whole cost);
 *   host       CPU time of the JavaScript thread while it records the step (encode and submit,
 *              process.threadCpuUsage over the synchronous part: waits on the device are excluded
 *              by construction, and the adapter's worker threads, which share the CPU on a
 *              software adapter, are not counted); the mean over the timed steps, not the median
 *              (thread CPU time comes in 4 ms ticks on this VM);
 *   hostWall   the same part's wall time (includes being descheduled while the adapter runs);
 *   record     host CPU per step with queue.submit made a no-op (nothing executes; the median of
 *              7 rounds): on a software adapter the measure of the recording itself, since there
 *              the adapter's threads take the same cores during real steps and inflate `host`;
 *   dispatches kernel dispatches per step, and host microseconds per dispatch;
 *   torch      PyTorch's step on the CPU, and ours / torch as a speed ratio (torch ms / our ms).
 * `--caps portable` runs the kernels a GPU runs (no SIMD-8 product, src/engine/caps.ts), so the host
 * cost of the GPU's plan (its dispatch count) can be measured on the software adapter;
 * `minimal` also takes subgroups away and caps workgroups at 256 invocations.
 * On a GPU (bench/gpu-run.sh): `--python python3 --torch-device cuda` runs the peer on that GPU,
 * fp32 with TF32 off.
 * `--profile` adds one profiled step per model: GPU time per kernel from timestamp queries
 * (Device.startKernelProfile; the adapter needs 'timestamp-query') in `kernels`, and PyTorch's
 * self CPU time per op (torch.profiler) in `torchOps`, the largest first.
 * Every row carries the plan kinds of its convolutions and products are in the engine's logs;
 * the adapter line says which kernels could run (caps).
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  init, runtime, tensor, scope, noGrad, randn, backward, crossEntropy, nllLoss, clipGradNorm, SGD, Adam, describeCaps, manualSeed, type Tensor, type KernelTime,
} from '../src/engine/index.ts';
import { WideResNet, GRUClassifier, TransformerModel, BigGANTrainer, VisionTransformer, VIT_PRESETS, resnet101, BigGANDeep } from '../src/models/index.ts';
import { IMAGENET_RECIPE } from '../src/goe/experiments/imagenet.ts';
import { latentStd } from '../src/goe/samplers/latent.ts';
import { parseArgs } from 'node:util';
import { median } from './harness.ts';

interface StepModel {
  name: string;
  config: string;
  /** Records one training step; returns the loss (not awaited). */
  step: () => Tensor;
  /** What the PyTorch peer builds. */
  peer: Record<string, unknown>;
  steps: number;
  /** Untimed steps first (pipelines compiled, pools filled); 2 unless set. */
  warmup?: number;
  /** The PyTorch peer's warm-up and timed steps when not the same as ours (--torch-* override). */
  peerWarmup?: number;
  peerSteps?: number;
  /** Images per step, for an images/s figure (the 224 px and sampling rows). */
  images?: number;
  /** Awaits the step's result back on the host: loss.item() unless set (sampling reads every pixel). */
  read?: (t: Tensor) => Promise<unknown>;
  /** Frees the model's weights once its row is done (the large models run one after another). */
  dispose?: () => void;
}

interface Result {
  model: string;
  config: string;
  batch: number;
  steps: number;
  wallMs: number;
  wallMsAll: number[];
  hostMs: number;
  hostWallMs: number;
  /** Host CPU per step with nothing executing (recordOnly): the recording's own cost. */
  hostRecordMs: number;
  dispatches: number;
  hostUsPerDispatch: number;
  torchMs: number | null;
  torchMsAll: number[] | null;
  /** Where the PyTorch peer ran ('cpu', or the GPU's name). */
  torchDevice?: string;
  /** torch ms / our ms: above 1 we are faster. */
  ratio: number | null;
  /** Images per second, ours and PyTorch's (rows with `images`). */
  imagesPerS?: number;
  torchImagesPerS?: number | null;
  /** PyTorch's matrix-product rate (GFLOP/s of one [197, 768] x [768, 3072] product) and BLAS (rows that probe it). */
  torchBlasGflops?: number;
  torchBlas?: string;
  threads: number;
  /** The kernel plan: 'full' (what this adapter allows) or the --caps restriction. */
  caps: string;
  /** With --profile: GPU ms per kernel in one step, and PyTorch's self CPU ms per op. */
  kernels?: KernelTime[];
  torchOps?: KernelTime[];
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { json: { type: 'boolean' }, 'no-torch': { type: 'boolean' }, caps: { type: 'string' }, profile: { type: 'boolean' }, python: { type: 'string' }, 'torch-device': { type: 'string' }, 'torch-steps': { type: 'string' }, 'torch-warmup': { type: 'string' }, models: { type: 'string' }, batch: { type: 'string' }, steps: { type: 'string' }, threads: { type: 'string' } },
});
const json = values.json ?? false;
const noTorch = values['no-torch'] ?? false;
const out = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
const threads = Number(values.threads ?? availableParallelism());
const wanted = (values.models ?? 'wrn40,wrn10,biggan,gru,lm').split(',').filter(Boolean);
const batchArg = values.batch;
const profile = values.profile ?? false;
const python = values.python ?? '/usr/bin/python3';
const torchDevice = values['torch-device'] ?? 'cpu';
const stepsArg = values.steps;
const torchStepsArg = values['torch-steps'];
const torchWarmupArg = values['torch-warmup'];

// the models by name (the builders are hoisted functions, called only after init); names are
// checked before the adapter starts, so a typo costs no model construction
const builders: Record<string, () => StepModel> = {
  wrn40: () => wrn('wrn40'), wrn10: () => wrn('wrn10'), biggan, gru, lm,
  vit: () => imagenetClassifier('vit'), resnet101: () => imagenetClassifier('resnet101'), biggan128,
};
for (const name of wanted) {
  if (!Object.hasOwn(builders, name)) {
    process.stderr.write(`unknown model '${name}': expected ${Object.keys(builders).join(', ')}\n`);
    process.exit(2);
  }
}

await init();
manualSeed(19);
const dev = runtime().device;
const CAPS_ARG: Record<string, Parameters<typeof dev.restrictCaps>[0]> = { portable: { simd8: false }, minimal: { subgroups: false, simd8: false, maxInvocations: 256 } };
if (values.caps !== undefined) {
  if (!(values.caps in CAPS_ARG)) {
    process.stderr.write(`--caps ${values.caps}: expected portable or minimal\n`);
    process.exit(2);
  }
  dev.restrictCaps(CAPS_ARG[values.caps]);
}
out(`${dev.describe()}\ncaps: ${describeCaps(dev.caps)}\nthreads (PyTorch): ${threads}; the machine is shared: medians, ours and PyTorch run back to back per model`);

function rand(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * Math.random();
  return a;
}
function randInt(n: number, k: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(Math.random() * k);
  return a;
}

function wrn(name: 'wrn40' | 'wrn10'): StepModel {
  const deep = name === 'wrn40';
  const B = Number(batchArg ?? 128);
  const [C, H] = deep ? [3, 32] : [1, 28];
  const m = new WideResNet(10, deep ? { depth: 40, widenFactor: 2, dropRate: 0.3 } : { depth: 10, widenFactor: 1, dropRate: 0, inChannels: 1, pooling: 'global' });
  m.train();
  const opt = deep
    ? new SGD(m.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 })
    : new SGD(m.parameters(), { lr: 0.2, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const x = rand(B * C * H * H);
  const y = randInt(B, 10);
  return {
    name,
    config: deep ? `WRN-40-2 3x32x32 batch ${B}` : `WRN-10-1 1x28x28 batch ${B}`,
    steps: Number(stepsArg ?? (deep && B >= 64 ? 3 : 5)),
    peer: { model: 'wrn', depth: deep ? 40 : 10, widen: deep ? 2 : 1, drop: deep ? 0.3 : 0, channels: C, size: H, batch: B, lr: deep ? 0.1 : 0.2 },
    step: () => scope(() => {
      opt.zeroGrad();
      const loss = crossEntropy(m.forward(tensor(x, [B, C, H, H])), tensor(y, [B], 'i32'));
      backward(loss);
      opt.step();
      return loss;
    }),
  };
}

function biggan(): StepModel {
  const B = Number(batchArg ?? 32);
  const dSteps = 2;
  const tr = BigGANTrainer.create({ nClasses: 10, ch: 8, bottomWidth: 7, upsamples: 2, outChannels: 1 }, {}, { batchSize: B, numDSteps: dSteps, ema: false, gLr: 5e-4, dLr: 5e-4, seed: 19 });
  const x = rand(B * dSteps * 784);
  const y = randInt(B * dSteps, 10);
  return {
    name: 'biggan',
    config: `BigGAN G ch 8 7x7->28x28x1, D, batch ${B}, ${dSteps} D steps + 1 G step`,
    steps: Number(stepsArg ?? 5),
    peer: { model: 'biggan', batch: B, dSteps, ch: 8 },
    step: () => scope(() => {
      const l = tr.step(tensor(x, [B * dSteps, 1, 28, 28]), tensor(y, [B * dSteps], 'i32'));
      for (const [k, v] of Object.entries(l)) if (k !== 'g') (v as Tensor).dispose();
      return l.g as Tensor;
    }),
  };
}

function gru(): StepModel {
  const B = Number(batchArg ?? 32);
  const T = 100;
  const V = 30000;
  const m = new GRUClassifier(20, V, { embeddingDim: 50, hiddenSize: 128, numLayers: 2 });
  m.train();
  const opt = new Adam(m.parameters(), { lr: 1e-3 });
  const ids = randInt(B * T, V);
  const y = randInt(B, 20);
  return {
    name: 'gru',
    config: `GRU classifier vocab ${V} emb 50 GRU 128x2, batch ${B} x ${T} tokens`,
    steps: Number(stepsArg ?? 5),
    peer: { model: 'gru', batch: B, T, vocab: V },
    step: () => scope(() => {
      opt.zeroGrad();
      const loss = crossEntropy(m.forward(tensor(ids, [B, T], 'i32')), tensor(y, [B], 'i32'));
      backward(loss);
      opt.step();
      return loss;
    }),
  };
}

function lm(): StepModel {
  const B = Number(batchArg ?? 20);
  const S = 35;
  const V = 33278;
  const m = new TransformerModel(V, { ninp: 200, nhid: 200, nlayers: 2, nhead: 2, dropout: 0.2 });
  m.train();
  const opt = new SGD(m.parameters(), { lr: 20 });
  const src = randInt(S * B, V);
  const tgt = randInt(S * B, V);
  return {
    name: 'lm',
    config: `word LM Transformer vocab ${V} 200/200 2 layers 2 heads, bptt ${S} batch ${B}`,
    steps: Number(stepsArg ?? 5),
    peer: { model: 'lm', batch: B, S, vocab: V },
    step: () => scope(() => {
      opt.zeroGrad();
      const out = m.forward(tensor(src, [S, B], 'i32'), { mask: true });
      const loss = nllLoss(out.reshape([S * B, V]), tensor(tgt, [S * B], 'i32'));
      backward(loss);
      clipGradNorm(m.parameters(), 0.25).dispose();
      opt.step();
      return loss;
    }),
  };
}

/** Torch's ViT on the CPU goes through the reference BLAS: one step, no warm-up, unless asked. */
const slowTorchVit = torchDevice === 'cpu';

/**
 * ViT-B/16 or ResNet-101 at 224x224 (the constructors of bench/vit_resnet.ts), one fine-tuning step:
 * forward, cross-entropy, backward, plain SGD at the imagenet recipe's lr (0.001).
 */
function imagenetClassifier(name: 'vit' | 'resnet101'): StepModel {
  const B = Number(batchArg ?? 2);
  const m = name === 'vit' ? new VisionTransformer({ ...VIT_PRESETS.vit_b_16 }) : resnet101();
  m.train();
  const opt = new SGD(m.parameters(), { lr: IMAGENET_RECIPE.lr });
  // uploaded once, as the peer's x stays on its device (38 MB a step at the GPU run's batch 64)
  const x = tensor(rand(B * 3 * 224 * 224), [B, 3, 224, 224]);
  const y = tensor(randInt(B, 1000), [B], 'i32');
  return {
    name,
    config: `${name === 'vit' ? 'ViT-B/16' : 'ResNet-101 (BatchNorm train mode)'} 3x224x224 batch ${B}, CE, SGD lr ${IMAGENET_RECIPE.lr}`,
    steps: Number(stepsArg ?? 2),
    warmup: 1,
    images: B,
    ...(name === 'vit' && slowTorchVit ? { peerWarmup: 0, peerSteps: 1 } : {}),
    peer: { model: name, batch: B, lr: IMAGENET_RECIPE.lr },
    step: () => scope(() => {
      opt.zeroGrad();
      const loss = crossEntropy(m.forward(x), y);
      backward(loss);
      opt.step();
      return loss;
    }),
    dispose: () => {
      for (const d of [opt, m, x, y]) d.dispose();
    },
  };
}

/**
 * BigGAN-deep-128 sampling as the imagenet experiment's generated outliers are made
 * (sampleGenerated in src/goe/experiments/imagenet-outliers.ts): eval mode, W / sigma frozen,
 * z ~ N(0, std^2) at the recipe's sigma^2 and truncation, classes uniform, no grad; a step is one
 * batch, read back whole (the experiment writes every pixel to PNG). Nothing is read back while
 * the batch is recorded, so the record-only column holds for it as for the training steps.
 */
function biggan128(): StepModel {
  const B = Number(batchArg ?? 2);
  const std = latentStd(IMAGENET_RECIPE.sigma2, IMAGENET_RECIPE.latent);
  const truncation = IMAGENET_RECIPE.truncation;
  const G = new BigGANDeep('biggan-deep-128');
  G.settleSpectralNorms();
  G.eval();
  G.freezeSpectralNorms();
  const classes = randInt(B, G.numClasses);
  let offset = 0;
  return {
    name: 'biggan128',
    config: `BigGAN-deep-128 sampling, z std ${std} truncation ${truncation}, no grad, batch ${B}`,
    steps: Number(stepsArg ?? 2),
    warmup: 1,
    images: B,
    peer: { model: 'biggan128', batch: B, std, truncation },
    read: (t) => t.data(),
    step: () => noGrad(() => scope(() => {
      const z = randn([B, G.dimZ], { seed: 19, offset, std });
      offset += Math.ceil((B * G.dimZ) / 4);
      return G.forward(z, tensor(classes, [B], 'i32'), truncation);
    })),
    dispose: () => G.dispose(),
  };
}

/** How a step's result is awaited on the host: the model's `read`, else loss.item(). */
function readBack(sm: StepModel): (t: Tensor) => Promise<unknown> {
  return sm.read ?? ((t: Tensor) => t.item());
}

function cpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

async function timeOurs(sm: StepModel): Promise<Omit<Result, 'torchMs' | 'torchMsAll' | 'ratio' | 'model' | 'config' | 'threads' | 'caps'>> {
  // two warm-up steps compile every pipeline and fill the pools and bind-group caches
  const read = readBack(sm);
  for (let i = 0; i < (sm.warmup ?? 2); i++) {
    const l = sm.step();
    await read(l);
    l.dispose();
  }
  const wall: number[] = [];
  const host: number[] = [];
  const hostWall: number[] = [];
  const disp: number[] = [];
  for (let i = 0; i < sm.steps; i++) {
    await dev.sync();
    const d0 = dev.stats.dispatches;
    const t0 = performance.now();
    const c0 = cpuMs();
    const loss = sm.step();
    dev.flush();
    const c1 = cpuMs();
    const t1 = performance.now();
    disp.push(dev.stats.dispatches - d0);
    await read(loss);
    wall.push(performance.now() - t0);
    host.push(c1 - c0);
    hostWall.push(t1 - t0);
    loss.dispose();
  }
  const dispatches = median(disp);
  // the mean, not the median: this VM charges thread CPU time in 4 ms ticks (a 1.5 ms busy loop
  // reads 0 or 4 ms), so one step's reading is quantised and only the sum over steps is accurate
  const hostMs = host.reduce((a, b) => a + b, 0) / host.length;
  const hostRecordMs = await recordOnly(sm, Math.max(sm.steps, 10));
  return { batch: Number(/batch (\d+)/.exec(sm.config)?.[1] ?? 0), steps: sm.steps, wallMs: median(wall), wallMsAll: wall, hostMs, hostWallMs: median(hostWall), hostRecordMs, dispatches, hostUsPerDispatch: (hostMs * 1000) / dispatches };
}

/**
 * Host CPU per step with nothing executing: queue.submit made a no-op, so the adapter's threads
 * (the CPU itself, on a software adapter) do not compete with the JavaScript thread being
 * measured, as a GPU would not. What the step's recording costs whatever the adapter (its own
 * submit calls excepted); the model's state is left as the last executed step made it. The median
 * of 7 rounds of ceil(steps / 2) steps after one uncounted round: a round with a major collection
 * in it reads up to 1.6x the others (bench/NOTES.md, session 9), which a single mean over the
 * steps carried, and the first round after executed steps read 1.1-1.4x the rest. Between steps
 * the event loop runs once (a 1 ms timer; the callbacks it runs count in the round), as a
 * training loop's await on its loss lets it run: without that Dawn never processes its events,
 * each submission's error-scope promises stay pending, and the heap grew 16 KB a step (flat with
 * the timer, as in real steps), each scavenge copying more (bench/NOTES.md, "Host cost per step,
 * session 10").
 */
const ROUNDS = 7;

async function recordOnly(sm: StepModel, steps: number): Promise<number> {
  await dev.sync();
  const queue = dev.gpu.queue;
  const submit = queue.submit;
  queue.submit = () => undefined;
  const per = Math.max(2, Math.ceil(steps / 2));
  const rounds: number[] = [];
  try {
    // round 0 is not counted: the executed steps' finalizers and collections land in it
    for (let r = 0; r <= ROUNDS; r++) {
      const c0 = cpuMs();
      for (let i = 0; i < per; i++) {
        const loss = sm.step();
        dev.flush();
        loss.dispose();
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      if (r > 0) rounds.push((cpuMs() - c0) / per);
    }
  } finally {
    queue.submit = submit;
  }
  await dev.sync();
  return median(rounds);
}

/** One more step with GPU time per kernel (--profile). */
async function profileOurs(sm: StepModel): Promise<KernelTime[]> {
  await dev.sync();
  dev.startKernelProfile();
  const loss = sm.step();
  await readBack(sm)(loss);
  loss.dispose();
  return dev.stopKernelProfile();
}

interface PeerResult {
  ms: number[];
  ops?: KernelTime[];
  device?: string;
  blas_gflops?: number;
  blas?: string;
}

function timeTorch(sm: StepModel): PeerResult | null {
  if (noTorch) return null;
  const script = join(dirname(fileURLToPath(import.meta.url)), 'train_step_torch.py');
  const steps = Number(torchStepsArg ?? sm.peerSteps ?? sm.steps);
  const warmup = Number(torchWarmupArg ?? sm.peerWarmup ?? 2);
  const r = spawnSync(python, [script], { input: JSON.stringify({ ...sm.peer, steps, warmup, threads, profile, device: torchDevice }), encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    out(`PyTorch peer failed for ${sm.name}: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerResult;
}

/** The largest entries of a profile, one line each, and the rest summed. */
function profileLines(title: string, times: KernelTime[], top = 12): string {
  const total = times.reduce((s, t) => s + t.ms, 0);
  const rest = times.slice(top).reduce((s, t) => s + t.ms, 0);
  const line = (ms: number, count: number | string, label: string) => `  ${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}% ${(count === '' ? '' : `${count}x`).padStart(7)}  ${label}`;
  return [`${title}: ${total.toFixed(1)} ms in all`, ...times.slice(0, top).map((t) => line(t.ms, t.count, t.label)), ...(times.length > top ? [line(rest, '', `(${times.length - top} more)`)] : [])].join('\n');
}

const results: Result[] = [];
out(`${'model'.padEnd(8)} ${'wall ms'.padStart(9)} ${'host ms'.padStart(8)} ${'hostwall'.padStart(9)} ${'record'.padStart(7)} ${'disp'.padStart(6)} ${'us/disp'.padStart(8)} ${'torch ms'.padStart(9)} ${'torch/ours'.padStart(10)}  config`);
for (const name of wanted) {
  const sm = builders[name]!();
  const ours = await timeOurs(sm);
  const kernels = profile ? await profileOurs(sm) : undefined;
  sm.dispose?.(); // before the peer: the large models' weights are not held while PyTorch runs
  const peer = timeTorch(sm);
  const torchMs = peer ? median(peer.ms) : null;
  const r: Result = { model: name, config: sm.config, ...ours, torchMs, torchMsAll: peer?.ms ?? null, ratio: torchMs ? torchMs / ours.wallMs : null, threads, caps: values.caps ?? 'full', kernels, torchOps: peer?.ops, torchDevice: peer?.device };
  if (sm.images !== undefined) {
    r.imagesPerS = (1000 * sm.images) / ours.wallMs;
    r.torchImagesPerS = torchMs ? (1000 * sm.images) / torchMs : null;
  }
  if (peer?.blas_gflops !== undefined) {
    r.torchBlasGflops = peer.blas_gflops;
    r.torchBlas = peer.blas;
  }
  results.push(r);
  if (json) process.stdout.write(JSON.stringify(r) + '\n');
  out(`${name.padEnd(8)} ${r.wallMs.toFixed(1).padStart(9)} ${r.hostMs.toFixed(1).padStart(8)} ${r.hostWallMs.toFixed(1).padStart(9)} ${r.hostRecordMs.toFixed(1).padStart(7)} ${String(r.dispatches).padStart(6)} ${r.hostUsPerDispatch.toFixed(1).padStart(8)} ${(torchMs?.toFixed(1) ?? '-').padStart(9)} ${(r.ratio?.toFixed(2) ?? '-').padStart(10)}  ${r.config}`);
  if (r.imagesPerS !== undefined) out(`${''.padEnd(8)} images/s: ours ${r.imagesPerS.toFixed(3)}, PyTorch ${r.torchImagesPerS?.toFixed(3) ?? '-'}`);
  if (r.torchBlasGflops !== undefined && torchDevice === 'cpu') {
    out(`${''.padEnd(8)} PyTorch's matrix products: BLAS ${r.torchBlas ?? '?'}, ${r.torchBlasGflops.toFixed(2)} GFLOP/s on ViT's [197, 768] x [768, 3072] product${r.torchBlas === 'generic' ? ' (the reference BLAS: the ratio is against an unoptimised PyTorch)' : ''}; ${peer!.ms.length} timed step(s)`);
  }
  if (kernels) out(profileLines(`  our kernels, one step (GPU time)`, kernels));
  if (peer?.ops) out(profileLines(`  PyTorch ops, one step (self ${torchDevice === 'cpu' ? 'CPU' : 'GPU'} time)`, peer.ops));
}
