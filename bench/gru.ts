/**
 * GRU benchmark: the fused GRU (ops/gru.ts: one GEMM for the input projections of all steps,
 * one fused dispatch per step for h W_hh^T + gates, forward and backward) against the same
 * computation composed from our own unfused ops per step (linear, narrow, add, sigmoid, tanh,
 * mul, sub, stack: ~15 dispatches per step), and optionally PyTorch's nn.GRU (cuDNN on CUDA,
 * fp32, else CPU) on the GRU classifier's shape:
 *   gru-clf   batch 32, length 100, input 128, hidden 128, 2 layers (the text OOD detector's GRU;
 *             its embedding width is taken as 128)
 * as forward ('fwd') and forward + backward ('fwdbwd').
 *
 *   node bench/gru.ts [--json] [--quick] [--wall] [--budget s] [--steps=T] [--torch]
 *
 * Every row is validated first: the output of the last layer for 4 batch rows against a float64
 * reference (fwdbwd rows validate their forward output; gradients are covered by
 * test/engine/gru.test.ts and the PyTorch golden). FLOPs: per layer and step 2*B*3H*(I + H)
 * forward; the backward twice that.
 */
import {
  init, runtime, tensor, gru, linear, narrow, select, stack, add, sub, mul, sigmoid, tanh, backward, scope, keep, type Tensor,
} from '../src/engine/index.ts';
import { Harness, parseArgs, compare, runTorchPeer, type Problem, type Variant, type Row } from './harness.ts';

interface GruProblem extends Problem {
  B: number;
  T: number;
  I: number;
  H: number;
  L: number;
  pass: 'fwd' | 'fwdbwd';
}

function problems(T: number): GruProblem[] {
  const B = 32, I = 128, H = 128, L = 2;
  const fwd = L * T * 2 * B * 3 * H * (I + H);
  return (['fwd', 'fwdbwd'] as const).map((pass) => ({
    name: `gru-clf-${pass}`,
    shape: `B${B} T${T} I${I} H${H} L${L}`,
    flops: pass === 'fwd' ? fwd : 3 * fwd,
    bytes: 4 * (T * B * I + L * 3 * H * (I + H) + T * B * H),
    B, T, I, H, L, pass,
  }));
}

function rand(n: number, seed: number, amp: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * amp;
  }
  return a;
}

interface Weights {
  wIh: Float32Array;
  wHh: Float32Array;
  bIh: Float32Array;
  bHh: Float32Array;
  inSize: number;
}
const cache = new Map<string, { x: Float32Array; layers: Weights[]; g: Float32Array }>();
function data(p: GruProblem) {
  const key = `${p.B}-${p.T}`;
  let d = cache.get(key);
  if (!d) {
    const s = 1 / Math.sqrt(p.H);
    const layers: Weights[] = [];
    for (let l = 0; l < p.L; l++) {
      const inSize = l === 0 ? p.I : p.H;
      layers.push({ wIh: rand(3 * p.H * inSize, 10 + l, s), wHh: rand(3 * p.H * p.H, 20 + l, s), bIh: rand(3 * p.H, 30 + l, s), bHh: rand(3 * p.H, 40 + l, s), inSize });
    }
    d = { x: rand(p.T * p.B * p.I, 1, 1), layers, g: rand(p.T * p.B * p.H, 2, 1) };
    cache.set(key, d);
  }
  return d;
}

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/** float64 reference of the last layer's output for batch rows 0..3 (rows are independent). */
function validator(p: GruProblem, out: Float32Array): { maxRel: number; failure: string | null } {
  const { x, layers } = data(p);
  const { T, B, H } = p;
  const rowsChecked = 4;
  const ref = new Map<number, number>();
  for (let b = 0; b < rowsChecked; b++) {
    let inp: Float64Array = new Float64Array(T * p.I);
    for (let t = 0; t < T; t++) for (let i = 0; i < p.I; i++) inp[t * p.I + i] = x[(t * B + b) * p.I + i];
    for (const w of layers) {
      const y = new Float64Array(T * H);
      let h = new Float64Array(H);
      for (let t = 0; t < T; t++) {
        const hn = new Float64Array(H);
        for (let k = 0; k < H; k++) {
          const gi = [0, 1, 2].map((g) => {
            let s = w.bIh[g * H + k];
            for (let c = 0; c < w.inSize; c++) s += w.wIh[(g * H + k) * w.inSize + c] * inp[t * w.inSize + c];
            return s;
          });
          const gh = [0, 1, 2].map((g) => {
            let s = w.bHh[g * H + k];
            for (let c = 0; c < H; c++) s += w.wHh[(g * H + k) * H + c] * h[c];
            return s;
          });
          const r = sig(gi[0] + gh[0]);
          const z = sig(gi[1] + gh[1]);
          const n = Math.tanh(gi[2] + r * gh[2]);
          hn[k] = (1 - z) * n + z * h[k];
        }
        h = hn;
        y.set(h, t * H);
      }
      inp = y;
    }
    for (let t = 0; t < T; t++) for (let k = 0; k < H; k++) ref.set((t * B + b) * H + k, inp[t * H + k]);
  }
  return compare(out, (i) => ref.get(i)!, [...ref.keys()], 1e-5, 1e-3);
}

