/**
 * BigGAN training (src/models/biggan-train.ts):
 *   - one full iteration (2 D steps of batch 2, 1 G step, Adam lr 2e-4 betas (0, 0.999), EMA decay
 *     0.9999) from fixed latents against BigGAN-PyTorch's train_fns.py written out in
 *     scripts/fixtures/torch_biggan.py: G, D and G_ema state dicts (parameters and SN/BN buffers)
 *     and the losses afterwards;
 *   - a step with random latents changes every parameter, Adam counts numDSteps D steps and one G
 *     step, EMA is pegged to G before emaStart;
 *   - a checkpoint written by the training loop (atomically, periodically) resumes into a freshly
 *     initialised trainer and reproduces the next iteration bit for bit.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync, mkdtempSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { tensor, manualSeed, rand, OpError, type Tensor } from '../../src/engine/index.ts';
import { parseSafetensors, type SafeTensor } from '../../src/engine/io/index.ts';
import type { HostTensor, Module } from '../../src/engine/nn/module.ts';
import { Generator, Discriminator } from '../../src/models/biggan.ts';
import { BigGANTrainer, trainBigGAN, CIFAR_TRAIN_CONFIG } from '../../src/models/biggan-train.ts';

beforeAll(async () => {
  await engine();
});

function loadFixture(name: string): { get(n: string): SafeTensor; tensor(n: string): Tensor; group(p: string): Map<string, HostTensor> } {
  const file = parseSafetensors(new Uint8Array(readFileSync(new URL(`../fixtures/biggan/${name}.safetensors`, import.meta.url))), { source: name });
  const get = (n: string): SafeTensor => {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`${name}: no tensor ${n}`);
    return t;
  };
  return {
    get,
    tensor: (n) => tensor(get(n).data as Float32Array | Int32Array, get(n).shape),
    group: (prefix) => {
      const out = new Map<string, HostTensor>();
      for (const [k, t] of file.tensors) if (k.startsWith(`${prefix}.`)) out.set(k.slice(prefix.length + 1), { shape: t.shape, data: t.data as Float32Array });
      return out;
    },
  };
}

async function snapshot(m: Module): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of m.stateDict()) out.set(k, Float32Array.from((await t.data()) as Float32Array));
  return out;
}

/**
 * G's parameters whose gradient is zero in exact arithmetic: every G conv/linear bias except the
 * output conv's feeds a batch norm (directly or through the residual sum), which removes any
 * per-channel constant. Adam normalises their rounding-noise gradients to steps of up to lr in
 * either direction, in PyTorch as here, so they are checked against that bound instead.
 */
const BN_CANCELLED = /^(linear\.bias|blocks\.\d+\.0\.(conv1|conv2|conv_sc)\.bias)$/;

async function expectState(m: Module, ref: Map<string, HostTensor>, what: string, tol: { atol: number; rtol: number }, before?: Map<string, HostTensor>): Promise<void> {
  const state = m.stateDict();
  expect([...state.keys()].sort()).toEqual([...ref.keys()].sort());
  for (const [k, t] of state) {
    const got = await read(t);
    if (before && BN_CANCELLED.test(k)) {
      const was = before.get(k)!.data as Float32Array;
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - was[i]), `${what}.${k}[${i}]`).toBeLessThanOrEqual(2e-4 * (1 + 1e-3));
      continue;
    }
    expectClose(got, ref.get(k)!.data as Float32Array, { ...tol, what: `${what}.${k}` });
  }
}

const TINY = { ch: 4, dimZ: 8, nClasses: 3 };

