/**
 * batchNorm2d with a fused activation (act(bn(x)) in bn_fwd, act'(y) folded into bn_bwd) and with
 * gamma/beta read where they lie (views at an offset, as parameters inside the arena): the output
 * against the unfused ops bit for bit, the gradients against central finite differences of a
 * float64 reference, on odd sizes, training and evaluation, per-channel and per-sample affine.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import {
  batchNorm2d, backward, relu, leakyRelu, tanh, sigmoid, runtime, tensor, type Tensor, type BatchNormActivation,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

const EPS = 1e-5;
const SLOPE = 0.2;
type Affine = 'per-channel' | 'per-sample' | 'none';

interface Case {
  shape: [number, number, number, number];
  act: Exclude<BatchNormActivation, 'none'>;
  affine: Affine;
  training: boolean;
}

const actRef: Record<Case['act'], (v: number) => number> = {
  relu: (v) => Math.max(v, 0),
  leaky_relu: (v) => (v < 0 ? SLOPE * v : v),
  tanh: Math.tanh,
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
};

const actOp: Record<Case['act'], (t: Tensor) => Tensor> = {
  relu: (t) => relu(t),
  leaky_relu: (t) => leakyRelu(t, SLOPE),
  tanh: (t) => tanh(t),
  sigmoid: (t) => sigmoid(t),
};

/** Float64 act(bn(x)); statistics from the batch (training) or the given running estimates. */
function reference(c: Case, x: Float64Array, gamma: Float64Array | null, beta: Float64Array | null, running: { mean: Float64Array; v: Float64Array }): Float64Array {
  const [N, C, H, W] = c.shape;
  const HW = H * W;
  const y = new Float64Array(x.length);
  for (let ch = 0; ch < C; ch++) {
    let m = running.mean[ch];
    let v = running.v[ch];
    if (c.training) {
      m = 0;
      v = 0;
      for (let n = 0; n < N; n++) for (let s = 0; s < HW; s++) m += x[(n * C + ch) * HW + s];
      m /= N * HW;
      for (let n = 0; n < N; n++) for (let s = 0; s < HW; s++) v += (x[(n * C + ch) * HW + s] - m) ** 2;
      v /= N * HW;
    }
    for (let n = 0; n < N; n++)
      for (let s = 0; s < HW; s++) {
        const i = (n * C + ch) * HW + s;
        const ai = gamma && gamma.length === N * C ? n * C + ch : ch;
        const xh = (x[i] - m) / Math.sqrt(v + EPS);
        y[i] = actRef[c.act](gamma && beta ? xh * gamma[ai] + beta[ai] : xh);
      }
  }
  return y;
}

/** A view of `values` at element offset `at` inside a larger poisoned tensor (an arena slot). */
function atOffset(values: Float64Array, shape: number[], at: number, keepAlive: Tensor[]): Tensor {
  const arena = new Float32Array(at + values.length + 3).fill(Number.NaN);
  arena.set(Float32Array.from(values), at);
  const whole = tensor(arena, [arena.length]);
  keepAlive.push(whole);
  const strides = shape.length === 1 ? [1] : [shape[1], 1];
  const v = whole.view(shape, strides, at);
  v.requiresGrad = true;
  return v;
}

const sameBits = (a: Float32Array, b: Float32Array): number => {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let diff = 0;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) diff++;
  return diff;
};

async function check(c: Case, seed: number): Promise<void> {
  const [N, C, H, W] = c.shape;
  const size = N * C * H * W;
  const xv = asF32(randArray(size, seed, -1.5, 2));
  const gv = asF32(randArray(size, seed + 1));
  const an = c.affine === 'per-sample' ? N * C : C;
  const gamma = c.affine === 'none' ? null : asF32(randArray(an, seed + 2, -1.5, 1.5));
  const beta = c.affine === 'none' ? null : asF32(randArray(an, seed + 3, -0.5, 0.5));
  const running = { mean: asF32(randArray(C, seed + 4, -0.3, 0.3)), v: asF32(randArray(C, seed + 5, 0.5, 2)) };
  const what = `${c.act} ${c.affine} ${c.training ? 'training' : 'eval'} [${c.shape.join(', ')}]`;

  const owned: Tensor[] = [];
  const ashape = c.affine === 'per-sample' ? [N, C] : [C];
  const w = gamma ? atOffset(gamma, ashape, 7, owned) : null;
  const b = beta ? atOffset(beta, ashape, 13, owned) : null;
  const x = t32(xv, [N, C, H, W], true);
  const rm = t32(running.mean, [C]);
  const rv = t32(running.v, [C]);
  const opts = { training: c.training, runningMean: c.training ? null : rm, runningVar: c.training ? null : rv, negativeSlope: SLOPE };

  // the forward: the fused output against the unfused ops, bit for bit
  const fused = batchNorm2d(x, w, b, { ...opts, activation: c.act });
  const plain = batchNorm2d(x, w, b, opts);
  const unfused = actOp[c.act](plain);
  const fy = (await fused.data()) as Float32Array;
  expect(sameBits(fy, (await unfused.data()) as Float32Array), `${what}: elements whose bits differ from the unfused ops`).toBe(0);
  const ref = reference(c, xv, gamma, beta, running);
  expectClose(Float64Array.from(fy), ref, { atol: 2e-5, rtol: 1e-4, what: `${what}: forward` });

  // the backward against central differences of the float64 reference
  backward(fused, t32(gv, [N, C, H, W]));
  const loss = (xx: Float64Array, gg: Float64Array | null, bb: Float64Array | null) => dot(reference(c, xx, gg, bb, running), gv);
  expectClose(await read(x.grad!), finiteDiff((xx) => loss(xx, gamma, beta), xv), { atol: 5e-4, rtol: 2e-3, what: `${what}: dx` });
  if (w && b && gamma && beta) {
    expectClose(await read(w.grad!), finiteDiff((gg) => loss(xv, gg, beta), gamma), { atol: 5e-4, rtol: 2e-3, what: `${what}: dgamma` });
    expectClose(await read(b.grad!), finiteDiff((bb) => loss(xv, gamma, bb), beta), { atol: 5e-4, rtol: 2e-3, what: `${what}: dbeta` });
  }
  for (const t of [fused, plain, unfused, x, rm, rv, w, b, x.grad, w?.grad, b?.grad, ...owned]) t?.dispose();
}

