/**
 * ViT-B/16 and ResNet-101 (issue 16, item 5) on the engine beside PyTorch on the CPU (Debian's
 * /usr/bin/python3, torch 1.13, float32, the committed peer bench/vit_resnet_torch.py, the same
 * thread count), run back to back per case so a shared machine slows both alike. On the lent GPU
 * (bench/gpu-run.sh vit): --python=python3 --torch-device=cuda, PyTorch fp32 with TF32 off.
 *
 *   node bench/vit_resnet.ts [--json] [--cases=vit_fwd1,vit_fwd8,vit_train,resnet101_fwd1]
 *                            [--train-batch=N] [--steps=N] [--threads=N] [--no-torch]
 *                            [--torch-cases=vit_fwd1,resnet101_fwd1] [--torch-steps=N]
 *                            [--python=/usr/bin/python3] [--torch-device=cpu|cuda] [--torch-warmup=N]
 * (values after '=': bench/harness.ts's parser reads `--cases X` as a flag, refused below)
 *
 * Cases (224x224 inputs, random weights and data; the shapes are the real ones):
 *   vit_fwd1 / vit_fwd8   ViT-B/16 eval forward at batch 1 / 8, no grad
 *   vit_train             ViT-B/16 training step: forward, cross-entropy, backward, plain SGD
 *                         (lr 0.001, the paper's fine-tuning), batch --train-batch (default 2)
 *   resnet101_fwd1        ResNet-101 eval forward at batch 1, no grad
 *   resnet101_train       ResNet-101 training step (BatchNorm in training mode), batch --train-batch
 * Each case runs one warm-up (pipelines compiled, buffers pooled) then --steps timed runs (default 2);
 * a run is timed from its first op until its result is read back. Medians are reported, with
 * images per second and ours / torch as a speed ratio (torch ms / our ms: above 1 we are faster).
 *
 * Debian's torch 1.13 does its matrix products through the reference BLAS (BLAS_INFO=generic,
 * libblas3; no OpenBLAS here), about 0.3 GFLOP/s, while its convolutions use oneDNN: a ViT-B/16
 * forward takes PyTorch ~2 minutes here, so by default PyTorch runs only --torch-cases
 * (vit_fwd1, resnet101_fwd1), once each (--torch-steps 1, no warm-up for the ViT), and every
 * peer line reports its BLAS rate so the ratio can be read for what it is.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, runtime, tensor, scope, noGrad, backward, crossEntropy, SGD, manualSeed, type Tensor } from '../src/engine/index.ts';
import { VisionTransformer, VIT_PRESETS, resnet101, type ResNet } from '../src/models/index.ts';
import { parseArgs, median } from './harness.ts';

const { flags, values } = parseArgs(process.argv.slice(2));
const VALUED = ['cases', 'train-batch', 'steps', 'threads', 'torch-cases', 'torch-steps', 'python', 'torch-device', 'torch-warmup'];
for (const name of VALUED) {
  if (flags.has(name)) {
    process.stderr.write(`bench/vit_resnet.ts: --${name} takes its value after '=' (--${name}=...)\n`);
    process.exit(2);
  }
}
const json = flags.has('json');
const out = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
const threads = Number(values.get('threads') ?? availableParallelism());
const cases = (values.get('cases') ?? 'vit_fwd1,vit_fwd8,vit_train,resnet101_fwd1').split(',').filter(Boolean);
const trainBatch = Number(values.get('train-batch') ?? 2);
const steps = Number(values.get('steps') ?? 2);
const torchCases = new Set((values.get('torch-cases') ?? 'vit_fwd1,resnet101_fwd1').split(',').filter(Boolean));
const torchSteps = Number(values.get('torch-steps') ?? 1);
const python = values.get('python') ?? '/usr/bin/python3';
const torchDevice = values.get('torch-device') ?? 'cpu';
const torchWarmup = values.get('torch-warmup');

await init();
manualSeed(16);
const dev = runtime().device;
out(`${dev.describe()}\nthreads (PyTorch): ${threads}; the machine is shared: medians, ours and PyTorch back to back per case`);

function randomInput(batch: number): Tensor {
  const n = batch * 3 * 224 * 224;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.61) * 0.9;
  return tensor(x, [batch, 3, 224, 224]);
}

function torchPeer(name: string, c: string, batch: number): { ms: number[]; blasGflops: number } | null {
  if (flags.has('no-torch') || !torchCases.has(name)) return null;
  const script = join(dirname(fileURLToPath(import.meta.url)), 'vit_resnet_torch.py');
  // the reference BLAS makes a CPU ViT run minutes long: no warm-up there unless asked
  const warmup = torchWarmup !== undefined ? Number(torchWarmup) : c.startsWith('vit') && torchDevice === 'cpu' ? 0 : 1;
  const r = spawnSync(python, [script], { input: JSON.stringify({ case: c, batch, steps: torchSteps, warmup, threads, device: torchDevice }), encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) {
    out(`torch peer failed for ${c}: ${r.stderr.trim().split('\n').slice(-1)[0]}`);
    return null;
  }
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number[]; blas_gflops: number };
  return { ms: j.ms, blasGflops: j.blas_gflops };
}

interface Row {
  case: string;
  batch: number;
  ms: number;
  msAll: number[];
  imagesPerS: number;
  torchMs: number | null;
  torchMsAll: number[] | null;
  torchBlasGflops: number | null;
  ratio: number | null;
}

async function time(run: () => Promise<void>): Promise<number[]> {
  await run(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await run();
    ms.push(performance.now() - t0);
  }
  return ms;
}

const rows: Row[] = [];
let vit: VisionTransformer | null = null;
let res: ResNet | null = null;
for (const c of cases) {
  const batch = c === 'vit_fwd8' ? 8 : c.endsWith('_train') ? trainBatch : 1;
  let run: () => Promise<void>;
  let opt: SGD | null = null;
  let m: VisionTransformer | ResNet;
  if (c.startsWith('vit')) m = vit ??= new VisionTransformer({ ...VIT_PRESETS.vit_b_16 });
  else if (c.startsWith('resnet101')) m = res ??= resnet101();
  else {
    out(`unknown case ${c}`);
    continue;
  }
  const model = m;
  const x = randomInput(batch);
  if (c.endsWith('_train')) {
    model.train();
    opt = new SGD(model.parameters(), { lr: 0.001 });
    const o = opt;
    const y = tensor(Int32Array.from({ length: batch }, (_, i) => (i * 37) % 1000), [batch]);
    run = async () => {
      const loss = scope(() => {
        o.zeroGrad();
        const l = crossEntropy(model.forward(x), y);
        backward(l);
        o.step();
        return l;
      });
      await loss.data();
      loss.dispose();
    };
  } else {
    model.eval();
    run = async () => {
      const logits = noGrad(() => model.forward(x));
      await logits.data();
      logits.dispose();
    };
  }
  const ms = await time(run);
  opt?.dispose();
  x.dispose();
  const peer = torchPeer(c, c.replace(/\d+$/, ''), batch);
  const torchMs = peer?.ms ?? null;
  const row: Row = {
    case: c,
    batch,
    ms: median(ms),
    msAll: ms,
    imagesPerS: (1000 * batch) / median(ms),
    torchMs: torchMs ? median(torchMs) : null,
    torchMsAll: torchMs,
    torchBlasGflops: peer?.blasGflops ?? null,
    ratio: torchMs ? median(torchMs) / median(ms) : null,
  };
  rows.push(row);
  out(
    `${c.padEnd(16)} batch ${String(batch).padStart(2)}  ours ${(row.ms / 1000).toFixed(2)} s (${row.imagesPerS.toFixed(2)} img/s)` +
      (row.torchMs !== null ? `  torch ${(row.torchMs / 1000).toFixed(2)} s  ratio ${row.ratio!.toFixed(2)}  (torch BLAS ${row.torchBlasGflops!.toFixed(2)} GFLOP/s)` : ''),
  );
}
vit?.dispose();
res?.dispose();
if (json) process.stdout.write(JSON.stringify({ device: dev.describe(), threads, steps, rows }) + '\n');
