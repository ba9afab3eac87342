/**
 * The plan step (issue 19): planMatmul, planConv, planAttention, planGruStep are pure functions
 * of the problem and the adapter's caps; they never pick a kernel the adapter cannot run
 * (SwiftShader: 256 invocations, subgroups of 4, 16 KiB of workgroup memory), and what they
 * print is what runs.
 */
import { describe, it, expect } from 'vitest';
import { CAPS_PRESETS, type Caps } from '../../src/engine/caps.ts';
import {
  planMatmul, describeMatmulPlan, planConv, describeConvPlan, convGeometry, planAttention, planGruStep, OpError,
} from '../../src/engine/index.ts';

const { lavapipe, swiftshader, minimal, h100 } = CAPS_PRESETS;
const others: Caps[] = [swiftshader, minimal, h100];

describe('planMatmul', () => {
  it('names kernels by what they are and prints the split', () => {
    expect(planMatmul(1, 512, 512, 1, true, lavapipe).kind).toBe('skinny');
    expect(planMatmul(512, 512, 512, 1, true, lavapipe).kind).toBe('simd8');
    expect(planMatmul(512, 512, 512, 1, true, swiftshader).kind).toBe('reg16x8');
    expect(planMatmul(512, 512, 511, 1, false, swiftshader).kind).toBe('reg4x4');
    expect(planMatmul(4096, 4096, 4096, 1, true, h100).kind).toBe('reg8x8');
    const p = planMatmul(64, 64, 131072, 1, true, h100);
    expect(p.splits).toBeGreaterThan(1);
    expect(describeMatmulPlan(p)).toBe(`reg4x4 split-K ${p.splits}`);
  });

  it('is pure: the same problem and caps give the same plan', () => {
    expect(planMatmul(300, 200, 100, 2, true, lavapipe)).toEqual(planMatmul(300, 200, 100, 2, true, lavapipe));
  });
});

// WRN-40-2 / WRN-10-1 / BigGAN shapes (batch 8 keeps the texture plans small)
const convShapes: [number[], number[], { stride?: number; padding?: number; groups?: number }][] = [
  [[8, 3, 32, 32], [32, 3, 3, 3], { padding: 1 }],
  [[8, 32, 32, 32], [32, 32, 3, 3], { padding: 1 }],
  [[8, 64, 16, 16], [128, 64, 3, 3], { stride: 2, padding: 1 }],
  [[8, 128, 8, 8], [128, 128, 1, 1], {}],
  [[8, 1, 28, 28], [16, 1, 3, 3], { padding: 1 }],
  [[8, 32, 16, 16], [32, 1, 3, 3], { padding: 1, groups: 32 }],
];

describe('planConv', () => {
  it('SIMD-8 kinds only on the 8-lane software adapter; the generic kinds elsewhere', () => {
    for (const [x, w, o] of convShapes) {
      const g = convGeometry('conv2d', x, w, o);
      for (const pass of ['fwd', 'dgrad', 'wgrad'] as const) {
        for (const c of others) expect(['gemm', 'gemm-phased', 'direct', 'direct-uniform']).toContain(planConv(pass, g, c).kind);
      }
    }
    const g = convGeometry('conv2d', [8, 32, 32, 32], [32, 32, 3, 3], { padding: 1 });
    expect(planConv('fwd', g, lavapipe).kind).toBe('simd8');
    expect(planConv('fwd', g, swiftshader).kind).toBe('gemm');
    expect(planConv('wgrad', convGeometry('conv2d', [8, 3, 32, 32], [4, 3, 3, 3], { padding: 1 }), lavapipe).kind).toBe('narrow');
    expect(planConv('dgrad', convGeometry('conv2d', [8, 64, 16, 16], [128, 64, 3, 3], { stride: 2, padding: 1 }), h100).kind).toBe('gemm-phased');
    expect(planConv('dgrad', convGeometry('conv2d', [8, 3, 32, 32], [32, 3, 3, 3], { padding: 1 }), h100).kind).toBe('direct-uniform');
  });

  it('a forced SIMD-8 plan on an adapter without it is an error saying why', () => {
    const g = convGeometry('conv2d', [8, 32, 32, 32], [32, 32, 3, 3], { padding: 1 });
    expect(() => planConv('fwd', g, swiftshader, 'simd8')).toThrow(/subgroups are exactly 8 lanes/);
    expect(planConv('fwd', g, lavapipe, 'gemm').kind).toBe('gemm');
    expect(describeConvPlan(planConv('fwd', g, lavapipe), g)).toBe('conv2d fwd simd8 [8, 32, 32, 32] * [32, 32, 3, 3] stride 1x1 groups 1');
  });
});

describe('planAttention', () => {
  it('fits the adapter\'s workgroup memory', () => {
    expect(planAttention(64, 64, 64, lavapipe).kind).toBe('fwd simd8 / bwd simd8');
    expect(planAttention(35, 35, 100, lavapipe).kind).toBe('fwd tiled / bwd rows');
    expect(planAttention(128, 128, 100, lavapipe).kind).toBe('fwd tiled / bwd tiled TB 16');
    // SwiftShader: 16 KiB, the tiled kernels at D = 100 do not fit
    expect(planAttention(128, 128, 100, swiftshader).kind).toBe('fwd rows / bwd rows');
    expect(planAttention(64, 64, 64, swiftshader).kind).toBe('fwd tiled / bwd tiled TB 8');
    expect(() => planAttention(128, 128, 100, swiftshader, { forwardKernel: 'tiled' })).toThrow(OpError);
    expect(() => planAttention(16, 16, 128, swiftshader)).toThrow(/workgroup memory/);
  });
});

describe('planGruStep', () => {
  it('SIMD-8 on lavapipe where the windows fit; batch rows within workgroup memory', () => {
    expect(planGruStep(32, 128, lavapipe)).toEqual({ kind: 'simd8', batchRows: 4 });
    expect(planGruStep(32, 128, swiftshader)).toEqual({ kind: 'shared-h', batchRows: 4 });
    expect(planGruStep(32, 120, lavapipe).kind).toBe('simd8');
    expect(planGruStep(32, 136, lavapipe).kind).toBe('shared-h');
    expect(planGruStep(32, 132, lavapipe).kind).toBe('shared-h');
    expect(planGruStep(8, 1024, minimal)).toEqual({ kind: 'shared-h', batchRows: 1 });
  });
});
