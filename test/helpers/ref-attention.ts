/** float64 reference of scaled dot-product attention (masks, causal, the kernel's hashed dropout) and
 * its analytic backward (shared by test/engine/attention.test.ts and test/browser/kernel-checks.ts). */

export interface Cfg {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  D: number;
  causal?: boolean;
  mask?: Float64Array | null; // [B, Tk], 1 = hidden
  dropout?: number;
  seed?: number;
}

export function hash(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** The kernel's dropout factor for weight (bh, i, j): 0 or 1/(1-p). */
export function dropFactor(c: Cfg, bh: number, i: number, j: number): number {
  const p = c.dropout ?? 0;
  if (p === 0) return 1;
  const thr = Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1);
  const rk = hash(hash(hash(c.seed ?? 0) ^ bh) ^ i);
  return hash((rk ^ Math.imul(j, 0x9e3779b9)) >>> 0) >= thr ? Math.fround(1 / (1 - p)) : 0;
}

export function visible(c: Cfg, b: number, i: number, j: number): boolean {
  if (c.causal && j > i) return false;
  if (c.mask && c.mask[b * c.Tk + j] !== 0) return false;
  return true;
}

/** float64 attention; q [B,H,Tq,D], k/v [B,H,Tk,D] row-major. Returns out and the probabilities. */
export function attnRef(c: Cfg, q: Float64Array, k: Float64Array, v: Float64Array): { out: Float64Array; P: Float64Array } {
  const { B, H, Tq, Tk, D } = c;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(B * H * Tq * D);
  const P = new Float64Array(B * H * Tq * Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let i = 0; i < Tq; i++) {
        const s = new Float64Array(Tk).fill(-Infinity);
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          if (!visible(c, b, i, j)) continue;
          let a = 0;
          for (let d = 0; d < D; d++) a += q[(bh * Tq + i) * D + d] * k[(bh * Tk + j) * D + d];
          s[j] = a * scale;
          m = Math.max(m, s[j]);
        }
        if (m === -Infinity) continue; // no visible key: zeros
        let l = 0;
        for (let j = 0; j < Tk; j++) l += s[j] === -Infinity ? 0 : Math.exp(s[j] - m);
        for (let j = 0; j < Tk; j++) {
          const pj = s[j] === -Infinity ? 0 : Math.exp(s[j] - m) / l;
          P[(bh * Tq + i) * Tk + j] = pj;
          const f = pj * dropFactor(c, bh, i, j);
          for (let d = 0; d < D; d++) out[(bh * Tq + i) * D + d] += f * v[(bh * Tk + j) * D + d];
        }
      }
    }
  return { out, P };
}

/** Analytic float64 backward of attnRef. */
export function attnRefGrad(c: Cfg, q: Float64Array, k: Float64Array, v: Float64Array, go: Float64Array) {
  const { B, H, Tq, Tk, D } = c;
  const scale = 1 / Math.sqrt(D);
  const { P } = attnRef(c, q, k, v);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Tq; i++) {
      const dP = new Float64Array(Tk);
      let delta = 0;
      for (let j = 0; j < Tk; j++) {
        const f = dropFactor(c, bh, i, j);
        const pij = P[(bh * Tq + i) * Tk + j];
        let a = 0;
        for (let d = 0; d < D; d++) {
          a += go[(bh * Tq + i) * D + d] * v[(bh * Tk + j) * D + d];
          dv[(bh * Tk + j) * D + d] += pij * f * go[(bh * Tq + i) * D + d];
        }
        dP[j] = a * f;
        delta += pij * dP[j];
      }
      for (let j = 0; j < Tk; j++) {
        const ds = P[(bh * Tq + i) * Tk + j] * (dP[j] - delta) * scale;
        for (let d = 0; d < D; d++) {
          dq[(bh * Tq + i) * D + d] += ds * k[(bh * Tk + j) * D + d];
          dk[(bh * Tk + j) * D + d] += ds * q[(bh * Tq + i) * D + d];
        }
      }
    }
  return { dq, dk, dv };
}
