import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { avgPool2d, sumPool2d, maxPool2d, globalAvgPool2d, upsampleNearest2d, backward, tensor, type Tensor } from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

interface P { n: number; c: number; h: number; w: number; k: number; s: number; p: number }

/** Float64 window pooling: returns the output and, per output, its (input index, weight) taps. */
function poolRef(g: P, x: ArrayLike<number>, kind: 'avg' | 'sum' | 'max', countPad = true) {
  const oh = Math.floor((g.h + 2 * g.p - g.k) / g.s) + 1;
  const ow = Math.floor((g.w + 2 * g.p - g.k) / g.s) + 1;
  const y = new Float64Array(g.n * g.c * oh * ow);
  const taps: [number, number][][] = [];
  for (let pl = 0; pl < g.n * g.c; pl++)
    for (let a = 0; a < oh; a++)
      for (let b = 0; b < ow; b++) {
        const hs = a * g.s - g.p, ws = b * g.s - g.p;
        const he = Math.min(hs + g.k, g.h + g.p), we = Math.min(ws + g.k, g.w + g.p);
        const inside: number[] = [];
        for (let i = Math.max(hs, 0); i < Math.min(he, g.h); i++) for (let j = Math.max(ws, 0); j < Math.min(we, g.w); j++) inside.push((pl * g.h + i) * g.w + j);
        const div = countPad ? (he - hs) * (we - ws) : inside.length;
        let t: [number, number][];
        if (kind === 'max') {
          let best = inside[0];
          for (const i of inside) if (x[i] > x[best]) best = i;
          t = [[best, 1]];
        } else {
          t = inside.map((i) => [i, kind === 'avg' ? 1 / div : 1]);
        }
        const o = (pl * oh + a) * ow + b;
        taps[o] = t;
        y[o] = t.reduce((acc, [i, wgt]) => acc + wgt * x[i], 0);
      }
  return { y, taps, oh, ow };
}

function tapsBack(taps: [number, number][][], nIn: number, gy: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(nIn);
  taps.forEach((t, o) => t.forEach(([i, wgt]) => (dx[i] += wgt * gy[o])));
  return dx;
}

async function checkOp(name: string, g: P, run: (x: Tensor) => Tensor, ref: (x: Float64Array) => { y: Float64Array; taps: [number, number][][] }, seed: number): Promise<void> {
  const nIn = g.n * g.c * g.h * g.w;
  const xv = asF32(randArray(nIn, seed, -2, 2));
  const r = ref(xv);
  const gy = asF32(randArray(r.y.length, seed + 1));
  const dxRef = tapsBack(r.taps, nIn, gy);
  // max is piecewise linear: finite differences hold away from ties (random inputs have none)
  expectClose(dxRef, finiteDiff((x) => dot(ref(x).y, gy), xv, 1e-4), { atol: 1e-6, rtol: 1e-5, what: `${name}: ref dx vs FD` });
  const x = t32(xv, [g.n, g.c, g.h, g.w], true);
  const y = run(x);
  expectClose(await read(y), r.y, { atol: 1e-5, rtol: 1e-5, what: `${name}: forward` });
  backward(y, t32(gy, y.shape as number[]));
  expectClose(await read(x.grad!), dxRef, { atol: 1e-5, rtol: 1e-5, what: `${name}: dx` });
  for (const t of [x, y, x.grad!]) t.dispose();
}

