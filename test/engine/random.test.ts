import { describe, it, expect, beforeAll } from 'vitest';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { OpError } from '../../src/engine/index.ts';
import { philoxBits, rand, randn, uniform, bernoulli, manualSeed, getRngState, setRngState, DEFAULT_SEED } from '../../src/engine/ops/random.ts';

beforeAll(async () => {
  await engine();
});

// ------------------------------------------------------------------ CPU reference (Random123)

function mulhilo(a: number, b: number): [number, number] {
  const p = BigInt(a) * BigInt(b);
  return [Number(p >> 32n), Number(p & 0xffffffffn)];
}

/** Philox4x32-10 exactly as Salmon et al. / Random123 define it. */
function philox(ctr: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = ctr;
  let [k0, k1] = key;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** n words from blocks counter, counter + 1, ... (128-bit addition). */
function philoxStream(n: number, key: readonly number[], counter: readonly number[]): number[] {
  const out: number[] = [];
  let c = (BigInt(counter[3]) << 96n) | (BigInt(counter[2]) << 64n) | (BigInt(counter[1]) << 32n) | BigInt(counter[0]);
  const M = (1n << 128n) - 1n;
  while (out.length < n) {
    const words = [0, 32, 64, 96].map((s) => Number((c >> BigInt(s)) & 0xffffffffn));
    out.push(...philox(words, key));
    c = (c + 1n) & M;
  }
  return out.slice(0, n);
}

const keyOf = (seed: bigint) => [Number(seed & 0xffffffffn), Number((seed >> 32n) & 0xffffffffn)];
const unit = (w: number) => (w >>> 8) * 2 ** -24;

// Known-answer vectors of Random123's kat_vectors for philox4x32 with 10 rounds.
const KATS = [
  { ctr: [0, 0, 0, 0], key: [0, 0], out: [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8] },
  { ctr: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], key: [0xffffffff, 0xffffffff], out: [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd] },
  { ctr: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], key: [0xa4093822, 0x299f31d0], out: [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1] },
];

describe('Philox4x32-10', () => {
  it('the CPU reference reproduces the Random123 known-answer vectors', () => {
    for (const k of KATS) expect(philox(k.ctr, k.key)).toEqual(k.out);
  });

  it('the GPU kernel reproduces them too, bit for bit', async () => {
    for (const k of KATS) {
      const t = philoxBits(4, k.key as [number, number], k.ctr as [number, number, number, number]);
      expect(t.dtype).toBe('u32');
      expect(Array.from(await t.data())).toEqual(k.out);
    }
  });

  it('matches the CPU stream over many blocks, a partial last block, and carries through all counter words', async () => {
    const key: [number, number] = [0x1234abcd, 0xdeadbeef];
    for (const counter of [[7, 0, 0, 0], [0xfffffff0, 0xffffffff, 0xffffffff, 5]] as [number, number, number, number][]) {
      const n = 4 * 301 + 3;
      const got = Array.from(await philoxBits(n, key, counter).data());
      expect(got).toEqual(philoxStream(n, key, counter));
    }
  });
});

