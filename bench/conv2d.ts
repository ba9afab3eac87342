/**
 * Convolution benchmark: the engine's conv2d (forward, input gradient, weight gradient; implicit
 * GEMM, or matmul's simd8 product on lavapipe) against TF.js's WebGPU backend on the same device, over the convolutions of
 * WRN-40-2 (32x32 inputs, batch 128) and of the 32x32 BigGAN generator and discriminator
 * (G_ch = D_ch = 64, i.e. 256 channels; batch 50 as BigGAN-PyTorch's CIFAR script).
 *
 *   node bench/conv2d.ts [--json] [--quick] [--shapes a,b] [--variants ours,tfjs] [--wall]
 *                        [--budget seconds] [--no-tfjs] [--biggan-batch n] [--torch] [--bk-alt=n] [--nosg]
 *                        [--baseline] [--simd8]
 *
 * On a software adapter the BigGAN shapes run at batch 4 unless --biggan-batch says otherwise
 * (a 256->256 3x3 convolution at 32x32 and batch 50 is 60 GFLOP: ~10 s per repetition there).
 * Every row is validated first on 384 sampled outputs against a float64 reference computed
 * from the definition. TF.js runs in its native NHWC layout (its fast path; its NCHW input
 * gradient falls back to a naive kernel), on the same data transposed.
 * Work per row: 2*N*OC*OH*OW*C*kH*kW flops for each of the three passes; minimum traffic is
 * both operands read once and the result written once.
 * --baseline: adds an `ours-own` row, the kernels before the simd8 path (src/engine/simd8/conv.ts) and the
 * uniform-weight direct input gradient: before/after in one run. --simd8: adds `ours-simd8`, the simd8
 * path pinned (variant 'simd8') also where auto keeps conv.ts's kernels.
 * --torch: also times PyTorch (cuDNN, fp32, TF32 off) on the same shapes through
 * /usr/bin/python3 (CUDA when present, else CPU), as peer rows.
 */
import { init, runtime, tensor, shutdown, getPlatform, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, conv2dKernelChoice, type Tensor, type ConvVariant } from '../src/engine/index.ts';
import { convTiles, convSubgroups, convSimd8, convDirectUniform, convNarrow } from '../src/engine/tuning.ts';
import { Harness, parseArgs, compare, runTorchPeer, type Problem, type Variant, type Instance, type Row } from './harness.ts';

type Pass = 'fwd' | 'dgrad' | 'wgrad';

interface ConvShape {
  n: number; c: number; h: number; w: number; oc: number; k: number; s: number; p: number;
}

interface ConvProblem extends Problem {
  pass: Pass;
  g: ConvShape;
  oh: number;
  ow: number;
  model: string;
  /** model-tag, e.g. wrn-g2-in (the three passes share it) */
  key: string;
}

