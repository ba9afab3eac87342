/**
 * Float64 references for the convolution, pooling and normalisation tests: plain loops, the
 * definitions themselves, with hand-derived backward passes (checked by finite differences in
 * the tests that use them).
 */

import { randArray, asF32 } from '../helpers/reference.ts';
import type { Conv2dOptions } from '../../src/engine/index.ts';

export interface Geo {
  n: number;
  c: number;
  h: number;
  w: number;
  oc: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  groups: number;
}

export function outSize(g: Geo): [number, number] {
  return [
    Math.floor((g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh) + 1,
    Math.floor((g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw) + 1,
  ];
}

/** A geometry with PyTorch's defaults (stride 1, no padding, dilation 1, one group). */
export function geo(p: Partial<Geo> & Pick<Geo, 'n' | 'c' | 'h' | 'w' | 'oc' | 'kh' | 'kw'>): Geo {
  return { sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1, ...p };
}

/** The engine's conv2d options for a geometry. */
export function optsOf(g: Geo): Conv2dOptions {
  return { stride: [g.sh, g.sw], padding: [g.ph, g.pw], dilation: [g.dh, g.dw], groups: g.groups };
}

/** Random f32-representable input, weight, bias and output gradient for a geometry. */
export function convData(g: Geo, seed: number): { x: Float64Array; w: Float64Array; b: Float64Array; gy: Float64Array } {
  const [oh, ow] = outSize(g);
  return {
    x: asF32(randArray(g.n * g.c * g.h * g.w, seed)),
    w: asF32(randArray(g.oc * (g.c / g.groups) * g.kh * g.kw, seed + 1, -0.5, 0.5)),
    b: asF32(randArray(g.oc, seed + 2)),
    gy: asF32(randArray(g.n * g.oc * oh * ow, seed + 3)),
  };
}

/** Visits every (output, input, weight) index triple of the convolution. */
function eachTap(g: Geo, f: (yi: number, xi: number, wi: number) => void): void {
  const [oh, ow] = outSize(g);
  const cig = g.c / g.groups;
  const cog = g.oc / g.groups;
  for (let n = 0; n < g.n; n++)
    for (let co = 0; co < g.oc; co++) {
      const grp = Math.floor(co / cog);
      for (let y = 0; y < oh; y++)
        for (let x = 0; x < ow; x++) {
          const yi = ((n * g.oc + co) * oh + y) * ow + x;
          for (let ci = 0; ci < cig; ci++)
            for (let kh = 0; kh < g.kh; kh++) {
              const ih = y * g.sh - g.ph + kh * g.dh;
              if (ih < 0 || ih >= g.h) continue;
              for (let kw = 0; kw < g.kw; kw++) {
                const iw = x * g.sw - g.pw + kw * g.dw;
                if (iw < 0 || iw >= g.w) continue;
                const xi = ((n * g.c + grp * cig + ci) * g.h + ih) * g.w + iw;
                const wi = ((co * cig + ci) * g.kh + kh) * g.kw + kw;
                f(yi, xi, wi);
              }
            }
        }
    }
}

export function convRef(g: Geo, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null): Float64Array {
  const [oh, ow] = outSize(g);
  const y = new Float64Array(g.n * g.oc * oh * ow);
  eachTap(g, (yi, xi, wi) => (y[yi] += x[xi] * w[wi]));
  if (b) for (let i = 0; i < y.length; i++) y[i] += b[Math.floor(i / (oh * ow)) % g.oc];
  return y;
}

export function convBackRef(g: Geo, x: ArrayLike<number>, w: ArrayLike<number>, gy: ArrayLike<number>): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [oh, ow] = outSize(g);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(g.oc);
  eachTap(g, (yi, xi, wi) => {
    dx[xi] += gy[yi] * w[wi];
    dw[wi] += gy[yi] * x[xi];
  });
  for (let i = 0; i < gy.length; i++) db[Math.floor(i / (oh * ow)) % g.oc] += gy[i];
  return { dx, dw, db };
}

export type Act = 'relu' | 'leakyRelu' | 'tanh' | null;

export function actRef(v: number, act: Act, alpha = 0.01): number {
  if (act === 'relu') return Math.max(v, 0);
  if (act === 'leakyRelu') return v > 0 ? v : v * alpha;
  if (act === 'tanh') return Math.tanh(v);
  return v;
}

export function actDerivFromPre(v: number, act: Act, alpha = 0.01): number {
  if (act === 'relu') return v > 0 ? 1 : 0;
  if (act === 'leakyRelu') return v > 0 ? 1 : alpha;
  if (act === 'tanh') return 1 - Math.tanh(v) ** 2;
  return 1;
}
