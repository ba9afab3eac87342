import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { attnRef, attnRefGrad, dropFactor, visible, type Cfg } from '../helpers/ref-attention.ts';
import { attention, attentionBackwardTile, backward, permute, tensor, manualSeed, OpError, memoryStats, type Tensor, type AttentionOptions } from '../../src/engine/index.ts';

function inputs(c: Cfg, seed: number, amp = 1.5) {
  return {
    q: asF32(randArray(c.B * c.H * c.Tq * c.D, seed, -amp, amp)),
    k: asF32(randArray(c.B * c.H * c.Tk * c.D, seed + 1, -amp, amp)),
    v: asF32(randArray(c.B * c.H * c.Tk * c.D, seed + 2, -1, 1)),
  };
}

function maskTensor(c: Cfg): Tensor | null {
  return c.mask ? tensor(Uint32Array.from(c.mask), [c.B, c.Tk], 'u32') : null;
}

async function checkForward(c: Cfg, seed: number, what: string) {
  const { q, k, v } = inputs(c, seed);
  const m = maskTensor(c);
  const out = attention(t32(q, [c.B, c.H, c.Tq, c.D]), t32(k, [c.B, c.H, c.Tk, c.D]), t32(v, [c.B, c.H, c.Tk, c.D]), {
    causal: c.causal,
    keyPaddingMask: m,
    dropout: c.dropout,
    seed: c.seed,
  });
  expectClose(await read(out), attnRef(c, q, k, v).out, { atol: 2e-5, rtol: 2e-4, what });
}

async function checkBackward(c: Cfg, seed: number, what: string, kernels: Pick<AttentionOptions, 'forwardKernel' | 'backwardKernel'> = {}) {
  const { q, k, v } = inputs(c, seed);
  const go = asF32(randArray(c.B * c.H * c.Tq * c.D, seed + 3, -1, 1));
  const ref = attnRefGrad(c, q, k, v, go);
  const qt = t32(q, [c.B, c.H, c.Tq, c.D], true);
  const kt = t32(k, [c.B, c.H, c.Tk, c.D], true);
  const vt = t32(v, [c.B, c.H, c.Tk, c.D], true);
  const out = attention(qt, kt, vt, { causal: c.causal, keyPaddingMask: maskTensor(c), dropout: c.dropout, seed: c.seed, ...kernels });
  if (kernels.forwardKernel) expectClose(await read(out), attnRef(c, q, k, v).out, { atol: 2e-5, rtol: 2e-4, what: `${what} out` });
  backward(out, t32(go, out.shape));
  const tol = { atol: 3e-5, rtol: 5e-4 };
  expectClose(await read(qt.grad!), ref.dq, { ...tol, what: `${what} dq` });
  expectClose(await read(kt.grad!), ref.dk, { ...tol, what: `${what} dk` });
  expectClose(await read(vt.grad!), ref.dv, { ...tol, what: `${what} dv` });
}

function mixedMask(B: number, Tk: number, seed: number, fullyMaskedBatch = -1): Float64Array {
  const r = randArray(B * Tk, seed, 0, 1);
  const m = new Float64Array(B * Tk);
  for (let b = 0; b < B; b++) {
    // trailing padding of random length, plus a few random holes
    const len = Math.max(1, Tk - Math.floor(r[b * Tk] * Tk * 0.5));
    for (let j = 0; j < Tk; j++) m[b * Tk + j] = j >= len || r[b * Tk + j] < 0.15 ? 1 : 0;
    m[b * Tk] = 0;
    if (b === fullyMaskedBatch) m.fill(1, b * Tk, (b + 1) * Tk);
  }
  return m;
}

beforeAll(async () => {
  await engine();
});

