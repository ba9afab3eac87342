/**
 * Matmul benchmark: every variant of kernels/matmul.wgsl, the engine's own pick ("auto"), and
 * TF.js's WebGPU backend on the same device, over the shapes the models use.
 *
 *   node bench/matmul.ts [--json] [--quick] [--all] [--shapes a,b] [--exact] [--variants reg4x4,tfjs]
 *                        [--wall] [--budget seconds] [--no-tfjs] [--list-shapes]
 *
 * --shapes keeps problems whose name contains one of the comma-separated words (--exact: equals
 * one); --list-shapes prints the problems as JSON (for bench/torch_matmul.py); --all adds the
 * big squares (4096, 8192) that a software adapter would spend many minutes on (they run by
 * default on a hardware adapter). Work and traffic per row: 2*M*N*K*batch flops; the minimum
 * traffic is each operand read once and C written once, 4*(A + B + C) bytes, so GB/s says how far
 * a shape is from being bandwidth-bound (an H100's ~3 TB/s against ~50 TFLOP/s fp32: products
 * with fewer than ~70 flops per byte, GRU steps and classifier heads, are bandwidth-bound).
 */
import { init, runtime, tensor, matmulRaw, planMatmul, describeMatmulPlan, getPlatform, shutdown, type Tensor, type MatmulKind, type Activation } from '../src/engine/index.ts';
import { Harness, parseArgs, compare, type Problem, type Variant, type Instance } from './harness.ts';

interface MatmulProblem extends Problem {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  act: Activation;
  /** squares | wrn | transformer | gru | head */
  group: string;
  /** Squares above 2048: skipped on a software adapter unless --all. */
  big: boolean;
}

function prob(name: string, group: string, M: number, N: number, K: number, o: { batch?: number; tA?: boolean; tB?: boolean; bias?: boolean; act?: Activation } = {}): MatmulProblem {
  const batch = o.batch ?? 1;
  const tA = o.tA ?? false;
  const tB = o.tB ?? false;
  const shape = `${batch > 1 ? `${batch}x` : ''}[${M}x${K}]${tA ? 'T' : ''}@[${K}x${N}]${tB ? 'T' : ''}${o.bias ? '+b' : ''}${o.act && o.act !== 'none' ? `,${o.act}` : ''}`;
  return {
    name, shape, group, M, N, K, batch, transA: tA, transB: tB, bias: o.bias ?? false, act: o.act ?? 'none', big: M * N * K > 2048 ** 3,
    flops: 2 * M * N * K * batch,
    bytes: 4 * batch * (M * K + K * N + M * N),
  };
}

/** The shapes that matter (see the issue): squares, sampling (M = 1..8), WRN-40-2's convolutions at batch 128 as
 * GEMMs (forward: im2col [B*H*W, 9C] @ Wᵀ; input gradient: dOut @ W; weight gradient:
 * dOutᵀ @ im2col, K = B*H*W), transformer projections and attention, GRU steps, heads. */
