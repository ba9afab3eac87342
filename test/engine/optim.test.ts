/**
 * Optimizers against a float64 reference of PyTorch's update formulas, over several steps, for
 * parameters that live in the nn arena (one fused dispatch) and plain tensors (one dispatch each);
 * gradient clipping; learning-rate schedules against values printed by PyTorch 1.13.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose } from '../helpers/reference.ts';
import { sgdRef, adamRef, type SgdOpts, type AdamState } from '../helpers/ref-optim.ts';
import {
  Parameter, releaseParameterArena, SGD, Adam, AdamW, clipGradNorm, StepLR, MultiStepLR, CosineAnnealingLR, LambdaLR,
  ReduceLROnPlateau, runtime, memoryStats, type Tensor,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});
afterAll(() => releaseParameterArena());

// Odd sizes; 2300 spans two 2048-element blocks of the multi-tensor kernel.
const SHAPES = [[37], [5, 13], [2300], [1]];

interface Setup {
  params: Tensor[];
  values: Float64Array[];
}

/** Three arena parameters and one plain tensor, with random values. */
function makeParams(seed: number): Setup {
  const values = SHAPES.map((s, i) => asF32(randArray(s.reduce((a, b) => a * b, 1), seed + i)));
  const params: Tensor[] = SHAPES.map((s, i) => {
    if (i === SHAPES.length - 1) return t32(values[i], s, true);
    const p = Parameter.empty(s);
    p.upload(Float32Array.from(values[i]));
    return p;
  });
  return { params, values };
}

function gradsFor(step: number, seed: number): Float64Array[] {
  return SHAPES.map((s, i) => asF32(randArray(s.reduce((a, b) => a * b, 1), 1000 * step + seed + i, -2, 2)));
}

function setGrads(params: Tensor[], grads: Float64Array[], skip = -1): void {
  params.forEach((p, i) => {
    if (i === skip) return;
    if (p instanceof Parameter) p.grad = t32(grads[i], p.shape);
    else {
      p.grad?.dispose();
      p.grad = t32(grads[i], p.shape);
    }
  });
}

function disposeAll(params: Tensor[]): void {
  for (const p of params) {
    if (!(p instanceof Parameter)) p.grad?.dispose();
    p.dispose();
  }
}

// ------------------------------------------------------------------ float64 references

// ------------------------------------------------------------------ tests