function problems(bigganBatch: number): ConvProblem[] {
  const out: ConvProblem[] = [];
  const add = (model: string, tag: string, g: ConvShape) => {
    const oh = Math.floor((g.h + 2 * g.p - g.k) / g.s) + 1;
    const ow = Math.floor((g.w + 2 * g.p - g.k) / g.s) + 1;
    const flops = 2 * g.n * g.oc * oh * ow * g.c * g.k * g.k;
    const x = g.n * g.c * g.h * g.w, wt = g.oc * g.c * g.k * g.k, y = g.n * g.oc * oh * ow;
    for (const pass of ['fwd', 'dgrad', 'wgrad'] as Pass[]) {
      const bytes = 4 * (pass === 'fwd' ? x + wt + y : pass === 'dgrad' ? y + wt + x : y + x + wt);
      out.push({
        name: `${model}-${tag}-${pass}`,
        shape: `${g.n}x${g.c}x${g.h}x${g.w} k${g.k}s${g.s}p${g.p}->${g.oc}`,
        flops, bytes, pass, g, oh, ow, model, key: `${model}-${tag}`,
      });
    }
  };
  // WRN-40-2 (widths 32/64/128 after a 16-channel stem), batch 128, 32x32
  const B = 128;
  add('wrn', 'stem', { n: B, c: 3, h: 32, w: 32, oc: 16, k: 3, s: 1, p: 1 });
  add('wrn', 'g1-in', { n: B, c: 16, h: 32, w: 32, oc: 32, k: 3, s: 1, p: 1 });
  add('wrn', 'g1', { n: B, c: 32, h: 32, w: 32, oc: 32, k: 3, s: 1, p: 1 });
  add('wrn', 'g1-sc', { n: B, c: 16, h: 32, w: 32, oc: 32, k: 1, s: 1, p: 0 });
  add('wrn', 'g2-in', { n: B, c: 32, h: 32, w: 32, oc: 64, k: 3, s: 2, p: 1 });
  add('wrn', 'g2', { n: B, c: 64, h: 16, w: 16, oc: 64, k: 3, s: 1, p: 1 });
  add('wrn', 'g2-sc', { n: B, c: 32, h: 32, w: 32, oc: 64, k: 1, s: 2, p: 0 });
  add('wrn', 'g3-in', { n: B, c: 64, h: 16, w: 16, oc: 128, k: 3, s: 2, p: 1 });
  add('wrn', 'g3', { n: B, c: 128, h: 8, w: 8, oc: 128, k: 3, s: 1, p: 1 });
  add('wrn', 'g3-sc', { n: B, c: 64, h: 16, w: 16, oc: 128, k: 1, s: 2, p: 0 });
  // BigGAN 32x32: G blocks at 8, 16, 32 (3x3 256->256, 1x1 shortcut), output conv 256->3;
  // D blocks: 3->256 at 32x32, 256->256 at 32/16/8, 1x1 shortcuts
  const b = bigganBatch;
  for (const r of [8, 16, 32]) {
    add('biggan-g', `c3-${r}`, { n: b, c: 256, h: r, w: r, oc: 256, k: 3, s: 1, p: 1 });
    add('biggan-g', `sc-${r}`, { n: b, c: 256, h: r, w: r, oc: 256, k: 1, s: 1, p: 0 });
  }
  add('biggan-g', 'out', { n: b, c: 256, h: 32, w: 32, oc: 3, k: 3, s: 1, p: 1 });
  add('biggan-d', 'in', { n: b, c: 3, h: 32, w: 32, oc: 256, k: 3, s: 1, p: 1 });
  add('biggan-d', 'sc-in', { n: b, c: 3, h: 16, w: 16, oc: 256, k: 1, s: 1, p: 0 });
  for (const r of [32, 16, 8]) add('biggan-d', `c3-${r}`, { n: b, c: 256, h: r, w: r, oc: 256, k: 3, s: 1, p: 1 });
  add('biggan-d', 'sc-16', { n: b, c: 256, h: 16, w: 16, oc: 256, k: 1, s: 1, p: 0 });
  return out;
}

// ------------------------------------------------------------------------------ data

/** Seeded uniform(-1, 1) values (Mulberry32), cached per problem shape. */
function randomF32(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

interface Data { x: Float32Array; w: Float32Array; dy: Float32Array }
const dataCache = new Map<string, Data>();

function dataFor(p: ConvProblem): Data {
  const key = p.shape;
  let d = dataCache.get(key);
  if (!d) {
    const g = p.g;
    d = {
      x: randomF32(g.n * g.c * g.h * g.w, 1),
      w: randomF32(g.oc * g.c * g.k * g.k, 2),
      dy: randomF32(g.n * g.oc * p.oh * p.ow, 3),
    };
    dataCache.clear();
    dataCache.set(key, d);
  }
  return d;
}

// ------------------------------------------------------------------------------ reference

/** Float64 value of output element (a, b, c, d) of the pass, NCHW / OIHW coordinates. */
function refAt(p: ConvProblem, d: Data, a: number, b: number, c: number, e: number): number {
  const g = p.g;
  const X = (n: number, ci: number, ih: number, iw: number) => d.x[((n * g.c + ci) * g.h + ih) * g.w + iw];
  const W = (co: number, ci: number, kh: number, kw: number) => d.w[((co * g.c + ci) * g.k + kh) * g.k + kw];
  const DY = (n: number, co: number, oh: number, ow: number) => d.dy[((n * g.oc + co) * p.oh + oh) * p.ow + ow];
  let s = 0;
  if (p.pass === 'fwd') {
    const [n, co, oh, ow] = [a, b, c, e];
    for (let ci = 0; ci < g.c; ci++) for (let kh = 0; kh < g.k; kh++) for (let kw = 0; kw < g.k; kw++) {
      const ih = oh * g.s - g.p + kh, iw = ow * g.s - g.p + kw;
      if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) s += X(n, ci, ih, iw) * W(co, ci, kh, kw);
    }
  } else if (p.pass === 'dgrad') {
    const [n, ci, ih, iw] = [a, b, c, e];
    for (let co = 0; co < g.oc; co++) for (let kh = 0; kh < g.k; kh++) for (let kw = 0; kw < g.k; kw++) {
      const th = ih + g.p - kh, tw = iw + g.p - kw;
      if (th < 0 || tw < 0 || th % g.s || tw % g.s) continue;
      const oh = th / g.s, ow = tw / g.s;
      if (oh < p.oh && ow < p.ow) s += DY(n, co, oh, ow) * W(co, ci, kh, kw);
    }
  } else {
    const [co, ci, kh, kw] = [a, b, c, e];
    for (let n = 0; n < g.n; n++) for (let oh = 0; oh < p.oh; oh++) for (let ow = 0; ow < p.ow; ow++) {
      const ih = oh * g.s - g.p + kh, iw = ow * g.s - g.p + kw;
      if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) s += DY(n, co, oh, ow) * X(n, ci, ih, iw);
    }
  }
  return s;
}