function problems(): MatmulProblem[] {
  const ps: MatmulProblem[] = [];
  for (const n of [256, 512, 1024, 2048, 4096, 8192]) ps.push(prob(`sq${n}`, 'squares', n, n, n));
  const wrn = (g: string, C: number, hw: number, B: number) => {
    const bhw = B * hw;
    const tag = B === 128 ? '' : `@b${B}`;
    ps.push(prob(`wrn-${g}-fwd${tag}`, 'wrn', bhw, C, 9 * C, { tB: true }));
    ps.push(prob(`wrn-${g}-dgrad${tag}`, 'wrn', bhw, 9 * C, C));
    ps.push(prob(`wrn-${g}-wgrad${tag}`, 'wrn', C, 9 * C, bhw, { tA: true }));
  };
  wrn('g1', 32, 1024, 128);
  wrn('g2', 64, 256, 128);
  wrn('g3', 128, 64, 128);
  // group 1 at batch 128 binds 151 MB operands: over a software adapter's 128 MiB binding limit
  wrn('g1', 32, 1024, 64);
  // transformer: d 512, 4096 tokens (16 x 256), 8 heads of 64
  ps.push(prob('tf-qkv', 'transformer', 4096, 1536, 512, { tB: true, bias: true }));
  ps.push(prob('tf-proj', 'transformer', 4096, 512, 512, { tB: true, bias: true }));
  ps.push(prob('tf-mlp-up', 'transformer', 4096, 2048, 512, { tB: true, bias: true, act: 'gelu' }));
  ps.push(prob('tf-mlp-down', 'transformer', 4096, 512, 2048, { tB: true, bias: true }));
  ps.push(prob('tf-attn-qk', 'transformer', 256, 256, 64, { batch: 128, tB: true }));
  ps.push(prob('tf-attn-av', 'transformer', 256, 64, 256, { batch: 128 }));
  ps.push(prob('tf-wgrad-mlp', 'transformer', 2048, 512, 4096, { tA: true }));
  // GRU steps: batch 32 and 128 rows, hidden 256, gates 3*256
  ps.push(prob('gru-step-b32', 'gru', 32, 768, 256, { tB: true, bias: true }));
  ps.push(prob('gru-step-b128', 'gru', 128, 768, 256, { tB: true, bias: true }));
  // classifier heads: WRN-40-2 (128 features) on CIFAR-10/100, ViT-ish (512 features)
  ps.push(prob('head-c10', 'head', 128, 10, 128, { tB: true, bias: true }));
  ps.push(prob('head-c100', 'head', 128, 100, 128, { tB: true, bias: true }));
  ps.push(prob('head-512x1000', 'head', 256, 1000, 512, { tB: true, bias: true }));
  // sampling (matrix-vector and few-row products): the word-LM decoder (ninp 200) over
  // WikiText-2's 33278 words and a 4001-word vocabulary, one stream and 2/4/8 streams side by side
  // (sampleWords' `streams`), the same as x @ W with W stored [K, N], and the GRU step of the
  // text classifier (hidden 128, gates 3 * 128) at batch 32 and 1
  ps.push(prob('lm-dec-m1', 'sampling', 1, 33278, 200, { tB: true, bias: true }));
  ps.push(prob('lm-dec-4001-m1', 'sampling', 1, 4001, 200, { tB: true, bias: true }));
  for (const m of [2, 4, 8]) ps.push(prob(`lm-dec-m${m}`, 'sampling', m, 33278, 200, { tB: true, bias: true }));
  ps.push(prob('gemv-nt-4001', 'sampling', 1, 4001, 200));
  ps.push(prob('gemv-nt-m3-4001', 'sampling', 3, 4001, 200, { bias: true }));
  ps.push(prob('gru128-step-b32', 'sampling', 32, 384, 128, { tB: true, bias: true }));
  ps.push(prob('gru128-step-b1', 'sampling', 1, 384, 128, { tB: true, bias: true }));
  return ps;
}

// ------------------------------------------------------------------------------ data and reference

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Data {
  a: Float32Array; // stored layout: [batch, M, K] or [batch, K, M] when transA
  b: Float32Array;
  bias: Float32Array | null;
}

const dataCache = new Map<string, Data>();
function dataFor(p: MatmulProblem): Data {
  const hit = dataCache.get(p.name);
  if (hit) return hit;
  const r = rng(p.M * 7919 + p.N * 104729 + p.K);
  const fill = (n: number) => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = r() * 2 - 1;
    return x;
  };
  const d = { a: fill(p.batch * p.M * p.K), b: fill(p.batch * p.K * p.N), bias: p.bias ? fill(p.N) : null };
  dataCache.clear(); // one problem's data at a time (the big ones are hundreds of MB)
  dataCache.set(p.name, d);
  return d;
}

function actRef(x: number, act: Activation): number {
  switch (act) {
    case 'relu': return Math.max(x, 0);
    case 'gelu': return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh': return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case 'leaky_relu': return x >= 0 ? x : 0.01 * x;
    case 'tanh': return Math.tanh(x);
    case 'sigmoid': return 1 / (1 + Math.exp(-x));
    default: return x;
  }
}

// erf to double precision (W. J. Cody's rational approximations are overkill here: a 1e-10
// series/continued-fraction split is enough for a reference)
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax, s = ax;
    for (let n = 1; n < 100; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      s += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * s;
  }
  // continued fraction for erfc
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