describe('SGD', () => {
  const variants: [string, SgdOpts][] = [
    ['momentum + dampening + weight decay', { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: false }],
    ['Nesterov + weight decay', { lr: 0.1, momentum: 0.8, dampening: 0, weightDecay: 5e-4, nesterov: true }],
    ['plain with weight decay', { lr: 0.2, momentum: 0, dampening: 0, weightDecay: 0.05, nesterov: false }],
  ];
  for (const [name, o] of variants) {
    it(`${name}: 4 steps match PyTorch's formulas`, async () => {
      const { params, values } = makeParams(11);
      const opt = new SGD(params, o);
      const ref = values.map((v) => Float64Array.from(v));
      const bufs: (Float64Array | null)[] = ref.map(() => null);
      for (let step = 0; step < 4; step++) {
        const grads = gradsFor(step, 7);
        setGrads(params, grads);
        opt.step();
        ref.forEach((p, i) => (bufs[i] = sgdRef(p, grads[i], bufs[i], o)));
      }
      for (let i = 0; i < params.length; i++) expectClose(await read(params[i]), ref[i], { atol: 1e-6, rtol: 1e-5, what: `param ${i}` });
      opt.dispose();
      disposeAll(params);
    });
  }

  it('updates all arena parameters with one dispatch, with no new pipeline when lr changes', async () => {
    const ps = [Parameter.empty([3, 7]), Parameter.empty([7]), Parameter.empty([11, 3]), Parameter.empty([11])];
    ps.forEach((p, i) => p.upload(Float32Array.from(randArray(p.size, 50 + i))));
    const opt = new SGD(ps, { lr: 0.1, momentum: 0.9 });
    const grads = ps.map((p, i) => asF32(randArray(p.size, 60 + i)));
    const rt = runtime();
    for (let s = 0; s < 3; s++) {
      ps.forEach((p, i) => (p.grad = t32(grads[i], p.shape)));
      opt.paramGroups[0].options.lr = 0.1 / (s + 1);
      const d0 = rt.device.stats.dispatches;
      const c0 = rt.kernels.compiledCount;
      opt.step();
      expect(rt.device.stats.dispatches - d0).toBe(1);
      if (s > 0) expect(rt.kernels.compiledCount).toBe(c0);
    }
    // reference: lr 0.1, 0.05, 0.0333 with momentum 0.9, same gradient every step
    for (let i = 0; i < ps.length; i++) {
      const p = asF32(randArray(ps[i].size, 50 + i));
      let buf: Float64Array | null = null;
      for (let s = 0; s < 3; s++) buf = sgdRef(p, grads[i], buf, { lr: 0.1 / (s + 1), momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false });
      expectClose(await read(ps[i]), p, { atol: 1e-6, rtol: 1e-5 });
    }
    opt.dispose();
    ps.forEach((p) => p.dispose());
  });

  it('parameter groups with their own hyper-parameters (one dispatch per group)', async () => {
    const { params, values } = makeParams(71);
    const oA: SgdOpts = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false };
    const oB: SgdOpts = { lr: 0.01, momentum: 0.9, dampening: 0, weightDecay: 0.1, nesterov: true };
    const opt = new SGD([{ params: params.slice(0, 2) }, { params: params.slice(2), lr: oB.lr, weightDecay: oB.weightDecay, nesterov: true }], { lr: oA.lr, momentum: 0.9 });
    expect(opt.paramGroups.map((g) => g.options.lr)).toEqual([0.1, 0.01]);
    const ref = values.map((v) => Float64Array.from(v));
    const bufs: (Float64Array | null)[] = ref.map(() => null);
    for (let step = 0; step < 3; step++) {
      const grads = gradsFor(step, 17);
      setGrads(params, grads);
      opt.step();
      ref.forEach((p, i) => (bufs[i] = sgdRef(p, grads[i], bufs[i], i < 2 ? oA : oB)));
    }
    for (let i = 0; i < params.length; i++) expectClose(await read(params[i]), ref[i], { atol: 1e-6, rtol: 1e-5, what: `param ${i}` });
    opt.dispose();
    disposeAll(params);
  });

  it('rejects bad hyper-parameters and parameter lists', () => {
    const p = Parameter.empty([3]);
    expect(() => new SGD([p], { lr: -1 })).toThrow(/SGD: invalid learning rate -1/);
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum/);
    expect(() => new SGD([p, p], { lr: 0.1 })).toThrow(/appears more than once/);
    expect(() => new SGD([], { lr: 0.1 })).toThrow(/empty parameter list/);
    p.dispose();
  });
});

