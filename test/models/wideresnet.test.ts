/**
 * WideResNet against PyTorch (scripts/fixtures/torch_models.py, the OE repository's wrn.py):
 * state_dict names/shapes/order of WRN-40-2 and WRN-16-4, the parameter count, wrn.py's
 * initialisation, and a WRN-10-1 (one equalInOut block, two widening blocks with convShortcut)
 * forward in eval mode and forward + backward in training mode (batch statistics, dropout 0)
 * from PyTorch's weights.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { backward, noGrad, tensor, OpError, runtime, BatchNorm2d } from '../../src/engine/index.ts';
import { WideResNet, BasicBlock, wrn40x2 } from '../../src/models/wideresnet.ts';
import { loadFixture, loadNames, expectSameNames, expectGrads } from './fixtures.ts';

beforeAll(async () => {
  await engine();
});

/** Parameters of a WRN counted from the architecture (independently of the module tree). */
function countWrn(depth: number, k: number, classes: number): number {
  const n = (depth - 4) / 6;
  const w = [16, 16 * k, 32 * k, 64 * k];
  let total = 3 * 16 * 9; // conv1
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < n; i++) {
      const cin = i === 0 ? w[s] : w[s + 1];
      const cout = w[s + 1];
      total += 2 * cin + cin * cout * 9 + 2 * cout + cout * cout * 9; // bn1, conv1, bn2, conv2
      if (cin !== cout) total += cin * cout; // 1x1 convShortcut
    }
  }
  return total + 2 * w[3] + w[3] * classes + classes; // bn1, fc
}

