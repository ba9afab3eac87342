/**
 * VisionTransformer against torchvision 0.14's (scripts/fixtures/torch_vit_resnet.py): state_dict
 * names, eval and training forward, cross-entropy gradients of every parameter and one SGD step at
 * a reduced size (image 32, patch 8, 2 layers, 2 heads, hidden 32, mlp 64); ViT-B/16's names and
 * parameter count; and the full-size ViT-B/16 (86,567,656 parameters as torchvision's) forward at
 * batch 1 from seeded weights (GOE_FULL_SIZE=1: 80-90 s on the shared 2-core software adapter).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { noGrad, tensor, OpError } from '../../src/engine/index.ts';
import { VisionTransformer, vitB16, VIT_PRESETS } from '../../src/models/vit.ts';
import { loadGolden, checkGolden } from './vit-resnet-golden.ts';
import { seeded, seededState } from './seeded-weights.ts';

beforeAll(async () => {
  await engine();
});

const small = () => new VisionTransformer({ imageSize: 32, patchSize: 8, numLayers: 2, numHeads: 2, hiddenDim: 32, mlpDim: 64, numClasses: 10 });

describe('VisionTransformer = torchvision vision_transformer.py', () => {
  it('reduced size: eval and training logits, loss, every gradient and one SGD step', async () => {
    const m = small();
    try {
      await checkGolden(loadGolden('vit_small'), m, { logits: { atol: 2e-4, rtol: 1e-3 }, grads: { atol: 2e-5, rtol: 2e-3 } });
    } finally {
      m.dispose();
    }
  });

  it("ViT-B/16's names and shapes (at hidden 48: the names depend on the depth only); torchvision's initialisation", async () => {
    const m = new VisionTransformer({ ...VIT_PRESETS.vit_b_16, hiddenDim: 48, numHeads: 12, mlpDim: 96 });
    try {
      const sd = m.stateDict();
      expect(sd.size).toBe(152);
      expect(sd.get('encoder.pos_embedding')!.shape).toEqual([1, 197, 48]);
      expect(sd.get('encoder.layers.encoder_layer_11.self_attention.in_proj_weight')!.shape).toEqual([144, 48]);
      expect(sd.get('encoder.layers.encoder_layer_0.mlp.3.weight')!.shape).toEqual([48, 96]);
      expect(sd.get('conv_proj.weight')!.shape).toEqual([48, 3, 16, 16]);
      expect(sd.get('heads.head.weight')!.shape).toEqual([1000, 48]);
      expect([...sd.keys()].slice(0, 4)).toEqual(['class_token', 'conv_proj.weight', 'conv_proj.bias', 'encoder.pos_embedding']);
      expect((await read(m.heads.head.weight)).every((v) => v === 0)).toBe(true);
      expect((await read(m.class_token)).every((v) => v === 0)).toBe(true);
      const w = await read(m.conv_proj.weight);
      const sd0 = Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length);
      expect(Math.abs(sd0 / Math.sqrt(1 / 768) - 1)).toBeLessThan(0.03);
      const pos = await read(m.encoder.pos_embedding);
      expect(Math.abs(Math.sqrt(pos.reduce((a, b) => a + b * b, 0) / pos.length) / 0.02 - 1)).toBeLessThan(0.03);
      const b = await read(sd.get('encoder.layers.encoder_layer_5.mlp.0.bias')!);
      expect(b.every((v) => Math.abs(v) < 1e-5) && b.some((v) => v !== 0)).toBe(true); // N(0, 1e-6^2)
    } finally {
      m.dispose();
    }
  });

  it('bad configurations and inputs are refused before any kernel runs', () => {
    expect(() => new VisionTransformer({ imageSize: 30, patchSize: 8 })).toThrow(/divisible by patchSize/);
    expect(() => new VisionTransformer({ hiddenDim: 30, numHeads: 4 })).toThrow(OpError);
    const m = small();
    try {
      const x = tensor(new Float32Array(3 * 24 * 24), [1, 3, 24, 24]);
      expect(() => m.forward(x)).toThrow(/\[N, 3, 32, 32\]/);
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it.skipIf(!process.env.GOE_FULL_SIZE)('full-size ViT-B/16 at batch 1 from seeded weights', async () => {
    const full = loadGolden('full_size');
    const m = vitB16();
    try {
      expect(m.numParameters()).toBe(86_567_656); // torchvision's vit_b_16
      m.loadStateDict(seededState(m.stateDict()));
      m.eval();
      const xs = seeded('input', [1, 3, 224, 224]);
      expect(xs.reduce((a, b) => a + b, 0)).toBeCloseTo(full.f32('input.sum')[0], 2);
      const x = tensor(xs, [1, 3, 224, 224]);
      const t0 = performance.now();
      const y = noGrad(() => m.forward(x));
      const got = await read(y);
      console.log(`ViT-B/16 forward (batch 1): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      expectClose(got, full.f32('vit_b_16.logits'), { atol: 2e-3, rtol: 2e-3, what: 'vit_b_16 logits' });
      x.dispose();
      y.dispose();
    } finally {
      m.dispose();
    }
  }, 600_000);
});
