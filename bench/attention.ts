/**
 * Attention benchmark: the fused attention kernels (ops/attention.ts) against the same
 * computation composed from our own unfused ops (matmul q k^T, scale, mask, softmax, matmul with
 * v, autograd for the backward), and optionally PyTorch (math attention: matmul + softmax +
 * matmul, fp32, TF32 off; CUDA when present, else CPU), on the shapes of the models:
 *   word-lm   batch 20, bptt 35, emsize 200, 2 heads (head dim 100), causal
 *   vit-b16   197 tokens, 12 heads of 64, batch 32 (2 on a software adapter)
 * each as forward ('fwd') and forward + backward ('fwdbwd').
 *
 *   node bench/attention.ts [--json] [--quick] [--wall] [--budget s] [--vit-batch=n] [--torch]
 *                           [--no-memory]
 *
 * Variants: 'fused' (the tiled forward: 16 query rows x 32-key tiles with register blocking),
 * 'fused-rows' (the rows forward: one thread per query row); both share the backward kernels.
 * Every row is validated first: the forward output on 48 sampled query rows against a float64
 * reference (fwdbwd rows validate their forward output; the gradients are covered by
 * test/engine/attention.test.ts). FLOPs: 4*B*H*Tq*Tk*D forward (both products, full square
 * even when causal), 2.5x that for the backward (FlashAttention's convention).
 *
 * Memory: after the timings, peak GPU pool growth of one forward + backward at growing sequence
 * lengths (B=1, H=4, D=64) for both: the fused version holds O(T*D) per head (q, k, v, o, lse and
 * the gradients), the composed one the T x T scores and probabilities (and their gradients).
 */
import {
  init, runtime, tensor, attention, matmul, mul, add, softmax, backward, scope, keep, type Tensor,
} from '../src/engine/index.ts';
import { Harness, parseArgs, compare, runTorchPeer, type Problem, type Variant, type Instance, type Row } from './harness.ts';

interface AttnProblem extends Problem {
  B: number;
  H: number;
  T: number;
  D: number;
  causal: boolean;
  pass: 'fwd' | 'fwdbwd';
}

function problems(vitBatch: number): AttnProblem[] {
  const out: AttnProblem[] = [];
  const add = (model: string, B: number, H: number, T: number, D: number, causal: boolean) => {
    const fwd = 4 * B * H * T * T * D;
    const io = 4 * B * H * T * D;
    for (const pass of ['fwd', 'fwdbwd'] as const) {
      out.push({
        name: `${model}-${pass}`,
        shape: `B${B} H${H} T${T} D${D}${causal ? ' causal' : ''}`,
        flops: pass === 'fwd' ? fwd : 3.5 * fwd,
        bytes: pass === 'fwd' ? 4 * io : 8 * io,
        B, H, T, D, causal, pass,
      });
    }
  };
  add('word-lm', 20, 2, 35, 100, true);
  add('vit-b16', vitBatch, 12, 197, 64, false);
  return out;
}

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

interface Data {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  g: Float32Array;
}
const dataCache = new Map<string, Data>();
function data(p: AttnProblem): Data {
  const key = `${p.B}-${p.H}-${p.T}-${p.D}`;
  let d = dataCache.get(key);
  if (!d) {
    const n = p.B * p.H * p.T * p.D;
    d = { q: rand(n, 1), k: rand(n, 2), v: rand(n, 3), g: rand(n, 4) };
    dataCache.set(key, d);
  }
  return d;
}

/** Sampled flat indices of 48 query rows (all D columns) and their float64 reference. */
function validator(p: AttnProblem, out: Float32Array): { maxRel: number; failure: string | null } {
  const { q, k, v } = data(p);
  const { B, H, T, D } = p;
  const rows: number[] = [];
  for (let r = 0; r < 48; r++) rows.push(Math.floor(((r * 7919) % 48) / 48 * B * H * T + r * 13) % (B * H * T));
  const ref = new Map<number, number>();
  const scale = 1 / Math.sqrt(D);
  for (const row of rows) {
    const bh = Math.floor(row / T);
    const i = row % T;
    const s = new Float64Array(T);
    let m = -Infinity;
    for (let j = 0; j < T; j++) {
      if (p.causal && j > i) continue;
      let a = 0;
      for (let d = 0; d < D; d++) a += q[row * D + d] * k[(bh * T + j) * D + d];
      s[j] = a * scale;
      m = Math.max(m, s[j]);
    }
    let l = 0;
    for (let j = 0; j < T; j++) if (!(p.causal && j > i)) l += Math.exp(s[j] - m);
    for (let d = 0; d < D; d++) {
      let o = 0;
      for (let j = 0; j < T; j++) if (!(p.causal && j > i)) o += (Math.exp(s[j] - m) / l) * v[(bh * T + j) * D + d];
      ref.set(row * D + d, o);
    }
  }
  const idx = [...ref.keys()];
  return compare(out, (i) => ref.get(i)!, idx, 1e-5, 1e-3);
}