describe('batchNorm2d with a fused activation', () => {
  const shapes: Case['shape'][] = [[1, 3, 5, 7], [2, 5, 3, 3], [3, 3, 7, 5]];
  let seed = 100;
  for (const shape of shapes) {
    for (const training of [true, false]) {
      for (const affine of ['per-channel', 'per-sample', 'none'] as const) {
        it(`relu, ${affine} affine, ${training ? 'training' : 'evaluation'}, [${shape.join(', ')}]`, async () => {
          await check({ shape, act: 'relu', affine, training }, (seed += 10));
        });
      }
    }
  }
  for (const act of ['leaky_relu', 'tanh', 'sigmoid'] as const) {
    it(`${act}, per-channel affine, training and evaluation, [2, 3, 5, 3]`, async () => {
      await check({ shape: [2, 3, 5, 3], act, affine: 'per-channel', training: true }, (seed += 10));
      await check({ shape: [2, 3, 5, 3], act, affine: 'per-channel', training: false }, (seed += 10));
    });
  }

  it('the fused backward gives the unfused ops gradients (relu, per-channel, training)', async () => {
    const [N, C, H, W] = [3, 5, 5, 3];
    const xv = randArray(N * C * H * W, 7, -1, 2);
    const gv = randArray(N * C * H * W, 8);
    const grads: Float32Array[][] = [];
    for (const fusedRelu of [true, false]) {
      const x = t32(xv, [N, C, H, W], true);
      const w = t32(randArray(C, 9, -1, 1.5), [C], true);
      const b = t32(randArray(C, 10, -0.5, 0.5), [C], true);
      const bn = batchNorm2d(x, w, b, { activation: fusedRelu ? 'relu' : 'none' });
      const y = fusedRelu ? bn : relu(bn);
      backward(y, t32(gv, [N, C, H, W]));
      grads.push([(await x.grad!.data()) as Float32Array, (await w.grad!.data()) as Float32Array, (await b.grad!.data()) as Float32Array]);
      for (const t of new Set([x, w, b, bn, y, x.grad, w.grad, b.grad])) t?.dispose();
    }
    for (let k = 0; k < 3; k++) expect(sameBits(grads[0][k], grads[1][k]), `gradient ${k}: elements whose bits differ`).toBe(0);
  });

  it('records one dispatch each way with weight and bias at arena offsets (no copies)', () => {
    const owned: Tensor[] = [];
    const w = atOffset(asF32(randArray(3, 1, 0.5, 1.5)), [3], 5, owned);
    const b = atOffset(asF32(randArray(3, 2)), [3], 11, owned);
    const x = t32(randArray(2 * 3 * 3 * 3, 3), [2, 3, 3, 3], true);
    const g = t32(randArray(2 * 3 * 3 * 3, 4), [2, 3, 3, 3]);
    const stats = runtime().device.stats;
    const before = stats.dispatches;
    const y = batchNorm2d(x, w, b, { activation: 'relu' });
    expect(stats.dispatches - before).toBe(1);
    const mid = stats.dispatches;
    backward(y, g);
    expect(stats.dispatches - mid).toBe(1);
    expect(w.grad!.offset).toBe(0);
    expect(b.grad!.offset).toBe(0);
    for (const t of [x, g, y, w, b, x.grad, w.grad, b.grad, ...owned]) t?.dispose();
  });

  it('a non-contiguous weight is read through a copy', async () => {
    const C = 3;
    const big = t32([1.5, 9, -0.5, 9, 2, 9], [6]);
    const w = big.view([C], [2], 0);
    const bias = t32([0.1, -0.2, 0.3], [C]);
    const ref = t32([1.5, -0.5, 2], [C]);
    const x = t32(randArray(2 * C * 3, 5), [2, C, 3, 1]);
    const y = batchNorm2d(x, w, bias, { activation: 'relu' });
    const z = batchNorm2d(x, ref, bias, { activation: 'relu' });
    expect(Array.from(await y.data())).toEqual(Array.from(await z.data()));
    for (const t of [big, w, bias, ref, x, y, z]) t.dispose();
  });

  it('refuses activations the backward cannot read from the output', () => {
    const x = t32(randArray(2 * 3 * 2 * 2, 6), [2, 3, 2, 2]);
    expect(() => batchNorm2d(x, null, null, { activation: 'gelu' as BatchNormActivation })).toThrow(/batchNorm2d: activation must be 'none', 'relu'/);
    expect(() => batchNorm2d(x, null, null, { activation: 'leaky_relu', negativeSlope: 0 })).toThrow(/negativeSlope must be positive/);
    x.dispose();
  });
});