describe('Adam / AdamW', () => {
  const variants: [string, boolean, boolean, number][] = [
    ['Adam with weight decay', false, false, 0.01],
    ['Adam amsgrad', false, true, 0],
    ['AdamW', true, false, 0.05],
    ['AdamW amsgrad', true, true, 0.02],
  ];
  for (const [name, decoupled, amsgrad, wd] of variants) {
    it(`${name}: 5 steps (lr changing) match PyTorch's formulas`, async () => {
      const { params, values } = makeParams(23);
      const lr = 0.01;
      const Cls = decoupled ? AdamW : Adam;
      const opt = new Cls(params, { lr, betas: [0.8, 0.95], eps: 1e-6, weightDecay: wd, amsgrad });
      const ref = values.map((v) => Float64Array.from(v));
      const st: AdamState[] = ref.map((p) => ({ m: new Float64Array(p.length), v: new Float64Array(p.length), vmax: new Float64Array(p.length), t: 0 }));
      for (let step = 0; step < 5; step++) {
        // the gradient shrinks over steps so amsgrad's running max differs from v
        const grads = gradsFor(step, 3).map((g) => g.map((x) => x / (1 + step)));
        setGrads(params, grads);
        const stepLr = lr * (1 - 0.1 * step);
        opt.paramGroups[0].options.lr = stepLr;
        opt.step();
        ref.forEach((p, i) => adamRef(p, grads[i], st[i], stepLr, 0.8, 0.95, 1e-6, wd, decoupled, amsgrad));
      }
      for (let i = 0; i < params.length; i++) expectClose(await read(params[i]), ref[i], { atol: 1e-6, rtol: 1e-5, what: `param ${i}` });
      opt.dispose();
      disposeAll(params);
    });
  }

  it('skips parameters without a gradient (their step count does not advance)', async () => {
    const { params, values } = makeParams(31);
    const opt = new Adam(params, { lr: 0.02 });
    const ref = values.map((v) => Float64Array.from(v));
    const st: AdamState[] = ref.map((p) => ({ m: new Float64Array(p.length), v: new Float64Array(p.length), vmax: new Float64Array(p.length), t: 0 }));
    for (let step = 0; step < 3; step++) {
      const grads = gradsFor(step, 5);
      const skip = step === 0 ? 1 : -1; // parameter 1 has no gradient in the first step
      opt.zeroGrad();
      setGrads(params, grads, skip);
      expect(params[1].grad === null).toBe(skip === 1);
      opt.step();
      ref.forEach((p, i) => {
        if (i !== skip) adamRef(p, grads[i], st[i], 0.02, 0.9, 0.999, 1e-8, 0, false, false);
      });
    }
    for (let i = 0; i < params.length; i++) expectClose(await read(params[i]), ref[i], { atol: 1e-6, rtol: 1e-5, what: `param ${i}` });
    opt.dispose();
    disposeAll(params);
  });

  it('state dict round trip: a restored optimizer continues identically', async () => {
    const a = makeParams(41);
    const b = makeParams(41);
    const optA = new AdamW(a.params, { lr: 0.01, amsgrad: true });
    for (let s = 0; s < 2; s++) {
      setGrads(a.params, gradsFor(s, 9));
      optA.step();
    }
    // copy A's parameters into B, then B's optimizer from A's state
    for (let i = 0; i < a.params.length; i++) {
      const v = (await a.params[i].data()) as Float32Array;
      const p = b.params[i];
      if (p instanceof Parameter) p.upload(v);
      else runtime().device.upload(p.bufferFor('test'), p.offset * 4, v);
    }
    const state = await optA.stateDict();
    expect([...state.tensors.keys()]).toContain('state.2.max_exp_avg_sq');
    expect(state.meta.steps).toEqual([2, 2, 2, 2]);
    const optB = new AdamW(b.params, { lr: 0.5 });
    optB.loadStateDict(state);
    expect(optB.paramGroups[0].options.lr).toBe(0.01);
    for (const [opt, ps] of [[optA, a.params], [optB, b.params]] as const) {
      setGrads(ps, gradsFor(2, 9));
      opt.step();
    }
    for (let i = 0; i < a.params.length; i++) expectClose(await read(b.params[i]), await read(a.params[i]), { atol: 0, rtol: 0 });
    expect(() => new SGD(b.params, { lr: 0.1 }).loadStateDict(state)).toThrow(/SGD.loadStateDict: state of a AdamW optimizer/);
    optA.dispose();
    optB.dispose();
    disposeAll(a.params);
    disposeAll(b.params);
  });
});

describe('clipGradNorm', () => {
  for (const maxNorm of [1.5, 1e3]) {
    it(`maxNorm ${maxNorm}: norm and scaled gradients as torch.nn.utils.clip_grad_norm_`, async () => {
      const { params } = makeParams(51);
      const grads = gradsFor(0, 13);
      setGrads(params, grads);
      const rt = runtime();
      const r0 = rt.device.stats.readbacks;
      const norm = clipGradNorm(params, maxNorm);
      expect(rt.device.stats.readbacks).toBe(r0);
      let sq = 0;
      for (const g of grads) for (const x of g) sq += x * x;
      const want = Math.sqrt(sq);
      const coef = Math.min(1, maxNorm / (want + 1e-6));
      expect(norm.shape).toEqual([]);
      expectClose([await norm.item()], [want], { rtol: 1e-5 });
      for (let i = 0; i < params.length; i++) expectClose(await read(params[i].grad!), grads[i].map((x) => x * coef), { atol: 1e-6, rtol: 1e-5 });
      norm.dispose();
      disposeAll(params);
    });
  }

  it('returns 0 without gradients and rejects other norms', async () => {
    const p = Parameter.empty([4]);
    const n = clipGradNorm([p], 1);
    expect(await n.item()).toBe(0);
    n.dispose();
    expect(() => clipGradNorm([p], 1, 1)).toThrow(/only the 2-norm/);
    expect(() => clipGradNorm([p], -1)).toThrow(/maxNorm must be/);
    p.dispose();
  });
});