type AttnFn = (q: Tensor, k: Tensor, v: Tensor, p: AttnProblem, mask: Tensor | null) => Tensor;

const fused: AttnFn = (q, k, v, p) => attention(q, k, v, { causal: p.causal });
/** The rows forward (one thread per query row), same backward. */
const fusedRows: AttnFn = (q, k, v, p) => attention(q, k, v, { causal: p.causal, forwardKernel: 'rows' });

/** softmax(q k^T * scale + causal mask) v from our unfused ops (the peer). */
const composed: AttnFn = (q, k, v, p, mask) => {
  const s = matmul(q, k, { transB: true });
  const sc = mul(s, 1 / Math.sqrt(p.D));
  s.dispose();
  const masked = mask ? add(sc, mask) : sc;
  if (masked !== sc) sc.dispose();
  const pr = softmax(masked, -1);
  masked.dispose();
  const o = matmul(pr, v);
  pr.dispose();
  return o;
};

function causalMask(T: number): Tensor {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e30;
  return tensor(m, [T, T]);
}

function variant(name: string, fn: AttnFn, peer: boolean): Variant<AttnProblem> {
  return {
    name,
    peer,
    async setup(p, copies) {
      const d = data(p);
      const shape = [p.B, p.H, p.T, p.D];
      const sets = Array.from({ length: copies }, () => {
        const t = [tensor(d.q, shape), tensor(d.k, shape), tensor(d.v, shape)];
        for (const x of t) x.requiresGrad = p.pass === 'fwdbwd';
        return t;
      });
      const g = tensor(d.g, shape);
      const mask = p.causal && fn === composed ? causalMask(p.T) : null;
      let out: Tensor | null = null;
      return {
        run(i) {
          out?.dispose();
          const [q, k, v] = sets[i];
          out = scope(() => {
            const o = fn(q, k, v, p, mask);
            if (p.pass === 'fwdbwd') {
              backward(o, g);
              for (const x of sets[i]) {
                x.grad?.dispose();
                x.grad = null;
              }
            }
            return keep(o);
          });
        },
        flush: () => runtime().device.flush(),
        done: () => runtime().device.sync(),
        output: () => out!.data() as Promise<Float32Array>,
        dispose() {
          out?.dispose();
          for (const s of sets) for (const x of s) x.dispose();
          g.dispose();
          mask?.dispose();
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------ memory

function peakBytes(fn: AttnFn, T: number): number {
  const pool = runtime().device.pool;
  const p: AttnProblem = { name: '', shape: '', flops: 0, bytes: 0, B: 1, H: 4, T, D: 64, causal: true, pass: 'fwdbwd' };
  const n = p.B * p.H * T * p.D;
  const shape = [p.B, p.H, T, p.D];
  const q = tensor(rand(n, 5), shape);
  const k = tensor(rand(n, 6), shape);
  const v = tensor(rand(n, 7), shape);
  const g = tensor(rand(n, 8), shape);
  const mask = fn === composed ? causalMask(T) : null;
  for (const x of [q, k, v]) x.requiresGrad = true;
  runtime().device.flush();
  pool.trim();
  const base = pool.stats().bytes;
  scope(() => {
    const o = fn(q, k, v, p, mask);
    backward(o, g);
  });
  const peak = pool.stats().bytes - base;
  for (const x of [q, k, v, g, mask]) {
    x?.grad?.dispose();
    x?.dispose();
  }
  return peak;
}

// ------------------------------------------------------------------------------ PyTorch peer

const TORCH_SCRIPT = String.raw`
import math
from torch_peer import torch, dev, problems, time_problem
torch.backends.cuda.matmul.allow_tf32 = False
def math_attn(q, k, v, causal):
    # the SDPA math path: explicit scores, softmax, product
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2], s.shape[-1], dtype=torch.bool, device=dev).triu(1), float('-inf'))
    return torch.softmax(s, -1) @ v
for p in problems():
    shape = (p['B'], p['H'], p['T'], p['D'])
    q, k, v = [torch.rand(shape, device=dev, requires_grad=p['pass'] == 'fwdbwd') for _ in range(3)]
    g = torch.rand(shape, device=dev)
    def run():
        o = math_attn(q, k, v, p['causal'])
        if p['pass'] == 'fwdbwd':
            o.backward(g)
            q.grad = k.grad = v.grad = None
    time_problem(p, run)
`;

function torchRows(ps: AttnProblem[], budget: number): Row[] {
  return runTorchPeer(TORCH_SCRIPT, ps, (p) => ({ B: p.B, H: p.H, T: p.T, D: p.D, causal: p.causal, pass: p.pass }), budget, 'torch-cuda', 'math attention, fp32');
}

// ------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const { flags, values } = parseArgs(process.argv.slice(2));
  await init();
  const dev = runtime().device;
  dev.poison = true; // unwritten outputs fail validation
  const budget = Number(values.get('budget') ?? (flags.has('quick') ? 0.5 : 1.5));
  const vitBatch = Number(values.get('vit-batch') ?? (dev.isSoftware ? 2 : 32));
  const h = new Harness({ json: flags.has('json'), wall: flags.has('wall'), budgetSeconds: budget, minReps: 2 });
  const log = flags.has('json') ? (s: string) => process.stderr.write(s + '\n') : (s: string) => process.stdout.write(s + '\n');
  h.header({ bench: 'attention', vitBatch });
  const ps = problems(vitBatch);
  const vs = [variant('fused', fused, false), variant('fused-rows', fusedRows, false), variant('composed', composed, true)];
  for (const p of ps) await h.run(p, vs, validator);
  if (flags.has('torch')) {
    for (const r of torchRows(ps, budget)) {
      h.rows.push(r);
      log(`${r.problem.padEnd(18)} ${r.shape.padEnd(30)} ${r.variant.padEnd(14)} ${r.ms!.toFixed(3).padStart(10)}  ${r.note}`);
      if (flags.has('json')) process.stdout.write(JSON.stringify(r) + '\n');
    }
  }
  log('');
  log('speed-up of fused over each peer (median ms ratio):');
  for (const p of ps) {
    const ours = h.rows.find((r) => r.problem === p.name && r.variant === 'fused' && r.status === 'ok');
    for (const r of h.rows.filter((x) => x.problem === p.name && x.peer && x.status === 'ok')) {
      if (ours) log(`  ${p.name.padEnd(16)} vs ${r.variant.padEnd(12)} ${(r.ms! / ours.ms!).toFixed(2)}x`);
    }
  }
  if (!flags.has('no-memory')) {
    // memory vs sequence length: fused is linear in T, composed quadratic
    dev.poison = false;
    const Ts = dev.isSoftware ? [128, 256, 512, 1024] : [256, 512, 1024, 2048, 4096];
    log('');
    log('peak GPU pool growth of one forward+backward (B=1, H=4, D=64, causal), MiB:');
    log(`  ${'T'.padStart(6)} ${'fused'.padStart(10)} ${'composed'.padStart(10)}`);
    const memRows: { T: number; fused: number; composed: number }[] = [];
    for (const T of Ts) {
      const f = peakBytes(fused, T) / 2 ** 20;
      const c = peakBytes(composed, T) / 2 ** 20;
      memRows.push({ T, fused: f, composed: c });
      log(`  ${String(T).padStart(6)} ${f.toFixed(2).padStart(10)} ${c.toFixed(2).padStart(10)}`);
      await dev.sync();
    }
    const a = memRows[0];
    const z = memRows[memRows.length - 1];
    log(`  T x${z.T / a.T}: fused memory x${(z.fused / a.fused).toFixed(1)}, composed x${(z.composed / a.composed).toFixed(1)}`);
    if (flags.has('json')) process.stdout.write(JSON.stringify({ memory: memRows }) + '\n');
  }
}

await main();
process.exit(0);
