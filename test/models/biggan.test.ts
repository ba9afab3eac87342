/**
 * BigGAN (src/models/biggan.ts) against BigGAN-PyTorch written out in
 * scripts/fixtures/torch_biggan.py (float64 from float32 weights):
 *   - state_dict names, shapes, order and parameter counts of the CIFAR-size G and D (10 and 100
 *     classes) and of G with G_shared + hier;
 *   - a tiny G/D (ch 4, dim_z 8, 3 classes, batch 2) from the same weights: eval-mode outputs (SN
 *     iterates without storing u), then BigGAN's D step (G under no_grad, one D forward of the
 *     concatenated fake+real batch, hinge loss, every D gradient, the u0/sv0/stored_* buffers
 *     after it) and G step (-mean D(G(z)), every G gradient, buffers);
 *   - G_shared + hier: eval and train outputs, gradients of sum(G * r), buffers;
 *   - the latent: sample variance of z equals sigma^2 (the variance, not the std), classes uniform;
 *   - the uint8 conversion (numpy's float32 arithmetic and truncation) and the .npz writer.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { backward, tensor, noGrad, concat, split, add, OpError, type Tensor } from '../../src/engine/index.ts';
import { parseSafetensors, type SafeTensor } from '../../src/engine/io/index.ts';
import type { HostTensor, Module } from '../../src/engine/nn/module.ts';
import { Generator, Discriminator, hingeLossD, hingeLossG, sampleLatent, generate, toUint8, sampleOutliers } from '../../src/models/biggan.ts';
import { saveOutliersNpz } from '../../src/models/biggan-npz.ts';

beforeAll(async () => {
  await engine();
});

interface Fixture {
  get(name: string): SafeTensor;
  f32(name: string): Float32Array;
  tensor(name: string): Tensor;
  /** entries `${prefix}.<name>` without the prefix */
  group(prefix: string): Map<string, HostTensor>;
}

function loadFixture(name: string): Fixture {
  const file = parseSafetensors(new Uint8Array(readFileSync(new URL(`../fixtures/biggan/${name}.safetensors`, import.meta.url))), { source: name });
  const get = (n: string): SafeTensor => {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`${name}: no tensor ${n}`);
    return t;
  };
  return {
    get,
    f32: (n) => get(n).data as Float32Array,
    tensor: (n) => tensor(get(n).data as Float32Array | Int32Array, get(n).shape),
    group: (prefix) => {
      const out = new Map<string, HostTensor>();
      for (const [k, t] of file.tensors) if (k.startsWith(`${prefix}.`)) out.set(k.slice(prefix.length + 1), { shape: t.shape, data: t.data as Float32Array });
      return out;
    },
  };
}

interface NamesEntry {
  state: [string, number[]][];
  parameters: [string, number[]][];
  numParameters: number;
}

function expectSameNames(m: Module, ref: NamesEntry): void {
  expect([...m.stateDict()].map(([n, t]) => [n, [...t.shape]])).toEqual(ref.state);
  expect(m.namedParameters().map(([n, p]) => [n, [...p.shape]])).toEqual(ref.parameters);
  expect(m.numParameters()).toBe(ref.numParameters);
}

async function expectBuffers(fx: Fixture, prefix: string, m: Module, tol: { atol: number; rtol: number }): Promise<void> {
  const ref = fx.group(prefix);
  const bufs = m.namedBuffers();
  if (prefix.startsWith('after')) expect(bufs.length).toBe(ref.size);
  for (const [n, b] of bufs) {
    const r = ref.get(n);
    expect(r, `${prefix}.${n}`).toBeDefined();
    expectClose(await read(b), r!.data as Float32Array, { ...tol, what: `${prefix}.${n}` });
  }
}