describe('learning-rate schedules (values printed by PyTorch 1.13)', () => {
  // from torch.optim.lr_scheduler with SGD(lr=0.1): lr read before each epoch's step()
  const torchValues = {
    step: [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125],
    multistep: [0.1, 0.1, 0.03, 0.03, 0.03, 0.0026999999999999997, 0.0026999999999999997, 0.0026999999999999997, 0.0008099999999999998, 0.0008099999999999998],
    cosine: [0.1, 0.09554359905560886, 0.08305704108364301, 0.06501344202803415, 0.04498655797196586, 0.026942958916356993, 0.014456400944391143, 0.01],
    lambda: [0.1, 0.095, 0.09025, 0.0857375, 0.081450625, 0.07737809374999999],
    plateau: [0.1, 0.1, 0.1, 0.1, 0.025, 0.025, 0.025, 0.025, 0.025, 0.00625, 0.00625, 0.00625, 0.00625, 0.00625, 0.0015625, 0.0015625],
  };
  const metrics = [1.0, 0.9, 0.95, 0.91, 0.9, 0.92, 0.85, 0.86, 0.87, 0.88, 0.849, 0.8, 0.9, 0.9, 0.9, 0.9];

  function fakeOpt() {
    return { paramGroups: [{ options: { lr: 0.1 }, initialLr: 0.1 }] };
  }
  function run(make: (o: ReturnType<typeof fakeOpt>) => { step: () => void }, n: number): number[] {
    const o = fakeOpt();
    const s = make(o);
    const out: number[] = [];
    for (let e = 0; e < n; e++) {
      out.push(o.paramGroups[0].options.lr);
      s.step();
    }
    return out;
  }

  it('StepLR, MultiStepLR (repeated milestone), CosineAnnealingLR, LambdaLR', () => {
    expectClose(run((o) => new StepLR(o, 3, 0.5), 10), torchValues.step, { atol: 0, rtol: 1e-12 });
    expectClose(run((o) => new MultiStepLR(o, [2, 5, 5, 8], 0.3), 10), torchValues.multistep, { atol: 0, rtol: 1e-12 });
    expectClose(run((o) => new CosineAnnealingLR(o, 7, 0.01), 8), torchValues.cosine, { atol: 0, rtol: 1e-12 });
    expectClose(run((o) => new LambdaLR(o, (e) => 0.95 ** e), 6), torchValues.lambda, { atol: 0, rtol: 1e-12 });
  });

  it('ReduceLROnPlateau (factor 1/4, patience 1, cooldown 1)', () => {
    const o = fakeOpt();
    const s = new ReduceLROnPlateau(o, { factor: 0.25, patience: 1, cooldown: 1 });
    const out: number[] = [];
    for (const m of metrics) {
      out.push(o.paramGroups[0].options.lr);
      s.step(m);
    }
    expectClose(out, torchValues.plateau, { atol: 0, rtol: 1e-12 });
    // resumed halfway from JSON state (a fresh scheduler's best is +Infinity, which JSON lacks)
    const fresh = new ReduceLROnPlateau(fakeOpt(), { factor: 0.25, patience: 1, cooldown: 1 });
    expect(JSON.parse(JSON.stringify(fresh.stateDict())).best).toBe('Infinity');
    const o2 = fakeOpt();
    const s2 = new ReduceLROnPlateau(o2, { factor: 0.25, patience: 1, cooldown: 1 });
    const half = fakeOpt();
    const s1 = new ReduceLROnPlateau(half, { factor: 0.25, patience: 1, cooldown: 1 });
    for (const m of metrics.slice(0, 8)) s1.step(m);
    s2.loadStateDict(JSON.parse(JSON.stringify(s1.stateDict())));
    o2.paramGroups[0].options.lr = half.paramGroups[0].options.lr;
    const rest: number[] = [];
    for (const m of metrics.slice(8)) {
      rest.push(o2.paramGroups[0].options.lr);
      s2.step(m);
    }
    expectClose(rest, torchValues.plateau.slice(8), { atol: 0, rtol: 1e-12 });
  });

  it('a schedule drives a real optimizer', () => {
    const p = Parameter.empty([2]);
    const opt = new SGD([p], { lr: 0.4 });
    const s = new StepLR(opt, 2, 0.5);
    s.step();
    s.step();
    expect(opt.paramGroups[0].options.lr).toBe(0.2);
    expect(s.getLastLr()).toEqual([0.2]);
    expect(() => new StepLR(opt, 0)).toThrow(/stepSize must be a positive integer/);
    opt.dispose();
    p.dispose();
  });
});

describe('memory', () => {
  it('optimizer steps allocate nothing after the first', () => {
    const { params } = makeParams(61);
    const opt = new Adam(params, { lr: 1e-3, amsgrad: true });
    const pool = runtime().device.pool;
    let after1: [number, number, number] | null = null;
    for (let s = 0; s < 5; s++) {
      setGrads(params, gradsFor(s, 1));
      opt.step();
      const n = clipGradNorm(params, 1);
      n.dispose();
      opt.zeroGrad();
      const ms = memoryStats();
      const st = pool.stats();
      if (!after1) after1 = [ms.storages, st.live, st.bytes];
      else expect([ms.storages, st.live, st.bytes]).toEqual(after1);
    }
    opt.dispose();
    disposeAll(params);
  });
});
