/**
 * The engine's kernel checks, runnable anywhere the engine runs (a browser page, the demo's
 * "kernel checks" panel, or Node): a representative subset of test/engine's kernel tests (matmul,
 * conv forward and backward, attention forward and backward, a GRU, softmax-cross-entropy forward
 * and backward, SGD and Adam), each on random inputs of odd sizes against the SAME float64
 * references those tests use (test/helpers/ref-*.ts, test/engine/conv-ref.ts), with outputs
 * poisoned (NaN) before the kernels write them.
 *
 * No Node API and no vitest here: each check returns its worst error and a verdict, and the
 * caller asserts (test/browser/kernels.test.ts) or displays (the demo's panel).
 */
import {
  attention, backward, conv2d, crossEntropy, gru, linear, matmul, runtime, scope, tensor, SGD, Adam,
  type Tensor,
} from '../../src/engine/api.ts';
// reference.ts imports vitest's expect (unused here); the browser build stubs vitest (demo/serve.ts)
import { randArray, asF32 } from '../helpers/reference.ts';
import { refMatmul, actRef as matmulAct, type Mat } from '../helpers/ref-matmul.ts';
import { attnRef, attnRefGrad, type Cfg } from '../helpers/ref-attention.ts';
import { gruRef, type RefLayer } from '../helpers/ref-gru.ts';
import { refCe, refCeGrad } from '../helpers/ref-loss.ts';
import { sgdRef, adamRef, type AdamState } from '../helpers/ref-optim.ts';
import { convRef, convBackRef, convData, geo, optsOf, outSize, type Geo } from '../engine/conv-ref.ts';

/** What demo/checks.html exposes to the tests (and demo/app.ts to the e2e test). */
declare global {
  interface Window {
    goeChecks?: { adapter: string; run(filter?: string): Promise<CheckResult[]> };
    goeError?: string;
  }
}

export interface CheckResult {
  name: string;
  ok: boolean;
  /** Worst |got - want| over the compared values (Infinity for a NaN where a number was due). */
  worstError: number;
  /** What was compared and the first mismatches. */
  detail: string;
  ms: number;
}

interface Comparison {
  what: string;
  got: ArrayLike<number>;
  want: ArrayLike<number>;
  atol: number;
  rtol: number;
}

/** |got - want| <= atol + rtol |want| elementwise, as test/helpers/reference.ts's expectClose. */
function compare(cs: Comparison[]): { ok: boolean; worst: number; detail: string } {
  let ok = true;
  let worst = 0;
  const lines: string[] = [];
  for (const c of cs) {
    if (c.got.length !== c.want.length) {
      ok = false;
      lines.push(`${c.what}: length ${c.got.length}, want ${c.want.length}`);
      continue;
    }
    const bad: string[] = [];
    for (let i = 0; i < c.want.length; i++) {
      const a = c.got[i]!;
      const e = c.want[i]!;
      const err = Math.abs(a - e);
      const good = e === a || err <= c.atol + c.rtol * Math.abs(e);
      worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
      if (!good && bad.length < 4) bad.push(`[${i}] got ${a}, want ${e}`);
      if (!good) ok = false;
    }
    lines.push(bad.length ? `${c.what}: MISMATCH ${bad.join('; ')}` : `${c.what}: ${c.want.length} values ok`);
  }
  return { ok, worst, detail: lines.join(' | ') };
}

async function read(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}

/** Reads a result and frees it. */
async function readOnce(t: Tensor): Promise<Float64Array> {
  try {
    return await read(t);
  } finally {
    t.dispose();
  }
}

function t32(v: ArrayLike<number>, shape: readonly number[], requiresGrad = false): Tensor {
  const t = tensor(Float32Array.from(v), shape);
  t.requiresGrad = requiresGrad;
  return t;
}

function transpose2(d: Float64Array, rows: number, cols: number): Float64Array {
  const o = new Float64Array(d.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) o[j * rows + i] = d[i * cols + j]!;
  return o;
}

/** `extended`: left out of the CI subset (test/browser/kernels.test.ts) to keep it within its time
 * budget (each new pipeline takes seconds to compile on SwiftShader); the demo's panel runs all. */
type Check = { name: string; run: () => Promise<Comparison[]>; extended?: boolean };

