/**
 * Test helpers shared by every kernel test: a seeded generator, float64 reference utilities,
 * closeness checks that print the first mismatches, and central finite differences.
 */
import { expect } from 'vitest';

/** Mulberry32: small, seeded, deterministic (tests never use Math.random). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [lo, hi) as float64 (round to f32 with Float32Array.from when uploading). */
export function randArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Standard normal values (Box-Muller). */
export function randnArray(n: number, seed: number, std = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** The float64 values an f32 upload will actually hold (so references see the same inputs). */
export function asF32(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(x));
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise, failing with the first
 * mismatches (index, got, want) and the worst error, as llm.c's validators print them.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: { atol?: number; rtol?: number; what?: string } = {}): void {
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-4;
  expect(actual.length, `${opts.what ?? 'result'}: length`).toBe(expected.length);
  const bad: string[] = [];
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const err = Math.abs(a - e);
    const ok = Number.isNaN(e) ? Number.isNaN(a) : e === a || err <= atol + rtol * Math.abs(e);
    if (!ok) {
      if (bad.length < 8) bad.push(`  [${i}] got ${a}, want ${e}`);
      worst = Math.max(worst, Number.isFinite(err) ? err : Infinity);
    }
  }
  if (bad.length > 0) {
    expect.fail(`${opts.what ?? 'result'}: mismatches (atol ${atol}, rtol ${rtol}), worst abs error ${worst}:\n${bad.join('\n')}`);
  }
}

/**
 * Central finite differences of a scalar float64 function: d f / d x[i] ~ (f(x+h) - f(x-h)) / 2h.
 * Used to check every hand-written backward on its float64 reference.
 */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const v = xp[i];
    xp[i] = v + h;
    const fp = f(xp);
    xp[i] = v - h;
    const fm = f(xp);
    xp[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** sum_i w[i] * y[i]: turns a tensor-valued reference into the scalar a finite difference needs
 * (random weights w make every output element matter). */
export function dot(y: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * w[i];
  return s;
}