describe('BigGAN training iteration against BigGAN-PyTorch', () => {
  it('2 D steps + 1 G step + EMA from fixed latents: G, D, G_ema and losses', async () => {
    const fx = loadFixture('train_iter');
    const G = new Generator(TINY);
    const D = new Discriminator(TINY);
    G.loadStateDict(fx.group('paramG'));
    D.loadStateDict(fx.group('paramD'));
    const tr = new BigGANTrainer(G, D, { batchSize: 2, numDSteps: 2, emaStart: 0, emaDecay: 0.9999 });
    const x = fx.tensor('in.x');
    const yr = fx.tensor('in.yr');
    const zd = fx.get('in.zd').data as Float32Array;
    const yd = fx.get('in.yd').data as Int32Array;
    const fixed = {
      d: [0, 1].map((s) => ({ z: tensor(zd.slice(s * 16, s * 16 + 16), [2, 8]), y: tensor(yd.slice(s * 2, s * 2 + 2), [2]) })),
      g: { z: fx.tensor('in.zg'), y: fx.tensor('in.yg') },
    };
    try {
      const before = await snapshot(G);
      const l = tr.step(x, yr, fixed);
      expect(tr.itr).toBe(1);
      const lossD = (await l.dReal.item()) + (await l.dFake.item());
      expect(Math.abs(lossD - (fx.get('loss.D1').data as Float32Array)[0])).toBeLessThan(1e-3 * Math.max(1, Math.abs(lossD)));
      expectClose([await l.g.item()], fx.get('loss.G').data as Float32Array, { atol: 1e-4, rtol: 1e-3, what: 'loss.G' });
      // Adam moves weights by ~lr = 2e-4 per step: absolute tolerances well below that
      await expectState(G, fx.group('afterG'), 'G', { atol: 3e-6, rtol: 1e-4 }, fx.group('paramG'));
      await expectState(D, fx.group('afterD'), 'D', { atol: 3e-6, rtol: 1e-4 });
      await expectState(tr.Gema!, fx.group('ema'), 'G_ema', { atol: 3e-6, rtol: 1e-4 });
      // and the update itself is visible: every G parameter with a gradient moved
      for (const [k, p] of G.namedParameters()) {
        if (BN_CANCELLED.test(k)) continue;
        const now = await read(p);
        const was = before.get(k)!;
        expect(now.some((v, i) => v !== was[i]), `${k} changed`).toBe(true);
      }
      for (const t of [l.dReal, l.dFake, l.g]) t.dispose();
    } finally {
      for (const t of [x, yr, fixed.g.z, fixed.g.y, ...fixed.d.flatMap((d) => [d.z, d.y])]) t.dispose();
      tr.dispose();
    }
  });
});

