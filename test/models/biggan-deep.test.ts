/**
 * BigGAN-deep (src/models/biggan-deep.ts) against a PyTorch re-implementation of
 * huggingface/pytorch-pretrained-BigGAN's generator at reduced width
 * (scripts/fixtures/torch_biggan_deep.py, float64 outputs from float32 weights):
 *   - the port's state_dict keys load one-to-one (no missing or unexpected key), shapes equal;
 *   - eval-mode images for class ids at truncation 0.4, 0.613 and 1.0 (the truncation-dependent
 *     batch-norm statistics, the port's reversed interpolation weights included), for class vectors, and one
 *     training-mode forward (every spectral norm runs a power iteration) with u and v after it;
 *   - the full-size presets' parameter names and shapes that the released checkpoints have.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { tensor, copyInto, type Tensor } from '../../src/engine/index.ts';
import { parseSafetensors, type SafeTensor } from '../../src/engine/io/index.ts';
import type { HostTensor } from '../../src/engine/nn/module.ts';
import { BigGANDeep, BIGGAN_DEEP_128, BIGGAN_DEEP_256, truncationRows, truncatedNoise, bigGANDeepConfig } from '../../src/models/biggan-deep.ts';

const file = parseSafetensors(new Uint8Array(readFileSync(new URL('../fixtures/biggan-deep/tiny.safetensors', import.meta.url))), { source: 'biggan-deep tiny' });
const get = (n: string): SafeTensor => {
  const t = file.tensors.get(n);
  if (!t) throw new Error(`fixture has no ${n}`);
  return t;
};
const gpu = (n: string): Tensor => tensor(get(n).data as Float32Array | Int32Array, get(n).shape);
function state(): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of file.tensors) if (k.startsWith('param.')) out.set(k.slice(6), { shape: t.shape, data: t.data as Float32Array });
  return out;
}

// float32 through 30 convolutions, spectral norms and batch norms, against float64
const TOL = { atol: 2e-4, rtol: 1e-3 };

let G: BigGANDeep;
beforeAll(async () => {
  await engine();
  G = new BigGANDeep('biggan-deep-tiny');
  const r = G.loadStateDict(state());
  expect(r).toEqual({ missingKeys: [], unexpectedKeys: [] });
  G.eval();
}, 120_000);

describe('BigGAN-deep against the port (reduced width)', () => {
  it('has exactly the port\'s state_dict keys and shapes', () => {
    const own = [...G.stateDict()].map(([k, t]) => [k, [...t.shape]]).sort();
    const ref = [...state()].map(([k, t]) => [k, [...t.shape]]).sort();
    expect(own).toEqual(ref);
    expect(G.numParameters()).toBe(Number(file.metadata.parameters));
  });

  for (const t of ['0.4', '0.613', '1.0']) {
    it(`eval-mode images at truncation ${t}`, async () => {
      const z = gpu(`z.${t}`);
      const y = gpu('y');
      const out = G.sample(z, y, Number(t));
      expect(out.shape).toEqual([2, 3, 64, 64]);
      const got = await read(out);
      expectClose(got, get(`out.eval.${t}`).data as Float32Array, { ...TOL, what: `out.eval.${t}` });
      // the images are not flat: the golden checks something
      expect(Math.max(...got) - Math.min(...got)).toBeGreaterThan(0.5);
      for (const v of [z, y, out]) v.dispose();
    }, 60_000);
  }

  it('class vectors (the port\'s one-hot input) and class ids agree with the port', async () => {
    const z = tensor((get('z.1.0').data as Float32Array).subarray(0, 16), [1, 16]);
    const vec = gpu('vec');
    const out = G.sample(z, vec, 1);
    expectClose(await read(out), get('out.vec').data as Float32Array, { ...TOL, what: 'out.vec' });
    for (const v of [z, vec, out]) v.dispose();
  }, 60_000);

  it('the truncation picks the statistics rows as the port does (modf of t / 0.02)', () => {
    expect(truncationRows(1, 51)).toEqual({ start: 50, coef: 0 });
    expect(truncationRows(0.4, 51)).toEqual({ start: 20, coef: 0 });
    expect(truncationRows(0.7, 51)).toEqual({ start: 35, coef: 0 });
    const r = truncationRows(0.613, 51); // the port weighs row 30 by 0.65, row 31 by 0.35
    expect(r.start).toBe(30);
    expect(r.coef).toBeCloseTo(0.65, 12);
    expect(() => truncationRows(0, 51)).toThrow(/\(0, 1\]/);
    expect(() => truncationRows(1.5, 51)).toThrow(/\(0, 1\]/);
    expect(() => G.sample(tensor(new Float32Array(16), [1, 16]), [3], 0)).toThrow(/truncation/);
    expect(() => G.sample(tensor(new Float32Array(16), [1, 16]), [10], 1)).toThrow(/class id 10/);
  });

  it('truncated noise: |z| <= 2 t, the truncated normal\'s spread, seeded', () => {
    const z = truncatedNoise(400, 128, 0.5, 7);
    let s = 0;
    let s2 = 0;
    for (const v of z) {
      expect(Math.abs(v)).toBeLessThanOrEqual(1);
      s += v;
      s2 += v * v;
    }
    const m = s / z.length;
    const sd = Math.sqrt(s2 / z.length - m * m);
    expect(Math.abs(m)).toBeLessThan(0.01);
    expect(sd).toBeCloseTo(0.5 * 0.8796, 2); // std of N(0, 1) truncated to [-2, 2]
    expect(truncatedNoise(2, 3, 1, 7)).toEqual(truncatedNoise(2, 3, 1, 7));
  });

  it('frozen spectral norms (W / sigma computed once) give the same images; train() thaws them', async () => {
    const z = gpu('z.0.613');
    const y = gpu('y');
    G.freezeSpectralNorms();
    const out = G.sample(z, y, 0.613);
    expectClose(await read(out), get('out.eval.0.613').data as Float32Array, { ...TOL, what: 'frozen out.eval.0.613' });
    G.train();
    G.eval();
    const again = G.sample(z, y, 0.613);
    expectClose(await read(again), await read(out), { atol: 1e-5, rtol: 1e-5, what: 'thawed' });
    for (const v of [z, y, out, again]) v.dispose();
  }, 60_000);

  // last: it moves the spectral-norm state
  it('training mode: one power iteration per spectral norm, u and v stored', async () => {
    const z = gpu('z.0.7');
    const y = tensor(Int32Array.of(3), [1], 'i32');
    G.train();
    const out = G.sample(z, y, 0.7);
    G.eval();
    expectClose(await read(out), get('out.train').data as Float32Array, { ...TOL, what: 'out.train' });
    const sd = G.stateDict();
    let checked = 0;
    for (const [k, t] of file.tensors) {
      if (!k.startsWith('after.')) continue;
      expectClose(await read(sd.get(k.slice(6))!), t.data as Float32Array, { atol: 1e-5, rtol: 1e-4, what: k });
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
    for (const v of [z, y, out]) v.dispose();
  }, 60_000);
});

describe('BigGAN-deep with random weights', () => {
  it('settleSpectralNorms does the converter\'s power iteration: finite images in [-1, 1], mode kept', async () => {
    const R = new BigGANDeep('biggan-deep-tiny');
    R.eval();
    const z = tensor(truncatedNoise(2, 16, 1, 3), [2, 16]);
    const before = await read(R.sample(z, [1, 2], 1));
    // sigma = u . W v from random unit vectors is near 0: the normalised layers overflow (as in PyTorch)
    expect(before.some((v) => !Number.isFinite(v))).toBe(true);
    R.settleSpectralNorms();
    expect(R.training).toBe(false);
    const after = await read(R.sample(z, [1, 2], 1));
    expect(after.every((v) => Number.isFinite(v) && Math.abs(v) <= 1)).toBe(true);
    expect(Math.max(...after) - Math.min(...after)).toBeGreaterThan(0.1);
    // frozen: a changed u no longer reaches the output until thawed
    R.freezeSpectralNorms();
    const u = R.generator.gen_z.getBuffer('weight_u')!;
    const other = tensor(new Float32Array(u.size).fill(1 / Math.sqrt(u.size)), [u.size]);
    copyInto(u, other);
    expect(await read(R.sample(z, [1, 2], 1))).toEqual(after);
    R.thawSpectralNorms();
    const thawed = await read(R.sample(z, [1, 2], 1));
    expect(thawed.some((v, i) => Math.abs(v - after[i]!) > 1e-3)).toBe(true);
    for (const t of [z, other]) t.dispose();
    R.dispose();
  }, 60_000);
});

describe('BigGAN-deep presets', () => {
  it('128 and 256 have the released checkpoints\' layout', () => {
    for (const c of [BIGGAN_DEEP_128, BIGGAN_DEEP_256]) {
      // attention before layer 8, at 64x64 (four up-samplings from 4x4)
      expect(4 * 2 ** c.layers.slice(0, c.attention_layer_position).filter(([up]) => up).length).toBe(64);
      expect(c.layers[0]![1]).toBe(16);
      expect(4 * 2 ** c.layers.filter(([up]) => up).length).toBe(c.output_dim);
    }
    expect(BIGGAN_DEEP_128.layers).toHaveLength(10);
    expect(BIGGAN_DEEP_256.layers).toHaveLength(12);
    expect(() => bigGANDeepConfig('biggan-deep-64')).toThrow(/unknown BigGAN-deep config/);
  });
});