/** float64 reference for one output element (batch z, row i, column j). */
function refAt(p: MatmulProblem, d: Data, idx: number): number {
  const j = idx % p.N;
  const i = Math.floor(idx / p.N) % p.M;
  const z = Math.floor(idx / (p.M * p.N));
  const ao = z * p.M * p.K;
  const bo = z * p.K * p.N;
  let s = 0;
  for (let k = 0; k < p.K; k++) {
    const av = p.transA ? d.a[ao + k * p.M + i] : d.a[ao + i * p.K + k];
    const bv = p.transB ? d.b[bo + j * p.K + k] : d.b[bo + k * p.N + j];
    s += av * bv;
  }
  if (d.bias) s += d.bias[j];
  return actRef(s, p.act);
}

function validate(p: MatmulProblem, out: Float32Array) {
  const d = dataFor(p);
  const total = p.batch * p.M * p.N;
  let indices: number[] | null = null;
  if (total * p.K > 3e7) {
    // sampled: 1500 random elements plus the last row and column of the last batch (the edges)
    const r = rng(12345);
    const set = new Set<number>();
    for (let s = 0; s < 1500; s++) set.add(Math.floor(r() * total));
    const zo = (p.batch - 1) * p.M * p.N;
    for (let j = 0; j < p.N; j += Math.max(1, Math.floor(p.N / 64))) set.add(zo + (p.M - 1) * p.N + j);
    for (let i = 0; i < p.M; i += Math.max(1, Math.floor(p.M / 64))) set.add(zo + i * p.N + p.N - 1);
    indices = [...set];
  }
  // fp32 products of K terms in [-1, 1): typical |C| ~ sqrt(K)/3, rounding error ~ sqrt(K) eps |C|
  const scale = Math.sqrt(p.K) / 3;
  return compare(out, (i) => refAt(p, d, i), indices, 1e-4 * scale, 1e-4, scale);
}

// ------------------------------------------------------------------------------ our variants

function upload(p: MatmulProblem, copies: number): { as: Tensor[]; bs: Tensor[]; bias: Tensor | null } {
  const d = dataFor(p);
  const aShape = p.transA ? [p.K, p.M] : [p.M, p.K];
  const bShape = p.transB ? [p.N, p.K] : [p.K, p.N];
  const bt = p.batch > 1 ? [p.batch] : [];
  const as: Tensor[] = [];
  const bs: Tensor[] = [];
  for (let c = 0; c < copies; c++) {
    as.push(tensor(d.a, [...bt, ...aShape]));
    bs.push(tensor(d.b, [...bt, ...bShape]));
  }
  return { as, bs, bias: d.bias ? tensor(d.bias, [p.N]) : null };
}

function aligned(p: MatmulProblem): boolean {
  return (p.transA ? p.M : p.K) % 4 === 0 && (p.transB ? p.K : p.N) % 4 === 0;
}

function ours(name: string, variant: MatmulKind | 'auto', extra: { subgroupRows?: boolean; skinnyLanes?: number } = {}): Variant<MatmulProblem> {
  return {
    name,
    unsupported(p) {
      const lim = runtime().device.limits.maxStorageBufferBindingSize;
      const biggest = 4 * p.batch * Math.max(p.M * p.K, p.K * p.N, p.M * p.N);
      if (biggest > lim) return `an operand of ${(biggest / 2 ** 20).toFixed(0)} MiB exceeds the adapter's ${(lim / 2 ** 20).toFixed(0)} MiB binding limit`;
      if ((variant === 'reg8x8' || variant === 'reg16x8') && !aligned(p)) return `operands not 4-aligned (${variant} needs vec4 rows)`;
      return null;
    },
    async setup(p, copies) {
      const dev = runtime().device;
      const { as, bs, bias } = upload(p, copies);
      let out: Tensor | null = null;
      const inst: Instance = {
        run(i) {
          out?.dispose();
          out = matmulRaw(as[i], bs[i], {
            transA: p.transA, transB: p.transB, bias: bias ?? undefined, activation: p.act,
            ...(variant === 'auto' ? {} : { variant, splits: 1 }),
            ...extra,
          });
        },
        flush: () => dev.flush(),
        done: () => dev.sync(),
        output: async () => (await out!.data()) as Float32Array,
        dispose() {
          out?.dispose();
          for (const t of [...as, ...bs]) t.dispose();
          bias?.dispose();
        },
      };
      // Poisoning is on for the first (validated) run only: it costs an upload per output.
      dev.poison = true;
      const run0 = inst.run.bind(inst);
      let first = true;
      inst.run = (i) => {
        run0(i);
        if (first) {
          first = false;
          dev.poison = false;
        }
      };
      return inst;
    },
    note(p) {
      if (variant !== 'auto') return undefined;
      return `picked ${describeMatmulPlan(planMatmul(p.M, p.N, p.K, p.batch, aligned(p)))}`;
    },
  };
}