describe('BigGAN training with random latents, EMA and checkpoints', () => {
  it('defaults are launch_cifar_ema.sh; bad batches are refused', () => {
    expect(CIFAR_TRAIN_CONFIG).toMatchObject({ batchSize: 50, numDSteps: 4, gLr: 2e-4, dLr: 2e-4, gBetas: [0, 0.999], dBetas: [0, 0.999], emaDecay: 0.9999, emaStart: 1000 });
    const tr = BigGANTrainer.create({ ch: 1, dimZ: 4, nClasses: 3 }, {}, { batchSize: 2, numDSteps: 2 });
    try {
      const x = tensor(new Float32Array(3 * 3 * 32 * 32), [3, 3, 32, 32]);
      const y = tensor(new Int32Array(3), [3]);
      expect(() => tr.step(x, y)).toThrow(OpError);
      expect(() => tr.step(x, y)).toThrow(/numDSteps \* batchSize/);
      expect(tr.itr).toBe(0);
      x.dispose();
      y.dispose();
    } finally {
      tr.dispose();
    }
  });

  it('a step changes every weight; Adam counts 2 D steps and 1 G step; EMA pegged before emaStart', async () => {
    manualSeed(11);
    const tr = BigGANTrainer.create(TINY, {}, { batchSize: 2, numDSteps: 2, emaStart: 5, seed: 3 });
    const x = rand([4, 3, 32, 32]);
    const xs = x.mul(2).sub(1);
    const y = tensor(new Int32Array([0, 1, 2, 1]), [4]);
    try {
      const g0 = await snapshot(tr.G);
      const d0 = await snapshot(tr.D);
      const l = tr.step(xs, y);
      for (const v of [await l.dReal.item(), await l.dFake.item(), await l.g.item()]) expect(Number.isFinite(v)).toBe(true);
      for (const t of [l.dReal, l.dFake, l.g]) t.dispose();
      for (const [m, before] of [[tr.G, g0], [tr.D, d0]] as const) {
        for (const [k, p] of m.namedParameters()) {
          if (m === tr.G && BN_CANCELLED.test(k)) continue;
          const now = await read(p);
          expect(now.some((v, i) => v !== before.get(k)![i]), `${k} changed`).toBe(true);
        }
      }
      const sd = await tr.optD.stateDict();
      const sg = await tr.optG.stateDict();
      expect(new Set(sd.meta.steps)).toEqual(new Set([2]));
      expect(new Set(sg.meta.steps)).toEqual(new Set([1]));
      // itr 1 < emaStart: decay 0, G_ema equals G (parameters and buffers)
      const ge = await snapshot(tr.Gema!);
      for (const [k, v] of await snapshot(tr.G)) expect(Array.from(ge.get(k)!), k).toEqual(Array.from(v));
    } finally {
      for (const t of [x, xs, y]) t.dispose();
      tr.dispose();
    }
  });

  it('training loop checkpoints atomically; a fresh trainer resumes and reproduces the next step exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'biggan-ckpt-'));
    const path = join(dir, 'biggan.safetensors');
    const cfg = { batchSize: 2, numDSteps: 2, emaStart: 1, emaDecay: 0.9, seed: 5 };
    manualSeed(21);
    const a = BigGANTrainer.create(TINY, {}, cfg);
    const x = rand([4, 3, 32, 32]);
    const xs = x.mul(2).sub(1);
    const y = tensor(new Int32Array([2, 0, 1, 2]), [4]);
    const batches = function* (): IterableIterator<{ x: Tensor; y: Tensor }> {
      for (;;) yield { x: xs, y };
    };
    manualSeed(99);
    const b = BigGANTrainer.create(TINY, {}, cfg);
    try {
      const logs: number[] = [];
      await trainBigGAN(a, batches(), { iterations: 2, checkpointPath: path, checkpointEvery: 2, onLog: (itr, l) => logs.push(itr, l.g), logEvery: 1 });
      expect(a.itr).toBe(2);
      expect(logs.length).toBe(4);
      expect(existsSync(path)).toBe(true);
      expect(readdirSync(dir)).toEqual(['biggan.safetensors']);
      // A goes on to iteration 3
      await trainBigGAN(a, batches(), { iterations: 3 });
      const ga = await snapshot(a.G);
      const da = await snapshot(a.D);
      const ea = await snapshot(a.Gema!);
      // B (different initial weights) resumes from A's iteration-2 checkpoint
      await b.load(path);
      expect(b.itr).toBe(2);
      const l = b.step(xs, y);
      for (const t of [l.dReal, l.dFake, l.g]) t.dispose();
      expect(b.itr).toBe(3);
      for (const [m, ref, what] of [[b.G, ga, 'G'], [b.D, da, 'D'], [b.Gema!, ea, 'G_ema']] as const) {
        for (const [k, v] of await snapshot(m)) expect(Array.from(v), `${what}.${k}`).toEqual(Array.from(ref.get(k)!));
      }
      const sa = await a.optG.stateDict();
      const sb = await b.optG.stateDict();
      expect(sb.meta.steps).toEqual(sa.meta.steps);
      for (const [k, v] of sa.tensors) expect(Array.from(sb.tensors.get(k)!.data), k).toEqual(Array.from(v.data));
    } finally {
      for (const t of [x, xs, y]) t.dispose();
      a.dispose();
      b.dispose();
    }
  });
});
