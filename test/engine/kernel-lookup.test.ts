/**
 * The kernel loader's per-dispatch lookup (src/engine/kernel-lookup.ts): a specialisation seen
 * before is found in any name order, anything that differs is not, and frozen defines go by
 * identity, others by value.
 */
import { describe, it, expect } from 'vitest';
import { KernelLookup } from '../../src/engine/kernel-lookup.ts';

describe('KernelLookup', () => {
  it('finds a specialisation again whatever the order of its constants; any other value misses', () => {
    const l = new KernelLookup();
    const T = Object.freeze({ T: 'f32' });
    l.remember('conv2d', 'conv_fwd', { defines: T, constants: { IC: 3, OC: 16, KH: 3, FLAG: true, ALPHA: 0.5 } }, 'k1');
    expect(l.find('conv2d', 'conv_fwd', { defines: T, constants: { ALPHA: 0.5, FLAG: true, KH: 3, OC: 16, IC: 3 } })).toBe('k1');
    const others: Record<string, number | boolean>[] = [
      { IC: 3, OC: 16, KH: 3, FLAG: false, ALPHA: 0.5 },
      { IC: 3, OC: 16, KH: 3, FLAG: true, ALPHA: 0.25 },
      { IC: 3, OC: 16, KH: 3, FLAG: true },
      { IC: 3, OC: 16, KH: 3, FLAG: true, ALPHA: 0.5, EXTRA: 0 },
      { IC: 16, OC: 3, KH: 3, FLAG: true, ALPHA: 0.5 },
      { IC: 3, OC: 16, KH: 3, FLAG: 1, ALPHA: 0.5 },
    ];
    for (const c of others) expect(l.find('conv2d', 'conv_fwd', { defines: T, constants: c })).toBeNull();
    expect(l.find('conv2d', 'conv_dgrad', { defines: T, constants: { IC: 3, OC: 16, KH: 3, FLAG: true, ALPHA: 0.5 } })).toBeNull();
    expect(l.find('other', 'conv_fwd', { defines: T, constants: { IC: 3, OC: 16, KH: 3, FLAG: true, ALPHA: 0.5 } })).toBeNull();
  });

  it('defines: a frozen object by identity or equal values, a fresh one by value; missing and empty records agree', () => {
    const l = new KernelLookup();
    const shared = Object.freeze({ T: 'f32', SUBGROUPS: '' });
    l.remember('f', 'e', { defines: shared }, 'shared');
    expect(l.find('f', 'e', { defines: shared })).toBe('shared');
    expect(l.find('f', 'e', { defines: { SUBGROUPS: '', T: 'f32' } })).toBe('shared');
    expect(l.find('f', 'e', { defines: { T: 'i32', SUBGROUPS: '' } })).toBeNull();
    const fresh = { T: 'u32' };
    l.remember('f', 'e', { defines: fresh }, 'fresh');
    fresh.T = 'f16'; // the lookup kept a copy, not the caller's object
    expect(l.find('f', 'e', { defines: { T: 'u32' } })).toBe('fresh');
    l.remember('g', 'e', {}, 'plain');
    expect(l.find('g', 'e', { constants: {} })).toBe('plain');
    expect(l.find('g', 'e', { defines: {}, constants: {} })).toBe('plain');
  });

  it('NaN and -0 constants are found again (no growth per call)', () => {
    const l = new KernelLookup();
    l.remember('f', 'e', { constants: { X: NaN, Z: -0 } }, 'k');
    expect(l.find('f', 'e', { constants: { Z: -0, X: NaN } })).toBe('k');
  });
});