async function expectGrads(fx: Fixture, prefix: string, m: Module, tol: { atol: number; rtol: number }): Promise<void> {
  for (const [n, p] of m.namedParameters()) {
    expect(p.grad, `grad of ${n}`).not.toBeNull();
    expectClose(await read(p.grad!), fx.f32(`${prefix}.${n}`), { ...tol, what: `${prefix}.${n}` });
  }
}

describe('BigGAN: BigGAN-PyTorch names, shapes and counts (CIFAR config)', () => {
  const names = JSON.parse(readFileSync(new URL('../fixtures/biggan/names.json', import.meta.url), 'utf8')) as Record<string, NamesEntry>;

  it('G and D at ch 64, dim_z 128 for 10 and 100 classes; G with G_shared + hier', () => {
    for (const [key, make] of [
      ['G_c10', () => new Generator({ nClasses: 10 })],
      ['D_c10', () => new Discriminator({ nClasses: 10 })],
      ['G_c100', () => new Generator({ nClasses: 100 })],
      ['D_c100', () => new Discriminator({ nClasses: 100 })],
      ['G_c10_shared_hier', () => new Generator({ nClasses: 10, shared: true, hier: true })],
    ] as const) {
      const m = make();
      try {
        expectSameNames(m, names[key]);
      } finally {
        m.dispose();
      }
    }
    expect(names.G_c10.numParameters).toBe(4_304_387);
    expect(names.D_c10.numParameters).toBe(4_207_361);
  });

  it('N02 init on weights, PyTorch default biases, u0 ~ N(0, 1), sv0 = 1, ccbn tables N(0, 0.02)', async () => {
    const G = new Generator({ ch: 8, nClasses: 10 });
    try {
      const w = await read(G.blocks.at(1).at(0).conv1.weight);
      const sd = Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length);
      expect(Math.abs(sd / 0.02 - 1)).toBeLessThan(0.05);
      const g = await read(G.blocks.at(0).at(0).bn1.gain.weight);
      expect(Math.abs(Math.sqrt(g.reduce((a, b) => a + b * b, 0) / g.length) / 0.02 - 1)).toBeLessThan(0.2);
      const b = await read(G.blocks.at(1).at(0).conv1.bias!);
      expect(b.every((v) => Math.abs(v) <= 1 / Math.sqrt(32 * 9))).toBe(true);
      const u = await read(G.linear.getBuffer('u0')!);
      expect(u.length).toBe(32 * 16);
      expect(Math.abs(Math.sqrt(u.reduce((a, v) => a + v * v, 0) / u.length) - 1)).toBeLessThan(0.15);
      expect(Array.from(await read(G.linear.getBuffer('sv0')!))).toEqual([1]);
    } finally {
      G.dispose();
    }
  });

  it('28x28 grey: G with bottom width 7, two up-samplings and one output channel; D with one input channel', async () => {
    const G = new Generator({ ch: 2, dimZ: 8, nClasses: 3, bottomWidth: 7, upsamples: 2, outChannels: 1 });
    const D = new Discriminator({ ch: 2, nClasses: 3, inChannels: 1 });
    try {
      expect(G.resolution).toBe(28);
      expect(G.blocks.length).toBe(2);
      expect(G.linear.weight.shape).toEqual([8 * 7 * 7, 8]);
      expect(G.stateDict().get('output_layer.2.weight')!.shape).toEqual([1, 8, 3, 3]);
      expect(D.stateDict().get('blocks.0.0.conv1.weight')!.shape).toEqual([8, 1, 3, 3]);
      const z = tensor(Float32Array.from({ length: 4 * 8 }, (_, i) => Math.cos(i)), [4, 8]);
      const y = tensor(Int32Array.from([0, 1, 2, 1]), [4], 'i32');
      const img = generate(G, z, y);
      expect(img.shape).toEqual([4, 1, 28, 28]);
      const px = await read(img);
      expect(px.every((v) => v >= -1 && v <= 1)).toBe(true);
      expect(new Set(Array.from(px, (v) => v.toFixed(3))).size).toBeGreaterThan(100);
      const logits = noGrad(() => D.forward(img, y));
      expect(logits.shape).toEqual([4, 1]);
      expect((await read(logits)).every(Number.isFinite)).toBe(true);
      expect(() => D.forward(tensor(new Float32Array(4 * 3 * 28 * 28), [4, 3, 28, 28]), y)).toThrow(/x must be \[N, 1, H, W\]/);
      const s = await sampleOutliers(G, 5, { seed: 3, batchSize: 2 });
      expect(s.shape).toEqual([5, 1, 28, 28]);
      expect(s.x.length).toBe(5 * 28 * 28);
      for (const t of [z, y, img, logits]) t.dispose();
    } finally {
      G.dispose();
      D.dispose();
    }
  });

  it('rejects bad inputs before running kernels', () => {
    const G = new Generator({ ch: 1, dimZ: 4, nClasses: 3 });
    try {
      const z = tensor(new Float32Array(10), [2, 5]);
      const y = tensor(new Int32Array([0, 1]), [2]);
      expect(() => G.forward(z, y)).toThrow(OpError);
      expect(() => G.forward(z, y)).toThrow(/z must be f32 \[N, 4\]/);
      z.dispose();
      y.dispose();
      expect(() => new Generator({ ch: 0 })).toThrow(/ch must be a positive integer/);
      const D = new Discriminator({ ch: 1, nClasses: 3 });
      const x = tensor(new Float32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]);
      const yf = tensor(new Float32Array([0, 1]), [2]);
      expect(() => D.forward(x, yf)).toThrow(/y must be i32 \[2\]/);
      const x1 = tensor(new Float32Array(2 * 8 * 8), [2, 1, 8, 8]);
      expect(() => D.forward(x1, yf)).toThrow(/x must be \[N, 3, H, W\]/);
      for (const t of [x, yf, x1]) t.dispose();
      D.dispose();
      const Gs = new Generator({ ch: 1, dimZ: 4, nClasses: 3, hier: true });
      expect(Gs.zChunkSize).toBe(1);
      expect(() => new Generator({ dimZ: 3, hier: true })).toThrow(/hier needs dimZ >= 4/);
      Gs.dispose();
    } finally {
      G.dispose();
    }
  });
});

