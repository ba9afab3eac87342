/**
 * The strided kernels' parameter blocks (ops/launch.ts stridedParams): views into a reused ring,
 * so each block must be laid out as the kernels read it, start zeroed, and not overlap the blocks
 * made just before it, also across the ring's wrap.
 */
import { describe, it, expect } from 'vitest';
import { stridedParams, f32Bits } from '../../src/engine/ops/launch.ts';

describe('stridedParams', () => {
  it('lays out header, shape and strides as the kernels read them', () => {
    const p = stridedParams([2, 3, 5], [{ strides: [15, 5, 1], offset: 7 }, { strides: [0, 1, 0], offset: 3 }, { strides: [5, 0, 1], offset: 0 }], [0.5, -2]);
    expect(p.length).toBe(8 + 8 * 4);
    expect(p.byteOffset % 16).toBe(0);
    expect(Array.from(p.subarray(0, 5))).toEqual([30, 3, 7, 3, 0]);
    const f = new Float32Array(p.buffer, p.byteOffset, 8);
    expect([f[5], f[6]]).toEqual([0.5, -2]);
    expect(Array.from(p.subarray(8, 16))).toEqual([2, 3, 5, 0, 0, 0, 0, 0]);
    expect(Array.from(p.subarray(16, 24))).toEqual([15, 5, 1, 0, 0, 0, 0, 0]);
    expect(Array.from(p.subarray(24, 32))).toEqual([0, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(p.subarray(32, 40))).toEqual([5, 0, 1, 0, 0, 0, 0, 0]);
    const ints = stridedParams([4], [{ strides: [1], offset: 0 }], [-3, 9], true);
    expect([ints[5] | 0, ints[6]]).toEqual([-3, 9]);
  });

  it('each block starts zeroed and leaves the previous ones alone, across the ring wrap', () => {
    let prev = stridedParams([1], [{ strides: [1], offset: 1 }]);
    // well past the ring's 2^18 words (40 words a block)
    for (let i = 0; i < 10000; i++) {
      const shape = [1 + (i % 7), 2];
      const p = stridedParams(shape, [{ strides: [2, 1], offset: i }]);
      expect(p[0]).toBe(shape[0] * 2);
      expect(p[2]).toBe(i);
      // nothing left from a block that used this memory before: unused operands' strides are 0
      expect(Array.from(p.subarray(24, 40)).every((v) => v === 0)).toBe(true);
      // the block made just before still holds its values
      expect(prev[2]).toBe(i === 0 ? 1 : i - 1);
      prev = p;
    }
  });
});

describe('f32Bits (float slots of u32 parameter blocks)', () => {
  it('gives the f32 bits, as a Float32Array over the block would store them', () => {
    for (const x of [0, -0, 1.5, -0.25, 1e-40, 3.4e38, Infinity, -Infinity, 0.1]) {
      const u = new Uint32Array(1);
      new Float32Array(u.buffer)[0] = x;
      expect(f32Bits(x)).toBe(u[0]);
    }
    expect(Number.isNaN(new Float32Array(new Uint32Array([f32Bits(NaN)]).buffer)[0])).toBe(true);
  });
});

describe('fill through the u32 parameter block', () => {
  it('negative i32, large u32 and f32 values land exactly', async () => {
    const { engine } = await import('../helpers/gpu.ts');
    const { full } = await import('../../src/engine/index.ts');
    await engine();
    expect(Array.from(await full([3], -7, 'i32').data())).toEqual([-7, -7, -7]);
    expect(Array.from(await full([2], 4000000000, 'u32').data())).toEqual([4000000000, 4000000000]);
    expect(Array.from(await full([2], -0.1).data())).toEqual([Math.fround(-0.1), Math.fround(-0.1)]);
  });
});