describe('WideResNet: PyTorch names, shapes and counts', () => {
  const names = loadNames();

  it('WRN-40-2 (10 classes): state_dict as wrn.py, 2,243,546 parameters', () => {
    expect(countWrn(40, 2, 10)).toBe(2_243_546);
    const m = wrn40x2(10);
    try {
      expectSameNames(m, names.wrn_40_2_c10);
      expect(m.numParameters()).toBe(2_243_546);
      expect(m.nChannels).toEqual([16, 32, 64, 128]);
    } finally {
      m.dispose();
    }
  });

  it('WRN-16-4 (100 classes): general depth and widen factor', () => {
    const m = new WideResNet(100, { depth: 16, widenFactor: 4 });
    try {
      expectSameNames(m, names.wrn_16_4_c100);
      expect(m.numParameters()).toBe(countWrn(16, 4, 100));
    } finally {
      m.dispose();
    }
  });

  it("initialisation as wrn.py: conv N(0, 2/(k*k*out)), BN 1/0, Linear bias 0", async () => {
    const m = wrn40x2(10);
    try {
      const w = await read((m.block3.layer.at(5) as BasicBlock).conv1.weight);
      const n = w.length;
      const mean = w.reduce((a, b) => a + b, 0) / n;
      const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
      const want = Math.sqrt(2 / (9 * 128));
      expect(n).toBe(128 * 128 * 9);
      expect(Math.abs(mean)).toBeLessThan(5 * want / Math.sqrt(n));
      expect(Math.abs(sd / want - 1)).toBeLessThan(0.01);
      const sc = await read((m.block2.layer.at(0) as BasicBlock).convShortcut!.weight);
      const sdSc = Math.sqrt(sc.reduce((a, b) => a + b * b, 0) / sc.length);
      expect(Math.abs(sdSc / Math.sqrt(2 / 64) - 1)).toBeLessThan(0.1);
      for (const [name, p] of m.namedParameters()) {
        if (/bn\d\.weight$/.test(name)) expect(Array.from(await read(p)).every((v) => v === 1), name).toBe(true);
        if (/bn\d\.bias$/.test(name)) expect(Array.from(await read(p)).every((v) => v === 0), name).toBe(true);
      }
      expect(Array.from(await read(m.fc.bias!)).every((v) => v === 0)).toBe(true);
      const fw = await read(m.fc.weight);
      expect(fw.every((v) => Math.abs(v) <= 1 / Math.sqrt(128))).toBe(true);
    } finally {
      m.dispose();
    }
  });

  it('WRN-40-2 runs a 32x32 image under noGrad (logits and 128 features)', async () => {
    const m = wrn40x2(10).eval();
    try {
      const x = tensor(Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)), [1, 3, 32, 32]);
      const { y, f } = noGrad(() => ({ y: m.forward(x), f: m.features(x) }));
      expect(y.shape).toEqual([1, 10]);
      expect(f.shape).toEqual([1, 128]);
      expect((await read(y)).every(Number.isFinite)).toBe(true);
      // logits = fc(features)
      const fv = await read(f);
      const W = await read(m.fc.weight);
      const yv = await read(y);
      const ref = Array.from({ length: 10 }, (_, c) => fv.reduce((a, v, j) => a + v * W[c * 128 + j], 0));
      expectClose(yv, ref, { atol: 1e-4, rtol: 1e-4, what: 'fc(features)' });
      for (const t of [x, y, f]) t.dispose();
    } finally {
      m.dispose();
    }
  });

  it("inChannels (pytorch-ood's in_channels) and intermediateForward (the maps before pooling)", async () => {
    const m = new WideResNet(4, { depth: 10, widenFactor: 1, inChannels: 1 }).eval();
    try {
      expect(m.conv1.weight.shape).toEqual([16, 1, 3, 3]);
      const x = tensor(Float32Array.from({ length: 2 * 32 * 32 }, (_, i) => Math.cos(i * 0.05)), [2, 1, 32, 32]);
      const { maps, f } = noGrad(() => ({ maps: m.intermediateForward(x), f: m.features(x) }));
      expect(maps.shape).toEqual([2, 64, 8, 8]);
      const mv = await read(maps);
      const ref = Array.from({ length: 2 * 64 }, (_, r) => mv.slice(r * 64, r * 64 + 64).reduce((a, b) => a + b, 0) / 64);
      expectClose(await read(f), ref, { atol: 1e-6, rtol: 1e-5, what: 'features = mean of maps' });
      expect(() => m.forward(tensor(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]))).toThrow(/\[N, 1, H, W\]/);
      for (const t of [x, maps, f]) t.dispose();
    } finally {
      m.dispose();
    }
  });

  it("pooling 'global' takes 28x28 inputs (7x7 maps averaged whole); 'avg8' refuses them as wrn.py would", async () => {
    const m = new WideResNet(10, { depth: 10, widenFactor: 1, inChannels: 1, pooling: 'global' }).eval();
    const ref8 = new WideResNet(10, { depth: 10, widenFactor: 1, inChannels: 1 }).eval();
    try {
      const x = tensor(Float32Array.from({ length: 3 * 28 * 28 }, (_, i) => Math.sin(i * 0.07)), [3, 1, 28, 28]);
      const { maps, f, y } = noGrad(() => ({ maps: m.intermediateForward(x), f: m.features(x), y: m.forward(x) }));
      expect(maps.shape).toEqual([3, 64, 7, 7]);
      expect(y.shape).toEqual([3, 10]);
      const mv = await read(maps);
      const ref = Array.from({ length: 3 * 64 }, (_, r) => mv.slice(r * 49, r * 49 + 49).reduce((a, b) => a + b, 0) / 49);
      expectClose(await read(f), ref, { atol: 1e-6, rtol: 1e-5, what: 'features = mean of the 7x7 maps' });
      expect(() => ref8.forward(x)).toThrow(/7x7 final feature maps.*pooling 'global'/);
      for (const t of [x, maps, f, y]) t.dispose();
    } finally {
      m.dispose();
      ref8.dispose();
    }
  });

  it('a training step runs each ReLU inside its BatchNorm kernels and counts batches on the host', async () => {
    const m = new WideResNet(10, { depth: 10, widenFactor: 1, dropRate: 0 });
    const x = tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [2, 3, 32, 32]);
    const dev = runtime().device;
    const labels = new Map<string, number>();
    const dispatch = dev.dispatch;
    dev.dispatch = (k, ...rest) => {
      labels.set(k.label, (labels.get(k.label) ?? 0) + 1);
      return dispatch.call(dev, k, ...rest);
    };
    try {
      const y = m.forward(x);
      backward(y, tensor(new Float32Array(20).fill(0.1), [2, 10]));
      y.dispose();
    } finally {
      dev.dispatch = dispatch;
    }
    const bns = m.modules().filter((b) => b instanceof BatchNorm2d).length;
    expect(bns).toBe(7);
    expect(labels.get('norm.wgsl:bn_fwd')).toBe(bns);
    expect(labels.get('norm.wgsl:bn_bwd')).toBe(bns);
    // no separate ReLU either way (the copies BN made are checked per op: batchnorm-activation.test.ts)
    expect([...labels].filter(([k]) => k.startsWith('unary.wgsl:'))).toEqual([]);
    expect(Array.from(await m.stateDict().get('block1.layer.0.bn1.num_batches_tracked')!.data())).toEqual([1]);
    x.dispose();
    m.dispose();
  });

  it('bad configurations and inputs are refused before any kernel runs', () => {
    expect(() => new WideResNet(10, { depth: 41 })).toThrow(OpError);
    expect(() => new WideResNet(10, { depth: 40, widenFactor: 0 })).toThrow(/widenFactor/);
    expect(() => new WideResNet(0)).toThrow(/numClasses/);
    expect(() => new WideResNet(10, { inChannels: 0 })).toThrow(/inChannels/);
    const m = new WideResNet(7, { depth: 10, widenFactor: 1 });
    try {
      const x = tensor(new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]);
      expect(() => m.forward(x)).toThrow(/avg_pool2d\(8\)/);
      const g = tensor(new Float32Array(2 * 32 * 32), [2, 1, 32, 32]);
      expect(() => m.forward(g)).toThrow(/\[N, 3, H, W\]/);
      x.dispose();
      g.dispose();
    } finally {
      m.dispose();
    }
  });
});