/** Output dims of the pass in our layout (NCHW / OIHW). */
function outDims(p: ConvProblem): [number, number, number, number] {
  const g = p.g;
  if (p.pass === 'fwd') return [g.n, g.oc, p.oh, p.ow];
  if (p.pass === 'dgrad') return [g.n, g.c, g.h, g.w];
  return [g.oc, g.c, g.k, g.k];
}

function validator(layout: 'nchw' | 'tf'): (p: ConvProblem, out: Float32Array) => { maxRel: number; failure: string | null } {
  return (p, out) => {
    const d = dataFor(p);
    const dims = outDims(p);
    const total = dims[0] * dims[1] * dims[2] * dims[3];
    // coordinates of flat index i in the producer's layout
    const coords = (i: number): [number, number, number, number] => {
      if (layout === 'nchw') {
        const e = i % dims[3], c = Math.floor(i / dims[3]) % dims[2], b = Math.floor(i / (dims[3] * dims[2])) % dims[1], a = Math.floor(i / (dims[3] * dims[2] * dims[1]));
        return [a, b, c, e];
      }
      if (p.pass === 'wgrad') {
        // TF.js filter [kh, kw, C, OC]
        const co = i % dims[0], ci = Math.floor(i / dims[0]) % dims[1], kw = Math.floor(i / (dims[0] * dims[1])) % dims[3], kh = Math.floor(i / (dims[0] * dims[1] * dims[3]));
        return [co, ci, kh, kw];
      }
      // NHWC
      const ch = i % dims[1], x = Math.floor(i / dims[1]) % dims[3], y = Math.floor(i / (dims[1] * dims[3])) % dims[2], n = Math.floor(i / (dims[1] * dims[3] * dims[2]));
      return [n, ch, y, x];
    };
    const samples = p.pass === 'wgrad' ? 96 : 384;
    const idx: number[] = [];
    let s = 12345;
    for (let j = 0; j < Math.min(samples, total); j++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      idx.push(s % total);
    }
    const refs = new Map<number, number>();
    for (const i of idx) refs.set(i, refAt(p, d, ...coords(i)));
    const terms = p.pass === 'wgrad' ? p.g.n * p.oh * p.ow : p.pass === 'fwd' ? p.g.c * p.g.k * p.g.k : p.g.oc * p.g.k * p.g.k;
    // sums of `terms` products of U(-1,1) values: typical size sqrt(terms)/3; f32 rounding grows like sqrt(terms)
    const scale = Math.sqrt(terms) / 3;
    return compare(out, (i) => refs.get(i)!, idx, 2e-5 * Math.sqrt(terms) * scale, 1e-3, scale);
  };
}

// ------------------------------------------------------------------------------ ours