describe('BigGAN: tiny G and D against BigGAN-PyTorch (launch_cifar_ema.sh options)', () => {
  it('eval outputs, then a D step and a G step: outputs, hinge losses, gradients, SN/BN buffers', async () => {
    const fx = loadFixture('tiny');
    const G = new Generator({ ch: 4, dimZ: 8, nClasses: 3 });
    const D = new Discriminator({ ch: 4, nClasses: 3 });
    const z = fx.tensor('in.z');
    const y = fx.tensor('in.y');
    const x = fx.tensor('in.x');
    const yr = fx.tensor('in.yr');
    try {
      G.loadStateDict(fx.group('paramG'));
      D.loadStateDict(fx.group('paramD'));
      const tol = { atol: 2e-4, rtol: 1e-3 };
      // 1. eval: the power iteration runs on a copy of u0; nothing changes
      G.eval();
      D.eval();
      const ge = generate(G, z, y);
      expectClose(await read(ge), fx.f32('eval.G'), { ...tol, what: 'eval.G' });
      const de = noGrad(() => D.forward(x, yr));
      expectClose(await read(de), fx.f32('eval.D'), { ...tol, what: 'eval.D' });
      await expectBuffers(fx, 'paramG', G, { atol: 0, rtol: 0 });
      await expectBuffers(fx, 'paramD', D, { atol: 0, rtol: 0 });
      ge.dispose();
      de.dispose();

      // 2. D step (train_fns.py): G(z) without grad, one D forward of cat([G_z, x])
      G.train();
      D.train();
      const gz = noGrad(() => G.forward(z, y));
      const dIn = concat([gz, x], 0);
      const yIn = concat([y, yr], 0);
      const dOut = D.forward(dIn, yIn);
      const [dFake, dReal] = split(dOut, [2, 2], 0);
      const l = hingeLossD(dFake, dReal);
      const lossD = add(l.real, l.fake);
      backward(lossD);
      expectClose(await read(gz), fx.f32('step1.G'), { ...tol, what: 'step1.G' });
      expectClose(await read(dOut), fx.f32('step1.D'), { ...tol, what: 'step1.D' });
      expectClose(await read(lossD), fx.f32('loss.D'), { ...tol, what: 'loss.D' });
      await expectGrads(fx, 'gradD', D, { atol: 5e-4, rtol: 2e-3 });
      await expectBuffers(fx, 'after1.G', G, { atol: 1e-4, rtol: 1e-3 });
      await expectBuffers(fx, 'after1.D', D, { atol: 1e-4, rtol: 1e-3 });
      for (const t of [gz, dIn, yIn, dOut, dFake, dReal, l.real, l.fake, lossD]) t.dispose();

      // 3. G step: D's parameters do not require grad (toggle_grads)
      for (const p of D.parameters()) p.requiresGrad = false;
      const g2 = G.forward(z, y);
      const d2 = D.forward(g2, y);
      const lossG = hingeLossG(d2);
      backward(lossG);
      expectClose(await read(lossG), fx.f32('loss.G'), { ...tol, what: 'loss.G' });
      await expectGrads(fx, 'gradG', G, { atol: 5e-4, rtol: 2e-3 });
      await expectBuffers(fx, 'after2.G', G, { atol: 1e-4, rtol: 1e-3 });
      await expectBuffers(fx, 'after2.D', D, { atol: 1e-4, rtol: 1e-3 });
      for (const t of [g2, d2, lossG]) t.dispose();
    } finally {
      for (const t of [z, y, x, yr]) t.dispose();
      G.dispose();
      D.dispose();
    }
  });

  it('G_shared + hier: eval and train outputs, gradients, buffers', async () => {
    const fx = loadFixture('shared_hier');
    const G = new Generator({ ch: 4, dimZ: 8, nClasses: 3, shared: true, hier: true });
    const z = fx.tensor('in.z');
    const y = fx.tensor('in.y');
    const r = fx.tensor('in.r');
    try {
      expect(G.zChunkSize).toBe(2);
      G.loadStateDict(fx.group('paramG'));
      const tol = { atol: 2e-4, rtol: 1e-3 };
      G.eval();
      const ge = generate(G, z, y);
      expectClose(await read(ge), fx.f32('eval.G'), { ...tol, what: 'eval.G' });
      ge.dispose();
      G.train();
      const g = G.forward(z, y);
      const prod = g.mul(r);
      const s = prod.sum();
      backward(s);
      expectClose(await read(g), fx.f32('train.G'), { ...tol, what: 'train.G' });
      await expectGrads(fx, 'gradG', G, { atol: 5e-4, rtol: 2e-3 });
      await expectBuffers(fx, 'after.G', G, { atol: 1e-4, rtol: 1e-3 });
      for (const t of [g, prod, s]) t.dispose();
    } finally {
      for (const t of [z, y, r]) t.dispose();
      G.dispose();
    }
  });
});