describe('WideResNet = wrn.py (WRN-10-1 golden)', () => {
  it('eval forward (logits, features), then training forward + backward with dropout 0', async () => {
    const fx = loadFixture('wrn');
    const m = new WideResNet(7, { depth: 10, widenFactor: 1, dropRate: 0.3 });
    try {
      expect((m.block1.layer.at(0) as BasicBlock).equalInOut).toBe(true);
      expect((m.block2.layer.at(0) as BasicBlock).convShortcut).not.toBeNull();
      expect([...m.stateDict().keys()].sort()).toEqual([...fx.state.keys()].sort());
      m.loadStateDict(fx.state);
      m.eval();
      const x = fx.tensor('in.x');
      const { y, f } = noGrad(() => ({ y: m.forward(x), f: m.features(x) }));
      expectClose(await read(y), fx.f32('eval.y'), { atol: 1e-4, rtol: 1e-3, what: 'eval.y' });
      expectClose(await read(f), fx.f32('eval.features'), { atol: 1e-4, rtol: 1e-3, what: 'eval.features' });
      y.dispose();
      f.dispose();

      m.setDropRate(0);
      m.train();
      const xg = fx.tensor('in.x', true);
      const yt = m.forward(xg);
      expectClose(await read(yt), fx.f32('train.y'), { atol: 1e-4, rtol: 1e-3, what: 'train.y' });
      backward(yt, fx.tensor('in.gy'));
      await expectGrads(fx, m, { atol: 2e-4, rtol: 2e-3 });
      expectClose(await read(xg.grad!), fx.f32('grad.x'), { atol: 2e-4, rtol: 2e-3, what: 'grad.x' });
      for (const [n, b] of m.namedBuffers()) {
        if (n.includes('running')) expectClose(await read(b), fx.f32(`after.${n}`), { atol: 1e-5, rtol: 1e-4, what: `after.${n}` });
      }
      yt.dispose();
      xg.dispose();
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it('dropout (0.3) acts in training only', async () => {
    const fx = loadFixture('wrn');
    const m = new WideResNet(7, { depth: 10, widenFactor: 1, dropRate: 0.3 });
    try {
      m.loadStateDict(fx.state);
      const x = fx.tensor('in.x');
      m.eval();
      const e1 = await read(noGrad(() => m.forward(x)));
      const e2 = await read(noGrad(() => m.forward(x)));
      expect(Array.from(e1)).toEqual(Array.from(e2));
      m.train();
      const t1 = await read(noGrad(() => m.forward(x)));
      m.setDropRate(0);
      const t0 = await read(noGrad(() => m.forward(x)));
      expectClose(t0, fx.f32('train.y'), { atol: 1e-4, rtol: 1e-3, what: 'train.y (dropout 0)' });
      const diff = t1.reduce((a, v, i) => Math.max(a, Math.abs(v - t0[i])), 0);
      expect(diff).toBeGreaterThan(1e-3);
      x.dispose();
    } finally {
      m.dispose();
    }
  });
});
