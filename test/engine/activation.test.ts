/**
 * One activation library (kernels/activation.wgsl, issue 19): every fused epilogue (matmul's
 * kernels, conv's GEMM, direct and SIMD-8 kernels) gives the unary op's bits on the same
 * pre-activation values, large |x| included.
 */
import { describe, it, expect } from 'vitest';
import { engine, t32 } from '../helpers/gpu.ts';
import {
  matmul, matmulRaw, conv2dForwardRaw, gruRecurrence, sub, mul, zeros, fromData, relu, leakyRelu, tanh, sigmoid, gelu, noGrad, type Tensor, type Activation, type MatmulKind, type ConvVariant,
} from '../../src/engine/index.ts';
import { ACTIVATION_CODES } from '../../src/engine/ops/activation.ts';
import { randArray } from '../helpers/reference.ts';

const rt = await engine();
const simd8 = rt.device.caps.simd8;

const UNARY: Record<Exclude<Activation, 'none'>, (x: Tensor, slope: number) => Tensor> = {
  relu: (x) => relu(x),
  leaky_relu: (x, s) => leakyRelu(x, s),
  tanh: (x) => tanh(x),
  sigmoid: (x) => sigmoid(x),
  gelu: (x) => gelu(x),
  gelu_tanh: (x) => gelu(x, 'tanh'),
};

async function bits(t: Tensor): Promise<Uint32Array> {
  return new Uint32Array(Float32Array.from(await t.data()).buffer);
}

/** Values over many magnitudes, both signs, zeros: products of these reach |x| ~ 1e3. */
function spread(n: number, seed: number): Float64Array {
  const r = randArray(n, seed);
  return r.map((v, i) => (i % 7 === 0 ? 0 : v * 10 ** ((i % 5) - 2)));
}

/** Runs `make` (recording, no autograd) and compares its two results' bits, then frees them. */
async function expectSameBits(make: () => [Tensor, Tensor], what: string): Promise<void> {
  const [fused, ref] = noGrad(make);
  const [a, b] = [await bits(fused), await bits(ref)];
  fused.dispose();
  ref.dispose();
  let bad = -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) { bad = i; break; }
  const f = new Float32Array(a.buffer);
  const g = new Float32Array(b.buffer);
  expect(bad, `${what}: element ${bad}: fused ${f[bad]} vs unary ${g[bad]}`).toBe(-1);
  // the inputs did reach large magnitudes
  expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(0);
}