describe('BigGAN: latents, uint8 images and .npz files', () => {
  it('sampleLatent: z has variance sigma^2 (not std), seeded draws repeat, classes uniform', async () => {
    const n = 4000;
    const a = sampleLatent(n, { sigma2: 50, seed: 7, dimZ: 16, nClasses: 10 });
    const b = sampleLatent(n, { sigma2: 50, seed: 7, dimZ: 16, nClasses: 10 });
    try {
      const z = await read(a.z);
      expect(a.z.shape).toEqual([n, 16]);
      const m = z.reduce((s, v) => s + v, 0) / z.length;
      const v = z.reduce((s, x) => s + (x - m) ** 2, 0) / (z.length - 1);
      // sample variance of 64000 normals: relative standard error sqrt(2/N) = 0.56 %
      expect(Math.abs(v / 50 - 1)).toBeLessThan(0.03);
      expect(Math.abs(m)).toBeLessThan(5 * Math.sqrt(50 / z.length));
      expect(Array.from(await read(b.z))).toEqual(Array.from(z));
      const ys = Array.from(await a.y.data());
      expect(ys).toEqual(Array.from(await b.y.data()));
      const counts = new Array(10).fill(0);
      for (const c of ys) counts[c]++;
      // chi-square with 9 degrees of freedom: 27.9 is its 0.999 quantile
      const chi = counts.reduce((s, c) => s + (c - n / 10) ** 2 / (n / 10), 0);
      expect(chi).toBeLessThan(27.9);
      expect(Math.min(...ys)).toBe(0);
      expect(Math.max(...ys)).toBe(9);
    } finally {
      for (const t of [a.z, a.y, b.z, b.y]) t.dispose();
    }
    expect(() => sampleLatent(3, { sigma2: -1 })).toThrow(/variance/);
  });

  it('toUint8 is np.uint8(255 * (x + 1) / 2.) in float32', () => {
    const x = Float32Array.from([-1, 1, 0, -0.5, 0.99999, -0.99999, 0.3, 1.5, -2]);
    const got = Array.from(toUint8(x));
    // numpy float32: 0, 255, 127 (127.5 truncated), 63 (63.75), 254 (254.99873), 0, 165 (165.75)
    expect(got).toEqual([0, 255, 127, 63, 254, 0, 165, 255, 0]);
  });

  it('sampleOutliers: seeded batches of G(z, y) as uint8 NCHW, saved as an .npz with "x" and "y"', async () => {
    // the tiny test's shapes (batch 2, ch 4): its pipelines are already compiled
    const G = new Generator({ ch: 4, dimZ: 8, nClasses: 3 });
    G.eval();
    try {
      const set = await sampleOutliers(G, 4, { sigma2: 50, seed: 3, batchSize: 2 });
      expect(set.shape).toEqual([4, 3, 32, 32]);
      expect(set.x.length).toBe(4 * 3 * 32 * 32);
      // batch 1 (images 2, 3) is G on sampleLatent(2, seed 3 + 1)
      const lat = sampleLatent(2, { sigma2: 50, seed: 4, dimZ: 8, nClasses: 3 });
      const img = generate(G, lat.z, lat.y);
      const want = toUint8(await img.data() as Float32Array);
      expect(Array.from(set.x.slice(2 * 3072, 4 * 3072))).toEqual(Array.from(want));
      expect(Array.from(set.y.slice(2, 4))).toEqual(Array.from(await lat.y.data()));
      for (const t of [lat.z, lat.y, img]) t.dispose();
      expect(new Set(set.x).size).toBeGreaterThan(20);
      const again = await sampleOutliers(G, 4, { sigma2: 50, seed: 3, batchSize: 2 });
      expect(Array.from(again.x)).toEqual(Array.from(set.x));

      const { mkdtempSync } = await import('node:fs');
      const { join } = await import('node:path');
      const { tmpdir } = await import('node:os');
      const path = join(mkdtempSync(join(tmpdir(), 'biggan-out-')), 'samples-50.0.npz');
      await saveOutliersNpz(path, set);
      const { NpzFile } = await import('../../src/data/npy.ts');
      const npz = await NpzFile.open(path);
      const x = await npz.array('x');
      expect(x.header.shape).toEqual([4, 3, 32, 32]);
      expect(x.header.descr).toBe('|u1');
      expect(Array.from(x.data as Uint8Array)).toEqual(Array.from(set.x));
      expect(Array.from((await npz.array('y')).data as Int32Array)).toEqual(Array.from(set.y));
    } finally {
      G.dispose();
    }
  });
});