const mat = (batch: number[], rows: number, cols: number, seed: number): Mat => ({
  data: asF32(randArray(batch.reduce((x, y) => x * y, 1) * rows * cols, seed)), batch, rows, cols,
});
const mmTol = (K: number) => ({ atol: 2e-6 * Math.sqrt(K) + 1e-6, rtol: 1e-5 });

/** The checks' names (the CI subset, or all with `extended`). */
export function checkNames(extended = false): string[] {
  return CHECKS.filter((c) => extended || !c.extended).map((c) => c.name);
}

export const CHECKS: Check[] = [
  {
    name: 'matmul: odd sizes 37x29 @ 29x53, batched with a broadcast batch dimension',
    run: async () => {
      const a = mat([3, 1], 37, 29, 1), b = mat([1, 2], 29, 53, 2);
      const ref = refMatmul(a, b, null, 'none');
      const got = await readOnce(scope(() => matmul(t32(a.data, [3, 1, 37, 29]), t32(b.data, [1, 2, 29, 53]))));
      return [{ what: 'product', got, want: ref.data, ...mmTol(29) }];
    },
  },
  {
    name: 'matmul: 4-aligned 64x96 @ 96x80 (vec4 and tiled paths)',
    run: async () => {
      const a = mat([], 64, 96, 3), b = mat([], 96, 80, 4);
      const ref = refMatmul(a, b, null, 'none');
      const got = await readOnce(scope(() => matmul(t32(a.data, [64, 96]), t32(b.data, [96, 80]))));
      return [{ what: 'product', got, want: ref.data, ...mmTol(96) }];
    },
  },
  {
    name: 'linear: x [13, 31] W^T [31, 17] + bias, fused GELU',
    run: async () => {
      const x = mat([], 13, 31, 5), w = mat([], 17, 31, 6);
      const bias = asF32(randArray(17, 7));
      const ref = refMatmul(x, { data: transpose2(w.data, 17, 31), batch: [], rows: 31, cols: 17 }, bias, 'gelu');
      const got = await readOnce(scope(() => linear(t32(x.data, [13, 31]), t32(w.data, [17, 31]), t32(bias, [17]), 'gelu')));
      void matmulAct;
      return [{ what: 'output', got, want: ref.data, ...mmTol(31) }];
    },
  },
  ...(
    [
      ['conv2d 3x3 s1 p1, 3 -> 5 channels, 7x9', geo({ n: 2, c: 3, h: 7, w: 9, oc: 5, kh: 3, kw: 3, ph: 1, pw: 1 })],
      ['conv2d 3x3 stride 2 padding 2, 16 -> 24 channels, 11x13', geo({ n: 2, c: 16, h: 11, w: 13, oc: 24, kh: 3, kw: 3, sh: 2, sw: 2, ph: 2, pw: 2 })],
      ['conv2d 1x1 stride 2 (WRN shortcut), 9 -> 45 channels', geo({ n: 2, c: 9, h: 7, w: 9, oc: 45, kh: 1, kw: 1, sh: 2, sw: 2 }), true],
      ['conv2d 5x5 p2 groups 2, 18 -> 50 channels', geo({ n: 1, c: 18, h: 11, w: 13, oc: 50, kh: 5, kw: 5, ph: 2, pw: 2, groups: 2 }), true],
    ] as [string, Geo, boolean?][]
  ).map(([name, g, extended]): Check => ({
    extended,
    name: `${name}: forward, input/weight/bias gradients`,
    run: async () => {
      const d = convData(g, 11 + g.oc);
      const [oh, ow] = outSize(g);
      const yRef = convRef(g, d.x, d.w, d.b);
      const back = convBackRef(g, d.x, d.w, d.gy);
      const x = t32(d.x, [g.n, g.c, g.h, g.w], true);
      const w = t32(d.w, [g.oc, g.c / g.groups, g.kh, g.kw], true);
      const b = t32(d.b, [g.oc], true);
      const gy = t32(d.gy, [g.n, g.oc, oh, ow]);
      const y = conv2d(x, w, b, optsOf(g));
      backward(y, gy);
      const out = [
        { what: 'forward', got: await read(y), want: yRef, atol: 1e-4, rtol: 1e-4 },
        { what: 'dx', got: await read(x.grad!), want: back.dx, atol: 1e-4, rtol: 1e-4 },
        { what: 'dw', got: await read(w.grad!), want: back.dw, atol: 2e-4, rtol: 1e-4 },
        { what: 'db', got: await read(b.grad!), want: back.db, atol: 2e-4, rtol: 1e-4 },
      ];
      for (const t of [x.grad!, w.grad!, b.grad!, x, w, b, gy, y]) t.dispose();
      return out;
    },
  })),
  ...([
    { B: 2, H: 2, Tq: 11, Tk: 13, D: 16, causal: true },
    { B: 1, H: 3, Tq: 17, Tk: 19, D: 64 },
  ] as Cfg[]).map((c): Check => ({
    extended: c.D === 64,
    name: `attention B ${c.B} H ${c.H} Tq ${c.Tq} Tk ${c.Tk} D ${c.D}${c.causal ? ' causal' : ''}: forward and q/k/v gradients`,
    run: async () => {
      const q = asF32(randArray(c.B * c.H * c.Tq * c.D, 31, -1.5, 1.5));
      const k = asF32(randArray(c.B * c.H * c.Tk * c.D, 32, -1.5, 1.5));
      const v = asF32(randArray(c.B * c.H * c.Tk * c.D, 33, -1, 1));
      const go = asF32(randArray(c.B * c.H * c.Tq * c.D, 34, -1, 1));
      const ref = attnRef(c, q, k, v);
      const g = attnRefGrad(c, q, k, v, go);
      const qt = t32(q, [c.B, c.H, c.Tq, c.D], true), kt = t32(k, [c.B, c.H, c.Tk, c.D], true), vt = t32(v, [c.B, c.H, c.Tk, c.D], true);
      const out = attention(qt, kt, vt, { causal: c.causal });
      const got = await read(out);
      backward(out, t32(go, out.shape));
      const res = [
        { what: 'output', got, want: ref.out, atol: 2e-5, rtol: 1e-4 },
        { what: 'dq', got: await read(qt.grad!), want: g.dq, atol: 5e-5, rtol: 2e-4 },
        { what: 'dk', got: await read(kt.grad!), want: g.dk, atol: 5e-5, rtol: 2e-4 },
        { what: 'dv', got: await read(vt.grad!), want: g.dv, atol: 5e-5, rtol: 2e-4 },
      ];
      for (const t of [qt.grad!, kt.grad!, vt.grad!, qt, kt, vt, out]) t.dispose();
      return res;
    },
  })),
  ...([
    { T: 5, B: 5, I: 7, H: 70, L: 2, lens: [5, 5, 3, 5, 1] },
    { T: 4, B: 3, I: 6, H: 16, L: 1, lens: [4, 4, 4] },
  ]).map((c): Check => ({
    name: `GRU T ${c.T} B ${c.B} I ${c.I} H ${c.H} layers ${c.L} (lengths ${c.lens.join(',')}): outputs and final states`,
    run: async () => {
      const s = 1 / Math.sqrt(c.H);
      const layers: RefLayer[] = [];
      for (let l = 0; l < c.L; l++) {
        const inSize = l === 0 ? c.I : c.H;
        layers.push({
          wIh: asF32(randArray(3 * c.H * inSize, 40 + 10 * l, -2 * s, 2 * s)), wHh: asF32(randArray(3 * c.H * c.H, 41 + 10 * l, -2 * s, 2 * s)),
          bIh: asF32(randArray(3 * c.H, 42 + 10 * l, -0.5, 0.5)), bHh: asF32(randArray(3 * c.H, 43 + 10 * l, -0.5, 0.5)),
        });
      }
      const x = asF32(randArray(c.T * c.B * c.I, 50, -1.5, 1.5));
      const h0 = asF32(randArray(c.L * c.B * c.H, 51, -0.8, 0.8));
      const ref = gruRef(x, h0, layers, c.T, c.B, c.I, c.H, c.lens);
      const { output, hN } = scope(() => {
        const weights = layers.map((w, l) => ({
          wIh: t32(w.wIh, [3 * c.H, l === 0 ? c.I : c.H]), wHh: t32(w.wHh, [3 * c.H, c.H]), bIh: t32(w.bIh, [3 * c.H]), bHh: t32(w.bHh, [3 * c.H]),
        }));
        return gru(t32(x, [c.T, c.B, c.I]), t32(h0, [c.L, c.B, c.H]), weights, { lengths: c.lens });
      });
      return [
        { what: 'output', got: await readOnce(output), want: ref.y, atol: 2e-5, rtol: 1e-4 },
        { what: 'hN', got: await readOnce(hN), want: ref.hN, atol: 2e-5, rtol: 1e-4 },
      ];
    },
  })),
  {
    name: 'softmax-cross-entropy N 37 C 13, label smoothing 0.1, ignored rows, mean: loss and logit gradient',
    run: async () => {
      const N = 37, C = 13, e = 0.1, ignore = -100;
      const x = asF32(randArray(N * C, 60, -4, 4));
      const t = Array.from({ length: N }, (_, i) => (i % 7 === 3 ? ignore : (i * 5 + 2) % C));
      const want = refCe(x, t, C, e, ignore, 'mean');
      const wantGrad = refCeGrad(x, t, C, e, ignore, 'mean', [1]);
      const xt = t32(x, [N, C], true);
      const loss = crossEntropy(xt, tensor(Int32Array.from(t), [N], 'i32'), { labelSmoothing: e, ignoreIndex: ignore, reduction: 'mean' });
      const got = await read(loss);
      backward(loss);
      const res = [
        { what: 'loss', got, want, atol: 1e-5, rtol: 1e-5 },
        { what: 'd logits', got: await read(xt.grad!), want: wantGrad, atol: 1e-6, rtol: 1e-4 },
      ];
      for (const tt of [xt.grad!, xt, loss]) tt.dispose();
      return res;
    },
  },
  {
    name: 'SGD (momentum 0.9, Nesterov, weight decay) and Adam (weight decay): 3 steps on odd-sized tensors',
    run: async () => {
      const sizes = [37, 2300, 1];
      const res: Comparison[] = [];
      for (const kind of ['sgd', 'adam'] as const) {
        const vals = sizes.map((n, i) => asF32(randArray(n, 70 + i)));
        const params = vals.map((v) => t32(v, [v.length], true));
        const opt = kind === 'sgd'
          ? new SGD(params, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 })
          : new Adam(params, { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
        const ref = vals.map((v) => Float64Array.from(v));
        const bufs: (Float64Array | null)[] = sizes.map(() => null);
        const states: AdamState[] = sizes.map((n) => ({ m: new Float64Array(n), v: new Float64Array(n), vmax: new Float64Array(n), t: 0 }));
        for (let step = 0; step < 3; step++) {
          const grads = sizes.map((n, i) => asF32(randArray(n, 1000 * step + 80 + i, -2, 2)));
          params.forEach((p, i) => {
            p.grad?.dispose();
            p.grad = t32(grads[i]!, [sizes[i]!]);
          });
          opt.step();
          ref.forEach((r, i) => {
            if (kind === 'sgd') bufs[i] = sgdRef(r, grads[i]!, bufs[i]!, { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true });
            else adamRef(r, grads[i]!, states[i]!, 0.01, 0.9, 0.999, 1e-8, 0.01, false, false);
          });
        }
        for (let i = 0; i < sizes.length; i++) {
          res.push({ what: `${kind} parameter ${i} (${sizes[i]})`, got: await read(params[i]!), want: ref[i]!, atol: 1e-6, rtol: 1e-5 });
        }
        for (const p of params) {
          p.grad?.dispose();
          p.dispose();
        }
        opt.dispose();
      }
      return res;
    },
  },
];

/** Runs the checks (all, or those whose name contains `filter`) one after another. */
export async function runKernelChecks(opts: { filter?: string; extended?: boolean; onResult?: (r: CheckResult) => void } = {}): Promise<CheckResult[]> {
  const dev = runtime().device;
  const poison = dev.poison;
  dev.poison = true; // every new tensor starts as NaN: an element a kernel forgets shows up
  const results: CheckResult[] = [];
  try {
    for (const c of CHECKS) {
      if (opts.filter ? !c.name.includes(opts.filter) : c.extended && !opts.extended) continue;
      const t0 = performance.now();
      let r: CheckResult;
      try {
        const cmp = compare(await c.run());
        r = { name: c.name, ok: cmp.ok, worstError: cmp.worst, detail: cmp.detail, ms: performance.now() - t0 };
      } catch (e) {
        r = { name: c.name, ok: false, worstError: Infinity, detail: `threw: ${(e as Error).message}`, ms: performance.now() - t0 };
      }
      results.push(r);
      opts.onResult?.(r);
    }
  } finally {
    dev.poison = poison;
  }
  return results;
}
