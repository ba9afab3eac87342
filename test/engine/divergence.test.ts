/**
 * kernels/finite.wgsl through DivergenceGuard: the flag against a float64 CPU reference on random
 * values at odd sizes (across 2048-element blocks), with Inf, NaN and huge finite values planted;
 * only the tensors' own ranges are read (the rest of a shared buffer is poisoned NaN); the first
 * bad step wins; the error names the source, the step, the tensors and the checkpoint.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine } from '../helpers/gpu.ts';
import { DivergenceError, DivergenceGuard, tensor, type Tensor } from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

/** Deterministic normal values (Box-Muller on a LCG). */
function randn(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float64Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** The rule in float64: the state counts non-finite values, the gradients also |g| >= 2^64. */
function reference(values: Float64Array, gradient: boolean): boolean {
  const f = Float32Array.from(values);
  return f.some((v) => !Number.isFinite(v) || (gradient && Math.abs(v) >= 2 ** 64));
}

/** A parameter-like handle whose gradient is `g` (the guard reads only `.grad`). */
function withGrad(g: Tensor): Tensor {
  return { grad: g } as unknown as Tensor;
}

async function flagged(guard: DivergenceGuard, step: number, state: [string, Tensor][]): Promise<DivergenceError | null> {
  try {
    await guard.check(step, state);
    return null;
  } catch (e) {
    if (e instanceof DivergenceError) return e;
    throw e;
  }
}

const PLANTED = [Infinity, -Infinity, NaN, 1e20, -(2 ** 64), 1.8e19, 3.4e38, 1e-45, 0];

describe('DivergenceGuard', () => {
  for (const n of [1, 7, 2047, 2049, 5001]) {
    it(`gradients and state of ${n} values, each planted value at a random place, match the reference`, async () => {
      let k = 0;
      for (const planted of PLANTED) {
        for (const gradient of [true, false]) {
          const v = randn(n, 17 + n + k++).map((x) => x * 100);
          v[(k * 7919) % n] = planted;
          const t = tensor(Float32Array.from(v), [n]);
          const guard = new DivergenceGuard({ phase: 'unit' });
          const loss = tensor(Float32Array.of(1.5), []);
          if (gradient) guard.step(1, loss, [withGrad(t)]);
          const err = await flagged(guard, 1, gradient ? [] : [['t', t]]);
          expect(err !== null, `${n} values, ${planted} planted, ${gradient ? 'gradient' : 'state'}`).toBe(reference(v, gradient));
          if (err) {
            expect(err.sources).toEqual([gradient ? 'gradients' : 'state']);
            expect(err.step).toBe(1);
          }
          guard.dispose();
          t.dispose();
          loss.dispose();
        }
      }
    });
  }

  it('reads only the tensors of a shared buffer, not the poisoned gaps between them', async () => {
    // one buffer: [NaN x 3][finite x 2500][NaN x 5][finite x 9][NaN x 4]
    const n = 3 + 2500 + 5 + 9 + 4;
    const data = new Float32Array(n).fill(NaN);
    const r = randn(2509, 5);
    for (let i = 0; i < 2500; i++) data[3 + i] = r[i]!;
    for (let i = 0; i < 9; i++) data[3 + 2500 + 5 + i] = r[2500 + i]!;
    const arena = tensor(data, [n]);
    const a = arena.view([50, 50], [50, 1], 3);
    const b = arena.view([9], [1], 2508);
    const guard = new DivergenceGuard({ phase: 'unit' });
    const loss = tensor(Float32Array.of(0.25), []);
    guard.step(1, loss, [withGrad(a), withGrad(b)]);
    expect(await flagged(guard, 1, [['a', a], ['b', b]])).toBeNull();
    const c = arena.view([10], [1], 2506); // reaches into the gap
    const err = await flagged(guard, 2, [['a', a], ['c', c]]);
    expect(err?.tensors).toEqual(['c']);
    expect(err?.message).toContain('between step 1 and step 2');
    for (const t of [a, b, c, arena, loss]) t.dispose();
    guard.dispose();
  });

  it('keeps the first bad step and names the loss, the step and the last good checkpoint', async () => {
    const guard = new DivergenceGuard({ phase: 'pretrain', checkpoint: '/tmp/ckpt.safetensors' });
    const ok = tensor(Float32Array.of(2.5), []);
    const bad = tensor(Float32Array.of(NaN), []);
    const g = tensor(Float32Array.from(randn(33, 1)), [33]);
    guard.step(1, ok, [withGrad(g)]);
    await guard.check(1, [['g', g]]);
    guard.saved('/tmp/ckpt.safetensors', 1);
    guard.step(2, ok, [withGrad(g)]);
    guard.step(3, bad, [withGrad(g)]);
    guard.step(4, bad, [withGrad(g)]);
    const err = await flagged(guard, 4, [['g', g]]);
    expect(err).not.toBeNull();
    expect(err!.step).toBe(3);
    expect(err!.sources).toEqual(['loss']);
    expect(err!.lastGoodStep).toBe(1);
    expect(err!.checkpoint).toEqual({ path: '/tmp/ckpt.safetensors', step: 1 });
    expect(err!.message).toBe(
      '[pretrain] training diverged: the loss became non-finite at step 3 (the check at step 1 found everything finite). ' +
        'Nothing was saved from this state: the last good checkpoint is /tmp/ckpt.safetensors (written at step 1). Lower the learning rate, or resume from that checkpoint (--resume).',
    );
    for (const t of [ok, bad, g]) t.dispose();
    guard.dispose();
  });
});