describe('pooling', () => {
  const shapes: P[] = [
    { n: 2, c: 3, h: 7, w: 9, k: 3, s: 2, p: 1 },
    { n: 1, c: 2, h: 9, w: 7, k: 2, s: 2, p: 0 },
    { n: 2, c: 2, h: 7, w: 9, k: 5, s: 1, p: 2 },
    { n: 1, c: 3, h: 8, w: 8, k: 8, s: 8, p: 0 }, // WRN's final avg_pool2d(out, 8)
  ];
  shapes.forEach((g, si) => {
    const tag = `k${g.k} s${g.s} p${g.p} on ${g.h}x${g.w}`;
    it(`average (count_include_pad) ${tag}`, () => checkOp('avg', g, (x) => avgPool2d(x, g.k, { stride: g.s, padding: g.p }), (x) => poolRef(g, x, 'avg'), 10 + si));
    it(`max ${tag}`, () => checkOp('max', g, (x) => maxPool2d(x, g.k, { stride: g.s, padding: g.p }), (x) => poolRef(g, x, 'max'), 20 + si));
  });
  it('average without the padding in the divisor', () => {
    const g = { n: 2, c: 3, h: 7, w: 9, k: 3, s: 2, p: 1 };
    return checkOp('avg', g, (x) => avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }), (x) => poolRef(g, x, 'avg', false), 30);
  });
  it('sum', () => {
    const g = { n: 2, c: 3, h: 7, w: 9, k: 3, s: 2, p: 1 };
    return checkOp('sum', g, (x) => sumPool2d(x, 3, { stride: 2, padding: 1 }), (x) => poolRef(g, x, 'sum'), 31);
  });
  it('global average', async () => {
    const g = { n: 2, c: 3, h: 7, w: 9, k: 0, s: 1, p: 0 };
    const ref = (x: Float64Array) => {
      const y = new Float64Array(6);
      const taps: [number, number][][] = [];
      for (let pl = 0; pl < 6; pl++) {
        taps[pl] = [];
        for (let i = 0; i < 63; i++) {
          y[pl] += x[pl * 63 + i] / 63;
          taps[pl].push([pl * 63 + i, 1 / 63]);
        }
      }
      return { y, taps };
    };
    await checkOp('gap', g, (x) => globalAvgPool2d(x), ref, 32);
  });
  it('nearest upsampling x2 and x3', async () => {
    for (const s of [2, 3]) {
      const g = { n: 2, c: 3, h: 5, w: 7, k: 0, s: 1, p: 0 };
      const ref = (x: Float64Array) => {
        const H = 5 * s, W = 7 * s;
        const y = new Float64Array(6 * H * W);
        const taps: [number, number][][] = [];
        for (let pl = 0; pl < 6; pl++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
          const src = (pl * 5 + Math.floor(i / s)) * 7 + Math.floor(j / s);
          const o = (pl * H + i) * W + j;
          y[o] = x[src];
          taps[o] = [[src, 1]];
        }
        return { y, taps };
      };
      await checkOp(`up${s}`, g, (x) => upsampleNearest2d(x, s), ref, 33 + s);
    }
  });
  it('max keeps the first of equal maxima', async () => {
    const x = t32([1, 5, 5, 2, 5, 0, 3, 1, 4], [1, 1, 3, 3], true);
    const y = maxPool2d(x, 2, { stride: 1 });
    expectClose(await read(y), [5, 5, 5, 5], { atol: 0, rtol: 0 });
    backward(y, t32([1, 10, 100, 1000], [1, 1, 2, 2]));
    expectClose(await read(x.grad!), [0, 11, 0, 0, 1100, 0, 0, 0, 0], { atol: 0, rtol: 0 });
    for (const t of [x, y, x.grad!]) t.dispose();
  });
});

describe('pooling bad input', () => {
  it('names the op and the shapes', () => {
    const x = tensor(new Float32Array(2 * 3 * 7 * 9).fill(1), [2, 3, 7, 9]);
    const x3 = tensor(new Float32Array(3 * 7 * 9).fill(1), [3, 7, 9]);
    expect(() => maxPool2d(x3, 2)).toThrow(/maxPool2d: input must be 4-D \(N, C, H, W\), got shape \[3, 7, 9\]/);
    expect(() => avgPool2d(x, 11)).toThrow(/avgPool2d: kernel 11x11 is larger than the padded input 7x9 \(input \[2, 3, 7, 9\]\)/);
    expect(() => avgPool2d(x, 3, { padding: 2 })).toThrow(/avgPool2d: padding 2x2 must be at most half the kernel 3x3/);
    expect(() => upsampleNearest2d(x3)).toThrow(/upsampleNearest2d: input must be 4-D/);
    expect(() => upsampleNearest2d(x, 1.5)).toThrow(/upsampleNearest2d: scale must be a positive integer/);
    x.dispose();
    x3.dispose();
  });
});