// ------------------------------------------------------------------------------ TF.js peer

interface Tf {
  tensor(values: Float32Array, shape: number[]): TfTensor;
  matMul(a: TfTensor, b: TfTensor, transposeA: boolean, transposeB: boolean): TfTensor;
  fused: { matMul(o: { a: TfTensor; b: TfTensor; transposeA: boolean; transposeB: boolean; bias?: TfTensor; activation?: string }): TfTensor };
  registerBackend(name: string, f: () => unknown, priority?: number): boolean;
  removeBackend(name: string): void;
  setBackend(name: string): Promise<boolean>;
  backend(): { submitQueue(): void; endComputePassEncoder(): void; commandEncoder: unknown };
  erf(x: TfTensor): TfTensor;
  mul(a: TfTensor, b: TfTensor | number): TfTensor;
  add(a: TfTensor, b: TfTensor | number): TfTensor;
  version_core?: string;
}
interface TfTensor {
  data(): Promise<Float32Array>;
  dispose(): void;
}

let tfPromise: Promise<Tf> | null = null;

/** TF.js's WebGPU backend on our own GPUDevice, so both are timed on one queue. */
function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const gpu = getPlatform().gpu();
    // tfjs-backend-webgpu checks navigator.gpu at import time
    const nav = (globalThis as { navigator?: object }).navigator ?? {};
    Object.defineProperty(globalThis, 'navigator', { value: Object.assign(Object.create(nav), { gpu }), configurable: true, writable: true });
    const tf = (await import('@tensorflow/tfjs-core')) as unknown as Tf;
    const { WebGPUBackend } = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { WebGPUBackend: new (d: GPUDevice, info?: GPUAdapterInfo) => unknown };
    const dev = runtime().device;
    // TF.js registers its kernels under the name 'webgpu': replace the backend the package
    // registered (which would open a device of its own) by one on our device.
    tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new WebGPUBackend(dev.gpu, dev.info), 10);
    await tf.setBackend('webgpu');
    return tf;
  })();
  return tfPromise;
}

