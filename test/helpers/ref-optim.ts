/** float64 references of PyTorch's SGD and Adam/AdamW update formulas (shared by
 * test/engine/optim.test.ts and test/browser/kernel-checks.ts). */

export interface SgdOpts { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean }
export function sgdRef(p: Float64Array, g: Float64Array, buf: Float64Array | null, o: SgdOpts): Float64Array | null {
  let b = buf;
  for (let i = 0; i < p.length; i++) {
    let d = g[i] + o.weightDecay * p[i];
    if (o.momentum !== 0) {
      if (!buf) {
        b ??= new Float64Array(p.length);
        b[i] = d;
      } else {
        b![i] = o.momentum * b![i] + (1 - o.dampening) * d;
      }
      d = o.nesterov ? d + o.momentum * b![i] : b![i];
    }
    p[i] -= o.lr * d;
  }
  return b;
}

export interface AdamState { m: Float64Array; v: Float64Array; vmax: Float64Array; t: number }
export function adamRef(p: Float64Array, g: Float64Array, s: AdamState, lr: number, b1: number, b2: number, eps: number, wd: number, decoupled: boolean, amsgrad: boolean): void {
  s.t++;
  const bc1 = 1 - b1 ** s.t;
  const bc2 = 1 - b2 ** s.t;
  for (let i = 0; i < p.length; i++) {
    let gi = g[i];
    if (decoupled) p[i] *= 1 - lr * wd;
    else gi += wd * p[i];
    s.m[i] = b1 * s.m[i] + (1 - b1) * gi;
    s.v[i] = b2 * s.v[i] + (1 - b2) * gi * gi;
    let v = s.v[i];
    if (amsgrad) {
      s.vmax[i] = Math.max(s.vmax[i], v);
      v = s.vmax[i];
    }
    const denom = Math.sqrt(v) / Math.sqrt(bc2) + eps;
    p[i] -= (lr / bc1) * (s.m[i] / denom);
  }
}