describe('rand, uniform, randn, bernoulli', () => {
  it('rand: exactly the top 24 bits of each word times 2^-24, for a 64-bit seed', async () => {
    const seed = (1n << 40n) + 12345n;
    const shape = [3, 41];
    const t = rand(shape, { seed });
    expect(t.shape).toEqual(shape);
    const want = philoxStream(123, keyOf(seed), [0, 0, 0, 0]).map(unit);
    expect(Array.from(await read(t))).toEqual(want);
    // an explicit offset starts at that block
    const later = await read(rand([10], { seed, offset: 5 }));
    expect(Array.from(later)).toEqual(want.slice(20, 30));
  });

  it('uniform moments over 1e5 samples; never 1; uniform(low, high) scales', async () => {
    const n = 100_001;
    const u = await read(rand([n], { seed: 99 }));
    let mean = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const v of u) {
      mean += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    mean /= n;
    let varr = 0;
    for (const v of u) varr += (v - mean) ** 2;
    varr /= n - 1;
    // standard errors: 9.1e-4 for the mean, 2.4e-4 for the variance; bounds at about 5 of them
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.0046);
    expect(Math.abs(varr - 1 / 12)).toBeLessThan(0.0012);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    const s = await read(uniform([n], -3, 5, { seed: 99 }));
    expectClose(s, Array.from(u, (v) => -3 + 8 * v), { atol: 1e-6, rtol: 0 });
  });

  it('randn: Box-Muller of the same words (float64 reference), and normal moments', async () => {
    const seed = 2024n;
    const n = 4 * 9 + 3;
    const words = philoxStream(n + 1, keyOf(seed), [0, 0, 0, 0]);
    const want = new Float64Array(n);
    for (let i = 0; i < n; i += 2) {
      const base = i - (i % 2);
      const r = Math.sqrt(-2 * Math.log(((words[base] >>> 8) + 1) * 2 ** -24));
      const theta = 2 * Math.PI * unit(words[base + 1]) - Math.PI;
      want[i] = r * Math.cos(theta);
      if (i + 1 < n) want[i + 1] = r * Math.sin(theta);
    }
    expectClose(await read(randn([n], { seed })), want, { atol: 1e-5, rtol: 1e-5 });
    expectClose(await read(randn([n], { seed, mean: 3, std: 2 })), Array.from(want, (z) => 3 + 2 * z), { atol: 2e-5, rtol: 1e-5 });

    const m = 100_000;
    const z = await read(randn([m], { seed: 5, mean: 1.5, std: 2 }));
    let mean = 0;
    for (const v of z) mean += v;
    mean /= m;
    let varr = 0;
    let third = 0;
    for (const v of z) {
      varr += (v - mean) ** 2;
      third += (v - mean) ** 3;
    }
    varr /= m - 1;
    const skew = third / m / varr ** 1.5;
    // standard errors: mean 0.0063, variance 0.018, skewness 0.0077
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.032);
    expect(Math.abs(varr - 4)).toBeLessThan(0.09);
    expect(Math.abs(skew)).toBeLessThan(0.04);
    // about 68.27% within one standard deviation
    const within = z.filter((v) => Math.abs(v - 1.5) < 2).length / m;
    expect(Math.abs(within - 0.6827)).toBeLessThan(0.008);
  });

  it('bernoulli: 1 exactly where u < p, frequency p', async () => {
    const n = 50_001;
    const p = 0.3;
    const got = await read(bernoulli([n], p, { seed: 77 }));
    const words = philoxStream(n, keyOf(77n), [0, 0, 0, 0]);
    const want = words.map((w) => (unit(w) < Math.fround(p) ? 1 : 0));
    expect(Array.from(got)).toEqual(want);
    const freq = got.reduce((a, v) => a + v, 0) / n;
    expect(Math.abs(freq - p)).toBeLessThan(0.01);
    expect(Array.from(await read(bernoulli([9], 0, { seed: 1 })))).toEqual(new Array(9).fill(0));
    expect(Array.from(await read(bernoulli([9], 1, { seed: 1 })))).toEqual(new Array(9).fill(1));
  });
});

describe('the global generator', () => {
  it('same seed, same sequence; successive calls differ; the offset advances by the blocks used', async () => {
    manualSeed(7);
    expect(getRngState()).toEqual({ seed: 7n, offset: 0 });
    const a1 = await read(rand([5, 3]));
    expect(getRngState().offset).toBe(4);
    const b1 = await read(randn([6]));
    expect(getRngState().offset).toBe(6);
    const c1 = await read(bernoulli([3], 0.5));
    expect(Array.from(a1)).not.toEqual(Array.from(b1.slice(0, 6)));

    manualSeed(7);
    const a2 = await read(rand([5, 3]));
    const b2 = await read(randn([6]));
    const c2 = await read(bernoulli([3], 0.5));
    expect(Array.from(a2)).toEqual(Array.from(a1));
    expect(Array.from(b2)).toEqual(Array.from(b1));
    expect(Array.from(c2)).toEqual(Array.from(c1));
    // the second call is the stream from block 4 of key 7
    expect(Array.from(await read(randn([6], { seed: 7, offset: 4 })))).toEqual(Array.from(b1));

    // a state saved and restored replays the same numbers; explicit seeds leave it untouched
    const saved = getRngState();
    const d1 = await read(rand([4]));
    setRngState(saved);
    await read(rand([4], { seed: 123 }));
    expect(Array.from(await read(rand([4])))).toEqual(Array.from(d1));

    // negative seeds wrap modulo 2^64 like torch.manual_seed
    manualSeed(-1);
    expect(getRngState().seed).toBe((1n << 64n) - 1n);
    manualSeed(DEFAULT_SEED);
  });

  it('rejects bad seeds and parameters before running', () => {
    expect(() => manualSeed(1.5)).toThrow(OpError);
    expect(() => rand([2], { seed: 2 ** 60 })).toThrow(/rand: seed must be an integer/);
    expect(() => bernoulli([2], 1.5)).toThrow(/bernoulli: p must be in \[0, 1\]/);
    expect(() => randn([2], { std: -1 })).toThrow(/randn: need a finite mean and std >= 0/);
    expect(() => uniform([2], 1, 0)).toThrow(/uniform: need finite low <= high/);
    expect(() => rand([2, -1])).toThrow(/invalid shape/);
    expect(() => rand([2], { offset: 3 })).toThrow(/offset is only meaningful/);
    expect(() => philoxBits(4, [2 ** 32, 0])).toThrow(/u32 integers/);
  });
});