interface GpuW {
  wIh: Tensor;
  wHh: Tensor;
  bIh: Tensor;
  bHh: Tensor;
}

type GruFn = (x: Tensor, w: GpuW[], p: GruProblem) => Tensor;

const fused: GruFn = (x, w) => gru(x, null, w).output;

/** The per-step composition from unfused ops (input projections still one GEMM per layer). */
const composed: GruFn = (x, ws, p) => {
  const { B, T, H } = p;
  let inp = x;
  for (const w of ws) {
    const gi = linear(inp, w.wIh, w.bIh); // [T, B, 3H]
    let h = tensor(new Float32Array(B * H), [B, H]);
    const outs: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const git = select(gi, 0, t);
      const gh = linear(h, w.wHh, w.bHh);
      const part = (a: Tensor, g: number) => narrow(a, 1, g * H, H);
      const r = sigmoid(add(part(git, 0), part(gh, 0)));
      const z = sigmoid(add(part(git, 1), part(gh, 1)));
      const n = tanh(add(part(git, 2), mul(r, part(gh, 2))));
      h = add(mul(sub(1, z), n), mul(z, h));
      outs.push(h);
    }
    inp = stack(outs, 0);
  }
  return inp;
};

function variant(name: string, fn: GruFn, peer: boolean): Variant<GruProblem> {
  return {
    name,
    peer,
    async setup(p) {
      const d = data(p);
      const x = tensor(d.x, [p.T, p.B, p.I]);
      const g = tensor(d.g, [p.T, p.B, p.H]);
      const w = d.layers.map((l) => {
        const t = {
          wIh: tensor(l.wIh, [3 * p.H, l.inSize]),
          wHh: tensor(l.wHh, [3 * p.H, p.H]),
          bIh: tensor(l.bIh, [3 * p.H]),
          bHh: tensor(l.bHh, [3 * p.H]),
        };
        for (const v of Object.values(t)) v.requiresGrad = p.pass === 'fwdbwd';
        return t;
      });
      const params = w.flatMap((l) => Object.values(l));
      let out: Tensor | null = null;
      return {
        run() {
          out?.dispose();
          out = scope(() => {
            const o = fn(x, w, p);
            if (p.pass === 'fwdbwd') {
              backward(o, g);
              for (const v of params) {
                v.grad?.dispose();
                v.grad = null;
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
          for (const v of [x, g, ...params]) v.dispose();
        },
      };
    },
  };
}

const TORCH_SCRIPT = String.raw`
from torch_peer import torch, dev, problems, time_problem
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
for p in problems():
    m = torch.nn.GRU(p['I'], p['H'], num_layers=p['L']).to(dev)
    x = torch.rand(p['T'], p['B'], p['I'], device=dev)
    g = torch.rand(p['T'], p['B'], p['H'], device=dev)
    def run():
        if p['pass'] == 'fwd':
            with torch.no_grad(): m(x)
        else:
            y, _ = m(x); y.backward(g); m.zero_grad(set_to_none=True)
    time_problem(p, run)
`;

function torchRows(ps: GruProblem[], budget: number): Row[] {
  return runTorchPeer(TORCH_SCRIPT, ps, (p) => ({ B: p.B, T: p.T, I: p.I, H: p.H, L: p.L, pass: p.pass }), budget, 'torch-cudnn', 'nn.GRU fp32');
}

async function main(): Promise<void> {
  const { flags, values } = parseArgs(process.argv.slice(2));
  await init();
  const dev = runtime().device;
  dev.poison = true;
  const budget = Number(values.get('budget') ?? (flags.has('quick') ? 0.5 : 1.5));
  const T = Number(values.get('steps') ?? 100);
  const h = new Harness({ json: flags.has('json'), wall: flags.has('wall'), budgetSeconds: budget, minReps: 2 });
  const log = flags.has('json') ? (s: string) => process.stderr.write(s + '\n') : (s: string) => process.stdout.write(s + '\n');
  h.header({ bench: 'gru', steps: T });
  const ps = problems(T);
  const vs = [variant('fused', fused, false), variant('composed', composed, true)];
  for (const p of ps) {
    const before = dev.stats.dispatches;
    await h.run(p, [vs[0]], validator);
    const fusedDispatches = dev.stats.dispatches - before;
    await h.run(p, [vs[1]], validator);
    log(`  (${p.name}: ${fusedDispatches} dispatches for the fused rows, validation and warm-up included)`);
  }
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
}

await main();
process.exit(0);