function tfjsPeer(): Variant<MatmulProblem> {
  return {
    name: 'tfjs-webgpu',
    peer: true,
    unsupported(p) {
      const lim = runtime().device.limits.maxStorageBufferBindingSize;
      const biggest = 4 * p.batch * Math.max(p.M * p.K, p.K * p.N, p.M * p.N);
      if (biggest > lim) return `an operand exceeds the ${(lim / 2 ** 20).toFixed(0)} MiB binding limit`;
      if (p.act !== 'none' && p.act !== 'relu' && p.act !== 'gelu') return `no fused ${p.act} in TF.js`;
      return null;
    },
    async setup(p, copies) {
      const tf = await loadTf();
      const d = dataFor(p);
      const bt = p.batch > 1 ? [p.batch] : [];
      const aShape = [...bt, ...(p.transA ? [p.K, p.M] : [p.M, p.K])];
      const bShape = [...bt, ...(p.transB ? [p.N, p.K] : [p.K, p.N])];
      const as: TfTensor[] = [];
      const bs: TfTensor[] = [];
      for (let c = 0; c < copies; c++) {
        as.push(tf.tensor(d.a, aShape));
        bs.push(tf.tensor(d.b, bShape));
      }
      const bias = d.bias ? tf.tensor(d.bias, [p.N]) : undefined;
      let out: TfTensor | null = null;
      const dev = runtime().device;
      return {
        run(i) {
          out?.dispose();
          const y = tf.fused.matMul({ a: as[i], b: bs[i], transposeA: p.transA, transposeB: p.transB, bias, activation: p.act === 'relu' ? 'relu' : 'linear' });
          if (p.act === 'gelu') {
            // TF.js has no fused gelu: its composite (x/2 (1 + erf(x/sqrt2))), as a TF.js model runs it
            const s = tf.mul(y, Math.SQRT1_2);
            const e = tf.erf(s);
            const e1 = tf.add(e, 1);
            const h = tf.mul(y, 0.5);
            out = tf.mul(h, e1);
            for (const t of [y, s, e, e1, h]) t.dispose();
          } else {
            out = y;
          }
        },
        flush() {
          // what TF.js itself does before a readback: close its pass, submit its encoder
          const be = tf.backend();
          be.endComputePassEncoder();
          if (be.commandEncoder) be.submitQueue();
        },
        done: () => dev.gpu.queue.onSubmittedWorkDone(),
        output: () => out!.data(),
        dispose() {
          out?.dispose();
          for (const t of [...as, ...bs]) t.dispose();
          bias?.dispose();
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const { flags, values } = parseArgs(process.argv.slice(2));
  if (flags.has('list-shapes')) {
    process.stdout.write(JSON.stringify(problems(), null, 1) + '\n');
    return;
  }
  await init();
  const dev = runtime().device;
  const h = new Harness({
    json: flags.has('json'),
    wall: flags.has('wall'),
    budgetSeconds: Number(values.get('budget') ?? (flags.has('quick') ? 0.5 : 1.5)),
    minReps: flags.has('quick') ? 2 : 3,
  });
  h.header({ bench: 'matmul' });
  const shapeWords = values.get('shapes')?.split(',').filter(Boolean);
  const variantWords = values.get('variants')?.split(',').filter(Boolean);
  const quickSet = new Set(['lm-dec-m1', 'lm-dec-4001-m1', 'gru128-step-b32', 'sq1024', 'wrn-g2-fwd', 'wrn-g2-dgrad', 'wrn-g2-wgrad', 'tf-qkv', 'tf-attn-qk', 'gru-step-b32', 'head-c10']);
  let ps = problems();
  if (shapeWords) ps = ps.filter((p) => shapeWords.some((w) => (flags.has('exact') ? p.name === w : p.name.includes(w))));
  else if (flags.has('quick')) ps = ps.filter((p) => quickSet.has(p.name));
  if (!flags.has('all') && dev.isSoftware) ps = ps.filter((p) => !p.big || shapeWords !== undefined);
  const all: Variant<MatmulProblem>[] = [
    ours('naive', 'naive'), ours('tiled', 'tiled'), ours('reg4x4', 'reg4x4'), ours('reg8x8', 'reg8x8'), ours('reg8x8-nosg', 'reg8x8', { subgroupRows: false }),
    ours('reg16x8', 'reg16x8'), ours('skinny', 'skinny'), ours('skinny-l8', 'skinny', { skinnyLanes: 8 }), ours('simd8', 'simd8'), ours('auto', 'auto'),
  ];
  if (!flags.has('no-tfjs')) all.push(tfjsPeer());
  for (const p of ps) {
    let vs = all;
    if (variantWords) vs = vs.filter((v) => variantWords.some((w) => v.name.includes(w)));
    // naive/tiled only on the smaller squares unless --all or a hardware adapter (on a software
    // one they run at 0.1-0.5 GFLOP/s: tiled's 256-thread barriers cost it 10x) and reg8x8-nosg
    // only on request (it is reg8x8 as an adapter without subgroups runs it)
    else {
      const small = p.group === 'squares' && p.M <= (dev.isSoftware ? 512 : 8192);
      vs = vs.filter((v) => v.name !== 'reg8x8-nosg' && ((v.name !== 'naive' && v.name !== 'tiled') || small || flags.has('all')));
      // skinny re-reads B once per 8 rows: only skinny products (skinny-l8, its split-K lanes, on request)
      vs = vs.filter((v) => (v.name !== 'skinny' || p.M <= 128) && v.name !== 'skinny-l8');
    }
    await h.run(p, vs, validate);
  }
  const failed = h.rows.filter((r) => r.status === 'failed');
  if (failed.length > 0) process.stderr.write(`${failed.length} variant(s) failed validation and were not timed\n`);
  shutdown();
  process.exit(failed.length > 0 ? 1 : 0);
}

await main();
