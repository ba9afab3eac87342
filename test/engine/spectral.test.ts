import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, randnArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { spectralNormWeight, backward, tensor } from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

const EPS = 1e-12;

function normalize(x: Float64Array): Float64Array {
  const n = Math.max(Math.hypot(...x), EPS);
  return x.map((v) => v / n);
}

/** One PyTorch power-iteration step on W [h, k]; returns the new u, v and sigma. */
function powerRef(w: Float64Array, h: number, k: number, u0: Float64Array, v0: Float64Array, iterate: boolean) {
  let u = u0, v = v0;
  if (iterate) {
    const wtu = new Float64Array(k);
    for (let i = 0; i < h; i++) for (let j = 0; j < k; j++) wtu[j] += w[i * k + j] * u[i];
    v = normalize(wtu);
    const wv = new Float64Array(h);
    for (let i = 0; i < h; i++) for (let j = 0; j < k; j++) wv[i] += w[i * k + j] * v[j];
    u = normalize(wv);
  }
  return { u, v, sigma: sigmaRef(w, h, k, u, v) };
}

function sigmaRef(w: ArrayLike<number>, h: number, k: number, u: ArrayLike<number>, v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < h; i++) for (let j = 0; j < k; j++) s += u[i] * w[i * k + j] * v[j];
  return s;
}

describe('spectralNormWeight', () => {
  for (const [shape, training] of [[[5, 3, 3, 3], true], [[7, 9], true], [[5, 3, 3, 3], false]] as const) {
    it(`${training ? 'training' : 'evaluation'} on weight [${shape.join(', ')}]: state update, W / sigma and its gradient`, async () => {
      const h = shape[0];
      const k = shape.reduce((a, b) => a * b, 1) / h;
      const wv = asF32(randArray(h * k, 1));
      const u0 = asF32(normalize(randnArray(h, 2)));
      const v0 = asF32(normalize(randnArray(k, 3)));
      const gv = asF32(randArray(h * k, 4));
      const ref = powerRef(wv, h, k, u0, v0, training);
      const f = (w: Float64Array) => dot(w.map((x) => x / sigmaRef(w, h, k, ref.u, ref.v)), gv);
      const c = dot(wv.map((x) => x / ref.sigma), gv);
      const dwRef = wv.map((_, idx) => (gv[idx] - c * ref.u[Math.floor(idx / k)] * ref.v[idx % k]) / ref.sigma);
      expectClose(dwRef, finiteDiff(f, wv), { atol: 1e-6, rtol: 1e-5, what: 'ref dW vs FD' });

      const w = t32(wv, shape, true);
      const u = t32(u0, [h]);
      const v = t32(v0, [k]);
      const y = spectralNormWeight(w, u, v, { training });
      expectClose(await read(u), ref.u, { atol: 1e-5, rtol: 1e-4, what: 'u' });
      expectClose(await read(v), ref.v, { atol: 1e-5, rtol: 1e-4, what: 'v' });
      expectClose(await read(y), wv.map((x) => x / ref.sigma), { atol: 1e-5, rtol: 1e-4, what: 'W / sigma' });
      backward(y, t32(gv, shape));
      expectClose(await read(w.grad!), dwRef, { atol: 1e-5, rtol: 1e-4, what: 'dW' });
      for (const t of [w, u, v, y, w.grad!]) t.dispose();
    });
  }

  it('converges to the largest singular value over repeated forwards', async () => {
    // diag(3, 2, 1) padded: sigma_max = 3
    const wv = new Float64Array(12);
    wv[0] = 3; wv[5] = 2; wv[10] = 1;
    const w = t32(wv, [3, 4]);
    const u = t32(normalize(Float64Array.of(0.3, 0.5, 0.8)), [3]);
    const v = t32(normalize(Float64Array.of(0.2, 0.4, 0.6, 0.1)), [4]);
    let y = spectralNormWeight(w, u, v, { powerIterations: 30 });
    expect((await read(y))[0]).toBeCloseTo(1, 4);
    y.dispose();
    y = spectralNormWeight(w, u, v, { training: false });
    expect((await read(y))[5]).toBeCloseTo(2 / 3, 4);
    for (const t of [w, u, v, y]) t.dispose();
  });

  it('rejects state vectors of the wrong length, naming the op and shapes', () => {
    const w = tensor(new Float32Array(12).fill(1), [3, 4]);
    const u = tensor(new Float32Array(4).fill(1), [4]);
    const v = tensor(new Float32Array(4).fill(1), [4]);
    expect(() => spectralNormWeight(w, u, v)).toThrow(/spectralNormWeight: u must be a contiguous f32 vector of length 3 .* for weight \[3, 4\], got f32 \[4\]/);
    for (const t of [w, u, v]) t.dispose();
  });
});