describe('the activation table', () => {
  it('codes are distinct and start at none = 0', () => {
    const codes = Object.values(ACTIVATION_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    expect(ACTIVATION_CODES.none).toBe(0);
  });
});

describe('fused epilogues equal the unary op bit for bit', () => {
  // every non-SIMD-8 variant stores through one epilogue (store), skinny and simd8 through their own
  const variants: MatmulKind[] = ['reg4x4', 'skinny', ...(simd8 ? (['simd8'] as const) : [])];
  it('matmul, each epilogue, every activation, with a column bias', { timeout: 300_000 }, async () => {
    const [M, K, N] = [20, 36, 44];
    const A = t32(spread(M * K, 1), [M, K]);
    const B = t32(spread(K * N, 2), [K, N]);
    const bias = t32(spread(N, 3).map((v) => v * 50), [N]);
    for (const variant of variants) {
      const m = variant === 'skinny' ? 6 : M;
      const Av = variant === 'skinny' ? t32(spread(m * K, 4), [m, K]) : A;
      for (const [name, unary] of Object.entries(UNARY) as [Exclude<Activation, 'none'>, (x: Tensor, s: number) => Tensor][]) {
        await expectSameBits(() => {
          const z = matmulRaw(Av, B, { variant, splits: 1, bias });
          const ref = unary(z, 0.2);
          z.dispose();
          return [matmulRaw(Av, B, { variant, splits: 1, bias, activation: name, negativeSlope: 0.2 }), ref];
        }, `matmul ${variant} ${name}`);
      }
    }
  });

  it('matmul split-K reduce pass applies the same activation', { timeout: 300_000 }, async () => {
    const A = t32(spread(9 * 300, 5), [9, 300]);
    const B = t32(spread(300 * 12, 6), [300, 12]);
    for (const name of Object.keys(UNARY) as Exclude<Activation, 'none'>[]) {
      await expectSameBits(() => {
        const z = matmulRaw(A, B, { variant: 'reg4x4', splits: 3 });
        const ref = UNARY[name](z, 0.01);
        z.dispose();
        return [matmulRaw(A, B, { variant: 'reg4x4', splits: 3, activation: name }), ref];
      }, `split-K ${name}`);
    }
  });

  it('matmul under autograd (the product without activation, then the activation pass) gives the same bits', { timeout: 300_000 }, async () => {
    const A = t32(spread(20 * 36, 12), [20, 36], true);
    const B = t32(spread(36 * 44, 13), [36, 44]);
    const bias = t32(spread(44, 14).map((v) => v * 50), [44]);
    for (const [name, unary] of Object.entries(UNARY) as [Exclude<Activation, 'none'>, (x: Tensor, s: number) => Tensor][]) {
      const y = matmul(A, B, { bias, activation: name, negativeSlope: 0.2 });
      expect(y.requiresGrad, 'recorded for autograd').toBe(true);
      const ref = noGrad(() => {
        const z = matmul(A, B, { bias });
        const r = unary(z, 0.2);
        z.dispose();
        return r;
      });
      const [a, b] = [await bits(y), await bits(ref)];
      y.dispose();
      ref.dispose();
      const bad = a.findIndex((v, i) => v !== b[i]);
      expect(bad, `activation pass ${name}: element ${bad}`).toBe(-1);
    }
    for (const t of [A, B, bias]) t.dispose();
  });

  it('the GRU step\'s gates are the unary sigmoid and tanh (h0 = 0, W_hh = 0: y = (1 - sigmoid(gi_z)) tanh(gi_n)), both step kernels', async () => {
    // B 5 with H 8 takes the SIMD-8 step on lavapipe, H 12 the shared-h step everywhere
    for (const H of [8, 12]) {
      const B = 5;
      const gi = spread(B * 3 * H, 20 + H).map((v) => v * 30);
      const part = (g: number) => t32(Array.from({ length: B * H }, (_, i) => gi[Math.floor(i / H) * 3 * H + g * H + (i % H)]), [B, H]);
      const [y, ref] = noGrad(() => {
        const out = gruRecurrence(t32(gi, [1, B, 3 * H]), zeros([B, H]), zeros([3 * H, H]), zeros([3 * H]), fromData(new Uint32Array(B).fill(1), [B], 'u32'));
        const [gz, gn] = [part(1), part(2)];
        return [out.view([B, H], [H, 1], out.offset), mul(sub(1, sigmoid(gz)), tanh(gn))];
      });
      const [a, b] = [await bits(y), await bits(ref)];
      // the step adds z * h_{t-1} = +0, so where (1 - z) n is -0 it stores +0: equal, not the same bits
      const bad = a.findIndex((v, i) => v !== b[i] && !(((v | b[i]) >>> 0) === 0x80000000 && (v & b[i]) === 0));
      expect(bad, `GRU gates H ${H}: element ${bad}: ${new Float32Array(a.buffer)[bad]} vs ${new Float32Array(b.buffer)[bad]} (gi_z ${gi[Math.floor(bad / H) * 3 * H + H + (bad % H)]}, gi_n ${gi[Math.floor(bad / H) * 3 * H + 2 * H + (bad % H)]})`).toBe(-1);
      expect(Math.max(...new Float32Array(b.buffer).map(Math.abs))).toBeGreaterThan(0.5);
    }
  });

  it('conv2d: GEMM, direct and SIMD-8 kernels with relu, leaky relu and tanh', { timeout: 300_000 }, async () => {
    const x = t32(spread(2 * 8 * 9 * 7, 7), [2, 8, 9, 7]);
    const w = t32(spread(12 * 8 * 3 * 3, 8), [12, 8, 3, 3]);
    const b = t32(spread(12, 9).map((v) => v * 30), [12]);
    const convs: ConvVariant[] = ['gemm', 'direct', ...(simd8 ? (['simd8'] as const) : [])];
    const acts = { relu: (t: Tensor) => relu(t), leakyRelu: (t: Tensor) => leakyRelu(t, 0.1), tanh: (t: Tensor) => tanh(t) } as const;
    for (const variant of convs) {
      for (const [name, unary] of Object.entries(acts)) {
        await expectSameBits(() => {
          const z = conv2dForwardRaw(x, w, b, { padding: 1 }, variant);
          const ref = unary(z);
          z.dispose();
          return [conv2dForwardRaw(x, w, b, { padding: 1, activation: name as 'relu', negativeSlope: 0.1 }, variant), ref];
        }, `conv2d ${variant} ${name}`);
      }
    }
  });
});