/** Alternatives to compare side by side in one run: `bk` runs with this reduction step
 * (`convTiles.bk`; --bk-alt=N adds an `ours-bkN` row), `noSg` without the subgroup-uniform A
 * fragment (--nosg adds an `ours-nosg` row: the kernels as before that change), `own` without
 * the simd8 path (--baseline adds an `ours-own` row), `simd8` with it pinned (--simd8). */
function ours(alt: { bk?: number; noSg?: boolean; own?: boolean; simd8?: boolean } = {}): Variant<ConvProblem> {
  const { bk, noSg, own, simd8 } = alt;
  const variant: ConvVariant = simd8 ? 'simd8' : 'auto';
  return {
    name: bk !== undefined ? `ours-bk${bk}` : noSg ? 'ours-nosg' : own ? 'ours-own' : simd8 ? 'ours-simd8' : 'ours',
    async setup(p, copies) {
      const dev = runtime().device;
      const d = dataFor(p);
      const g = p.g;
      const xs: Tensor[] = [];
      const dys: Tensor[] = [];
      const xShape = [g.n, g.c, g.h, g.w];
      const wShape = [g.oc, g.c, g.k, g.k];
      for (let c = 0; c < copies; c++) {
        xs.push(tensor(d.x, xShape));
        dys.push(tensor(d.dy, [g.n, g.oc, p.oh, p.ow]));
      }
      const w = tensor(d.w, wShape);
      const opts = { stride: g.s, padding: g.p };
      let out: Tensor | null = null;
      let first = true;
      dev.poison = true;
      return {
        run(i) {
          out?.dispose();
          const saved = convTiles.bk;
          if (bk !== undefined) convTiles.bk = bk;
          if (noSg) convSubgroups.enabled = false;
          if (own) convSimd8.enabled = convDirectUniform.enabled = convNarrow.enabled = false;
          try {
            if (p.pass === 'fwd') out = conv2dForwardRaw(xs[i], w, null, opts, variant);
            else if (p.pass === 'dgrad') out = conv2dInputGradRaw(dys[i], w, xShape, opts, variant);
            else out = conv2dWeightGradRaw(dys[i], xs[i], wShape, opts, variant);
          } finally {
            convTiles.bk = saved;
            convSubgroups.enabled = true;
            convSimd8.enabled = convDirectUniform.enabled = convNarrow.enabled = true;
          }
          if (first) {
            first = false;
            dev.poison = false;
          }
        },
        flush: () => dev.flush(),
        done: () => dev.sync(),
        output: async () => (await out!.data()) as Float32Array,
        dispose() {
          out?.dispose();
          for (const t of [...xs, ...dys, w]) t.dispose();
        },
      } satisfies Instance;
    },
    note(p) {
      if (bk !== undefined) return `BK ${bk}`;
      if (noSg) return 'no subgroups';
      if (simd8) return 'simd8 pinned';
      const g = p.g;
      if (own) convSimd8.enabled = convNarrow.enabled = false;
      const pick = conv2dKernelChoice(p.pass, [g.n, g.c, g.h, g.w], [g.oc, g.c, g.k, g.k], { stride: g.s, padding: g.p });
      convSimd8.enabled = convNarrow.enabled = true;
      return pick === 'gemm' ? undefined : `${pick} kernel`;
    },
  };
}

// ------------------------------------------------------------------------------ TF.js peer

interface TfTensor { data(): Promise<Float32Array>; dispose(): void }
interface Tf {
  tensor(values: Float32Array, shape: number[]): TfTensor;
  conv2d(x: TfTensor, f: TfTensor, strides: [number, number], pad: number, dataFormat: 'NHWC'): TfTensor;
  engine(): { runKernel(name: string, inputs: Record<string, TfTensor>, attrs: Record<string, unknown>): TfTensor };
  registerBackend(name: string, f: () => unknown, priority?: number): boolean;
  removeBackend(name: string): void;
  setBackend(name: string): Promise<boolean>;
  backend(): { submitQueue(): void; endComputePassEncoder(): void; commandEncoder: unknown };
}

let tfPromise: Promise<Tf> | null = null;