describe('attention forward', () => {
  it('matches float64 without masks (Tq != Tk, odd sizes, several tiles and query blocks)', async () => {
    await checkForward({ B: 2, H: 3, Tq: 19, Tk: 37, D: 16 }, 1, 'plain');
    await checkForward({ B: 1, H: 2, Tq: 70, Tk: 67, D: 21 }, 2, 'multi-block');
  });

  it('causal mask, including query blocks past the first (early exit over keys)', async () => {
    await checkForward({ B: 2, H: 1, Tq: 83, Tk: 83, D: 17, causal: true }, 3, 'causal');
  });

  it('key padding mask; a batch with every key hidden gives zeros', async () => {
    const c: Cfg = { B: 3, H: 2, Tq: 11, Tk: 29, D: 16, mask: mixedMask(3, 29, 4, 2) };
    await checkForward(c, 5, 'padding');
    await checkForward({ ...c, causal: true, Tq: 29 }, 6, 'padding+causal');
  });

  it('head dimension 128 and large scores (online softmax stays finite)', async () => {
    const c: Cfg = { B: 1, H: 1, Tq: 9, Tk: 45, D: 128 };
    const q = asF32(randArray(9 * 128, 7, -4, 4));
    const k = asF32(randArray(45 * 128, 8, -4, 4));
    const v = asF32(randArray(45 * 128, 9, -1, 1));
    const out = attention(t32(q, [1, 1, 9, 128]), t32(k, [1, 1, 45, 128]), t32(v, [1, 1, 45, 128]));
    expectClose(await read(out), attnRef(c, q, k, v).out, { atol: 1e-4, rtol: 1e-3, what: 'D=128' });
  });

  it('dropout: the mask is the seeded hash the reference reproduces, with the right keep rate', async () => {
    const c: Cfg = { B: 2, H: 2, Tq: 23, Tk: 31, D: 16, dropout: 0.3, seed: 1234567, causal: true, mask: mixedMask(2, 31, 10) };
    await checkForward(c, 11, 'dropout');
    let kept = 0;
    let n = 0;
    for (let bh = 0; bh < 64; bh++)
      for (let i = 0; i < 50; i++)
        for (let j = 0; j < 50; j++) {
          kept += dropFactor({ ...c, dropout: 0.3 }, bh, i, j) > 0 ? 1 : 0;
          n++;
        }
    expect(Math.abs(kept / n - 0.7)).toBeLessThan(0.01);
    // same seed, same output; another seed, another mask
    const { q, k, v } = inputs(c, 12);
    const run = (seed: number) =>
      attention(t32(q, [2, 2, 23, 16]), t32(k, [2, 2, 31, 16]), t32(v, [2, 2, 31, 16]), { dropout: 0.3, seed }).data();
    const [a, b, d] = await Promise.all([run(5), run(5), run(6)]);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(d));
    // without a seed: drawn from the global generator, so manualSeed reproduces it
    const unseeded = () => attention(t32(q, [2, 2, 23, 16]), t32(k, [2, 2, 31, 16]), t32(v, [2, 2, 31, 16]), { dropout: 0.3 }).data();
    manualSeed(77);
    const u1 = await unseeded();
    const u2 = await unseeded();
    manualSeed(77);
    const u3 = await unseeded();
    expect(Array.from(u1)).toEqual(Array.from(u3));
    expect(Array.from(u1)).not.toEqual(Array.from(u2));
  });

  it('reads strided head-split views in place ([B, T, H, D] permuted)', async () => {
    const B = 2, T = 13, H = 3, D = 16;
    const x = asF32(randArray(B * T * H * D, 13));
    const y = asF32(randArray(B * T * H * D, 14));
    const z = asF32(randArray(B * T * H * D, 15));
    const toBHTD = (a: Float64Array) => {
      const o = new Float64Array(a.length);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) o[((b * H + h) * T + t) * D + d] = a[((b * T + t) * H + h) * D + d];
      return o;
    };
    const view = (a: Float64Array) => permute(t32(a, [B, T, H, D]), [0, 2, 1, 3]);
    const out = attention(view(x), view(y), view(z), { causal: true });
    expectClose(await read(out), attnRef({ B, H, Tq: T, Tk: T, D, causal: true }, toBHTD(x), toBHTD(y), toBHTD(z)).out, { atol: 2e-5, rtol: 2e-4 });
  });
});

