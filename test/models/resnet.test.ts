/**
 * ResNet against torchvision 0.14's resnet.py (scripts/fixtures/torch_vit_resnet.py): state_dict
 * names, eval forward (running statistics), training forward (batch statistics) + cross-entropy
 * gradients + running-statistic updates, and one SGD step, for BasicBlock [2, 1, 1, 1] and
 * Bottleneck [1, 1, 2, 1] networks of base width 4; resnet18/50 names and parameter counts;
 * and the full-size ResNet-101 (count, names) forward at batch 1 from seeded weights (GOE_FULL_SIZE=1:
 * 80 s on the shared 2-core software adapter).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { noGrad, tensor, OpError } from '../../src/engine/index.ts';
import { ResNet, resnet, resnet18, resnet50, resnet101, ResNetBottleneck } from '../../src/models/resnet.ts';
import { loadGolden, checkGolden } from './vit-resnet-golden.ts';
import { seeded, seededState } from './seeded-weights.ts';

beforeAll(async () => {
  await engine();
});

const tol = { logits: { atol: 2e-4, rtol: 1e-3 }, grads: { atol: 5e-5, rtol: 3e-3 } };

describe('ResNet = torchvision resnet.py', () => {
  it('BasicBlock network: eval, training (batch statistics), gradients, running statistics, SGD step', async () => {
    const m = new ResNet('basic', [2, 1, 1, 1], { numClasses: 7, baseWidth: 4 });
    try {
      await checkGolden(loadGolden('resnet_basic'), m, tol);
    } finally {
      m.dispose();
    }
  });

  it('Bottleneck network (stride on the 3x3, downsample in every stage)', async () => {
    const m = new ResNet('bottleneck', [1, 1, 2, 1], { numClasses: 7, baseWidth: 4 });
    try {
      expect((m.layer1.at(0) as ResNetBottleneck).downsample).not.toBeNull();
      expect((m.layer3.at(1) as ResNetBottleneck).downsample).toBeNull();
      await checkGolden(loadGolden('resnet_bottleneck'), m, tol);
    } finally {
      m.dispose();
    }
  });

  it("resnet18/50: torchvision's parameter counts, names and initialisation", async () => {
    // resnet101 (44,549,160 parameters, 626 entries) is counted by the GOE_FULL_SIZE test
    const r18 = resnet18();
    try {
      expect(r18.numParameters()).toBe(11_689_512);
      expect(r18.stateDict().size).toBe(122);
    } finally {
      r18.dispose();
    }
    const m = resnet50();
    try {
      expect(m.numParameters()).toBe(25_557_032);
      const sd = m.stateDict();
      expect(sd.size).toBe(320);
      expect([...sd.keys()].slice(0, 6)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']);
      expect(sd.get('layer2.0.downsample.0.weight')!.shape).toEqual([512, 256, 1, 1]);
      expect(sd.get('layer2.0.conv2.weight')!.shape).toEqual([128, 128, 3, 3]);
      expect(sd.get('fc.weight')!.shape).toEqual([1000, 2048]);
      // kaiming_normal(fan_out, relu): std sqrt(2 / (out * k * k))
      const w = await read(sd.get('layer4.0.conv2.weight')!);
      const s = Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length);
      expect(Math.abs(s / Math.sqrt(2 / (512 * 9)) - 1)).toBeLessThan(0.01);
    } finally {
      m.dispose();
    }
    const z = resnet18({ zeroInitResidual: true, numClasses: 2, baseWidth: 8 });
    try {
      expect((await read(z.stateDict().get('layer3.1.bn2.weight')!)).every((v) => v === 0)).toBe(true);
      expect((await read(z.stateDict().get('layer3.1.bn1.weight')!)).every((v) => v === 1)).toBe(true);
    } finally {
      z.dispose();
    }
  });

  it('bad configurations and inputs are refused', () => {
    expect(() => resnet('resnet19')).toThrow(/unknown ResNet 'resnet19'/);
    expect(() => new ResNet('basic', [2, 2, 2])).toThrow(OpError);
    const m = new ResNet('basic', [1, 1, 1, 1], { baseWidth: 2, numClasses: 3 });
    try {
      const x = tensor(new Float32Array(1 * 32 * 32), [1, 1, 32, 32]);
      expect(() => m.forward(x)).toThrow(/\[N, 3, H, W\]/);
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it.skipIf(!process.env.GOE_FULL_SIZE)('full-size ResNet-101 at batch 1 from seeded weights', async () => {
    const full = loadGolden('full_size');
    const m = resnet101();
    try {
      expect(m.numParameters()).toBe(44_549_160); // torchvision's resnet101
      expect(m.stateDict().size).toBe(626);
      m.loadStateDict(seededState(m.stateDict()));
      m.eval();
      const x = tensor(seeded('input', [1, 3, 224, 224]), [1, 3, 224, 224]);
      const t0 = performance.now();
      const y = noGrad(() => m.forward(x));
      const got = await read(y);
      console.log(`ResNet-101 forward (batch 1): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      expectClose(got, full.f32('resnet101.logits'), { atol: 5e-3, rtol: 2e-3, what: 'resnet101 logits' });
      x.dispose();
      y.dispose();
    } finally {
      m.dispose();
    }
  }, 600_000);
});