function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const gpu = getPlatform().gpu();
    const nav = (globalThis as { navigator?: object }).navigator ?? {};
    Object.defineProperty(globalThis, 'navigator', { value: Object.assign(Object.create(nav), { gpu }), configurable: true, writable: true });
    const tf = (await import('@tensorflow/tfjs-core')) as unknown as Tf;
    const { WebGPUBackend } = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { WebGPUBackend: new (d: GPUDevice, info?: GPUAdapterInfo) => unknown };
    const dev = runtime().device;
    tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new WebGPUBackend(dev.gpu, dev.info), 10);
    await tf.setBackend('webgpu');
    return tf;
  })();
  return tfPromise;
}

function nchwToNhwc(src: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let a = 0; a < n; a++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((a * h + y) * w + x) * c + ch] = src[((a * c + ch) * h + y) * w + x];
  }
  return out;
}

function oihwToHwio(src: Float32Array, o: number, i: number, k: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    out[((y * k + x) * i + b) * o + a] = src[((a * i + b) * k + y) * k + x];
  }
  return out;
}

function tfjsPeer(): Variant<ConvProblem> {
  return {
    name: 'tfjs-webgpu',
    peer: true,
    async setup(p, copies) {
      const tf = await loadTf();
      const d = dataFor(p);
      const g = p.g;
      const xh = nchwToNhwc(d.x, g.n, g.c, g.h, g.w);
      const dyh = nchwToNhwc(d.dy, g.n, g.oc, p.oh, p.ow);
      const xs: TfTensor[] = [];
      const dys: TfTensor[] = [];
      for (let c = 0; c < copies; c++) {
        xs.push(tf.tensor(xh, [g.n, g.h, g.w, g.c]));
        dys.push(tf.tensor(dyh, [g.n, p.oh, p.ow, g.oc]));
      }
      const f = tf.tensor(oihwToHwio(d.w, g.oc, g.c, g.k), [g.k, g.k, g.c, g.oc]);
      const dev = runtime().device;
      let out: TfTensor | null = null;
      return {
        run(i) {
          out?.dispose();
          const strides: [number, number] = [g.s, g.s];
          if (p.pass === 'fwd') out = tf.conv2d(xs[i], f, strides, g.p, 'NHWC');
          else if (p.pass === 'dgrad') {
            out = tf.engine().runKernel('Conv2DBackpropInput', { dy: dys[i], filter: f }, { strides, pad: g.p, dataFormat: 'NHWC', inputShape: [g.n, g.h, g.w, g.c] });
          } else {
            out = tf.engine().runKernel('Conv2DBackpropFilter', { x: xs[i], dy: dys[i] }, { strides, pad: g.p, dataFormat: 'NHWC', filterShape: [g.k, g.k, g.c, g.oc] });
          }
        },
        flush() {
          const be = tf.backend();
          be.endComputePassEncoder();
          if (be.commandEncoder) be.submitQueue();
        },
        done: () => dev.gpu.queue.onSubmittedWorkDone(),
        output: () => out!.data(),
        dispose() {
          out?.dispose();
          for (const t of [...xs, ...dys, f]) t.dispose();
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------ PyTorch peer

const TORCH_SCRIPT = String.raw`
from torch_peer import torch, dev, problems, time_problem
import torch.nn.functional as F
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
for p in problems():
    g = p['g']
    x = torch.rand(g['n'], g['c'], g['h'], g['w'], device=dev) * 2 - 1
    w = torch.rand(g['oc'], g['c'], g['k'], g['k'], device=dev) * 2 - 1
    dy = torch.rand(g['n'], g['oc'], p['oh'], p['ow'], device=dev) * 2 - 1
    def run():
        if p['pass'] == 'fwd': return F.conv2d(x, w, None, g['s'], g['p'])
        if p['pass'] == 'dgrad': return torch.nn.grad.conv2d_input(x.shape, w, dy, g['s'], g['p'])
        return torch.nn.grad.conv2d_weight(x, w.shape, dy, g['s'], g['p'])
    time_problem(p, run)
`;

function torchRows(ps: ConvProblem[], budget: number): Row[] {
  return runTorchPeer(TORCH_SCRIPT, ps, (p) => ({ pass: p.pass, g: p.g, oh: p.oh, ow: p.ow }), budget, 'torch-cudnn', 'fp32, TF32 off');
}

// ------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const { flags, values } = parseArgs(process.argv.slice(2));
  await init();
  const dev = runtime().device;
  const budget = Number(values.get('budget') ?? (flags.has('quick') ? 0.5 : 1.5));
  const h = new Harness({ json: flags.has('json'), wall: flags.has('wall'), budgetSeconds: budget, minReps: flags.has('quick') ? 2 : 3 });
  const bigganBatch = Number(values.get('biggan-batch') ?? (dev.isSoftware ? 4 : 50));
  h.header({ bench: 'conv2d', bigganBatch });
  const shapeWords = values.get('shapes')?.split(',').filter(Boolean);
  const variantWords = values.get('variants')?.split(',').filter(Boolean);
  const quickSet = new Set(['wrn-g1', 'wrn-g2-in', 'wrn-g3-sc', 'biggan-g-c3-16', 'biggan-d-in']);
  let ps = problems(bigganBatch);
  if (shapeWords) ps = ps.filter((p) => shapeWords.some((w) => p.name.includes(w)));
  else if (flags.has('quick')) ps = ps.filter((p) => quickSet.has(p.key));
  let vs: Variant<ConvProblem>[] = [ours()];
  const bkAlt = values.get('bk-alt');
  if (bkAlt) vs.push(ours({ bk: Number(bkAlt) }));
  if (flags.has('nosg')) vs.push(ours({ noSg: true }));
  if (flags.has('baseline')) vs.push(ours({ own: true }));
  if (flags.has('simd8')) vs.push(ours({ simd8: true }));
  if (!flags.has('no-tfjs')) vs.push(tfjsPeer());
  if (variantWords) vs = vs.filter((v) => variantWords.some((w) => v.name.includes(w)));
  for (const p of ps) {
    for (const v of vs) await h.run(p, [v], validator(v.name.startsWith('ours') ? 'nchw' : 'tf'));
  }
  if (flags.has('torch')) {
    for (const r of torchRows(ps, budget)) {
      h.rows.push(r);
      const line = `${r.problem.padEnd(18)} ${r.shape.padEnd(30)} ${r.variant.padEnd(14)} ${r.ms!.toFixed(3).padStart(10)} ${`${r.msMin!.toFixed(3)}-${r.msMax!.toFixed(3)}`.padStart(17)} ${r.gflops!.toFixed(1).padStart(9)} ${r.gbps!.toFixed(1).padStart(7)} ${''.padStart(8)} ${''.padStart(11)}  ${r.note}`;
      if (flags.has('json')) {
        process.stderr.write(line + '\n');
        process.stdout.write(JSON.stringify(r) + '\n');
      } else process.stdout.write(line + '\n');
    }
  }
  // ratio summary: ours vs each peer, per problem
  const summary: string[] = [];
  for (const p of ps) {
    const peers = h.rows.filter((r) => r.problem === p.name && r.peer && r.status === 'ok');
    for (const mine of h.rows.filter((r) => r.problem === p.name && r.variant.startsWith('ours') && r.status === 'ok')) {
      const cpu = (q: Row): string => {
        const a = mine.gflopsCpu;
        const b = q.gflopsCpu;
        return a && b ? ` (cpu time ${(a / b).toFixed(2)}x)` : '';
      };
      const who = mine.variant === 'ours' ? '' : ` [${mine.variant}]`;
      if (peers.length) summary.push(`${(p.name + who).padEnd(32)} ${peers.map((q) => `${q.variant} / ours = ${(q.ms! / mine.ms!).toFixed(2)}x${cpu(q)}`).join(', ')}`);
    }
  }
  const log = flags.has('json') ? (s: string) => process.stderr.write(s + '\n') : (s: string) => process.stdout.write(s + '\n');
  if (summary.length) {
    log('\nspeed-up of ours over each peer (peer ms / our ms; > 1 means ours is faster; in brackets the same by CPU time, steadier on a shared software adapter):');
    for (const s of summary) log(s);
  }
  const failed = h.rows.filter((r) => r.status === 'failed');
  if (failed.length > 0) process.stderr.write(`${failed.length} variant(s) failed validation and were not timed\n`);
  shutdown();
  process.exit(failed.length > 0 ? 1 : 0);
}

await main();