describe('attention backward', () => {
  const small: Cfg = { B: 2, H: 1, Tq: 4, Tk: 5, D: 3 };
  const variants: [string, Cfg][] = [
    ['plain', small],
    ['causal', { ...small, Tk: 4, causal: true }],
    ['padding', { ...small, mask: Float64Array.from([0, 0, 1, 0, 1, 0, 1, 1, 1, 1]) }],
    ['dropout', { ...small, dropout: 0.4, seed: 99 }],
  ];

  it('float64 reference gradient = central finite differences (each mask, dropout)', () => {
    for (const [name, c] of variants) {
      const { q, k, v } = inputs(c, 20);
      const go = randArray(c.B * c.H * c.Tq * c.D, 24);
      const g = attnRefGrad(c, q, k, v, go);
      expectClose(g.dq, finiteDiff((x) => dot(attnRef(c, x, k, v).out, go), q), { atol: 1e-6, rtol: 1e-5, what: `${name} dq` });
      expectClose(g.dk, finiteDiff((x) => dot(attnRef(c, q, x, v).out, go), k), { atol: 1e-6, rtol: 1e-5, what: `${name} dk` });
      expectClose(g.dv, finiteDiff((x) => dot(attnRef(c, q, k, x).out, go), v), { atol: 1e-6, rtol: 1e-5, what: `${name} dv` });
    }
  });

  it('GPU gradients = reference on the small cases', async () => {
    for (const [name, c] of variants) await checkBackward(c, 30, name);
  });

  it('GPU gradients = reference: several tiles and blocks, causal + padding + dropout', async () => {
    await checkBackward({ B: 2, H: 2, Tq: 67, Tk: 71, D: 16 }, 40, 'plain-large');
    await checkBackward({ B: 2, H: 1, Tq: 70, Tk: 70, D: 19, causal: true, mask: mixedMask(2, 70, 41, 1), dropout: 0.2, seed: 7 }, 42, 'all');
  });

  it('head dimension 64 (the SIMD-8 kernels on lavapipe, several 16-row blocks), Tq != Tk, every mask and dropout', async () => {
    await checkBackward({ B: 2, H: 2, Tq: 37, Tk: 41, D: 64, causal: true, mask: mixedMask(2, 41, 45, 1), dropout: 0.15, seed: 11 }, 46, 'D=64 all');
    await checkBackward({ B: 1, H: 3, Tq: 33, Tk: 18, D: 64 }, 47, 'D=64 plain');
  });

  it('row kernels (forward and backward) agree with the reference, D = 19 and D = 100', async () => {
    const all: Cfg = { B: 2, H: 1, Tq: 70, Tk: 70, D: 19, causal: true, mask: mixedMask(2, 70, 41, 1), dropout: 0.2, seed: 7 };
    await checkBackward(all, 42, 'rows', { forwardKernel: 'rows', backwardKernel: 'rows' });
    await checkBackward({ B: 1, H: 2, Tq: 21, Tk: 18, D: 100, mask: mixedMask(1, 18, 43), dropout: 0.1, seed: 9 }, 44, 'D=100 rows', { backwardKernel: 'rows' });
    // short sequence, D > 64: 'auto' takes the row kernels
    await checkBackward({ B: 1, H: 1, Tq: 13, Tk: 11, D: 72, causal: true, dropout: 0.2, seed: 4 }, 45, 'auto D=72 short');
  });

  it('tiled backward for 64 < D <= 128: streamed tile 32 / 16 / 8 by workgroup memory', async () => {
    expect([64, 72, 73, 100, 117, 118, 128].map(attentionBackwardTile)).toEqual([32, 32, 16, 16, 16, 8, 8]);
    // odd Tq / Tk past several owned blocks (16) and streamed tiles; causal + padding + dropout
    for (const [D, seed] of [[72, 50], [100, 52], [128, 54]]) {
      await checkBackward({ B: 2, H: 1, Tq: 37, Tk: 37, D, causal: true, mask: mixedMask(2, 37, seed, 1), dropout: 0.15, seed: seed + 1 }, seed, `tiled D=${D} all`, { backwardKernel: 'tiled' });
    }
    // Tq != Tk, padding only (no causal early exit), default ('auto') picks the tiled kernels (Tk >= 64)
    await checkBackward({ B: 1, H: 2, Tq: 21, Tk: 67, D: 100, mask: mixedMask(1, 67, 56) }, 57, 'auto D=100 Tq!=Tk');
    await checkBackward({ B: 1, H: 1, Tq: 19, Tk: 29, D: 128, dropout: 0.3, seed: 5 }, 58, 'tiled D=128 dropout', { backwardKernel: 'tiled' });
  });

  it('frees its temporaries', async () => {
    const before = memoryStats();
    const q = t32(randArray(2 * 5 * 16, 1), [1, 2, 5, 16], true);
    const k = t32(randArray(2 * 7 * 16, 2), [1, 2, 7, 16], true);
    const v = t32(randArray(2 * 7 * 16, 3), [1, 2, 7, 16], true);
    const m = tensor(Uint32Array.from([0, 0, 1, 0, 0, 0, 1]), [1, 7], 'u32');
    const g = t32(randArray(2 * 5 * 16, 4), [1, 2, 5, 16]);
    const out = attention(q, k, v, { keyPaddingMask: m, dropout: 0.1, seed: 3 });
    backward(out, g);
    await q.grad!.data();
    for (const t of [out, g, m, q, k, v]) {
      t.grad?.dispose();
      t.dispose();
    }
    expect(memoryStats()).toEqual(before);
  });
});

describe('attention input checks', () => {
  it('rejects bad shapes, masks and options before any kernel runs', () => {
    const q = tensor(new Float32Array(2 * 3 * 4 * 8), [2, 3, 4, 8]);
    const k = tensor(new Float32Array(2 * 3 * 5 * 8), [2, 3, 5, 8]);
    expect(() => attention(q, k, q)).toThrow(/v \[2, 3, 4, 8\] does not match k/);
    const gone = tensor(new Float32Array(8), [2, 4]);
    gone.dispose();
    expect(() => attention(q, q, q, { keyPaddingMask: gone })).toThrow(/after dispose/);
    expect(() => attention(q, k, k, { keyPaddingMask: tensor(new Float32Array(8), [2, 4]) })).toThrow(/keyPaddingMask must be \[2, 5\]/);
    expect(() => attention(q, k, k, { dropout: 1 })).toThrow(OpError);
    expect(() => attention(tensor(new Float32Array(8), [2, 4]), k, k)).toThrow(/q must be \[batch, heads, seq, headDim\]/);
    const big = tensor(new Float32Array(129), [1, 1, 1, 129]);
    expect(() => attention(big, big, big)).toThrow(/head dimension 129/);
    const noKeys = tensor(new Float32Array(0), [2, 3, 0, 8]);
    expect(() => attention(q, noKeys, noKeys)).toThrow(/no keys/);
  });
});
