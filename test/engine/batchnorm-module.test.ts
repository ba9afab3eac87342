import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32 } from '../helpers/gpu.ts';
import { randArray } from '../helpers/reference.ts';
import {
  BatchNorm2d, batchNorm2d, relu, runtime, modelToSafetensors, loadModelFromSafetensors, parseSafetensors, type Tensor,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

const input = (seed: number): Tensor => t32(randArray(2 * 3 * 5 * 3, seed), [2, 3, 5, 3]);

async function tracked(bn: BatchNorm2d): Promise<number> {
  return (await bn.getBuffer('num_batches_tracked')!.data())[0];
}

function dispatchesOf(fn: () => void): number {
  const stats = runtime().device.stats;
  const before = stats.dispatches;
  fn();
  return stats.dispatches - before;
}

describe('BatchNorm2d num_batches_tracked (counted on the host)', () => {
  it('a training forward dispatches what the functional batch norm dispatches: the count costs nothing', () => {
    const bn = new BatchNorm2d(3);
    const x = input(1);
    bn.forward(x).dispose();
    const module = dispatchesOf(() => bn.forward(x).dispose());
    const functional = dispatchesOf(() =>
      batchNorm2d(x, bn.weight, bn.bias, { training: true, runningMean: bn.getBuffer('running_mean'), runningVar: bn.getBuffer('running_var') }).dispose(),
    );
    expect(module).toBe(functional);
    x.dispose();
    bn.dispose();
  });

  it('reads show the count between and after training forwards, not in evaluation', async () => {
    const bn = new BatchNorm2d(3);
    const x = input(2);
    expect(await tracked(bn)).toBe(0);
    for (let i = 0; i < 2; i++) bn.forward(x).dispose();
    expect(await tracked(bn)).toBe(2);
    for (let i = 0; i < 3; i++) bn.forward(x).dispose();
    expect(await tracked(bn)).toBe(5);
    bn.eval();
    bn.forward(x).dispose();
    expect(await tracked(bn)).toBe(5);
    bn.train();
    bn.forward(x).dispose();
    // the same tensor through every listing
    const own = bn.getBuffer('num_batches_tracked')!;
    expect(bn.stateDict().get('num_batches_tracked')).toBe(own);
    expect(bn.namedBuffers().find(([k]) => k === 'num_batches_tracked')![1]).toBe(own);
    expect(own.dtype).toBe('i32');
    expect(own.shape).toEqual([]);
    expect(Array.from(await bn.stateDict().get('num_batches_tracked')!.data())).toEqual([6]);
    x.dispose();
    bn.dispose();
  });

  it('a saved state dict carries the count as I32 (PyTorch loads it), and a loaded count goes on from its value', async () => {
    const bn = new BatchNorm2d(3);
    const x = input(3);
    for (let i = 0; i < 4; i++) bn.forward(x).dispose();
    const bytes = await modelToSafetensors(bn);
    const file = parseSafetensors(bytes);
    const t = file.tensors.get('num_batches_tracked')!;
    expect(t.dtype).toBe('I32');
    expect(t.shape).toEqual([]);
    expect(Array.from(t.data as Int32Array)).toEqual([4]);
    const fresh = new BatchNorm2d(3);
    fresh.forward(x).dispose(); // a pending count the load overwrites
    loadModelFromSafetensors(fresh, bytes);
    expect(await tracked(fresh)).toBe(4);
    fresh.forward(x).dispose();
    fresh.forward(x).dispose();
    expect(await tracked(fresh)).toBe(6);
    x.dispose();
    bn.dispose();
    fresh.dispose();
  });

  it('loading from another module copies its pending count; a host value replaces ours', async () => {
    const src = new BatchNorm2d(3);
    const dst = new BatchNorm2d(3);
    const x = input(4);
    for (let i = 0; i < 3; i++) src.forward(x).dispose(); // never read: all pending
    dst.forward(x).dispose();
    dst.loadStateDict(src.stateDict());
    expect(await tracked(dst)).toBe(3);
    expect(await tracked(src)).toBe(3);
    dst.forward(x).dispose();
    dst.loadStateDict({ num_batches_tracked: { shape: [], data: Int32Array.from([10]) } }, false);
    expect(await tracked(dst)).toBe(10);
    dst.forward(x).dispose();
    expect(await tracked(dst)).toBe(11);
    x.dispose();
    src.dispose();
    dst.dispose();
  });

  it("forward(x, 'relu') is relu(forward(x)) bit for bit, and counts the batch once", async () => {
    const bn = new BatchNorm2d(3);
    const twin = new BatchNorm2d(3);
    const x = input(6);
    const fused = bn.forward(x, 'relu');
    const plainOut = twin.forward(x);
    const plain = relu(plainOut);
    expect(Array.from(new Uint32Array((await fused.data()).buffer))).toEqual(Array.from(new Uint32Array((await plain.data()).buffer)));
    expect(Array.from(await bn.getBuffer('running_var')!.data())).toEqual(Array.from(await twin.getBuffer('running_var')!.data()));
    expect(await tracked(bn)).toBe(1);
    for (const t of [x, fused, plainOut, plain]) t.dispose();
    bn.dispose();
    twin.dispose();
  });

  it('without running statistics there is no counter and forwards use batch statistics', async () => {
    const bn = new BatchNorm2d(3, { trackRunningStats: false });
    expect(bn.namedBuffers()).toEqual([]);
    const x = input(5);
    bn.eval();
    const y = bn.forward(x);
    const ref = batchNorm2d(x, bn.weight, bn.bias, { training: true });
    expect(Array.from(await y.data())).toEqual(Array.from(await ref.data()));
    for (const t of [x, y, ref]) t.dispose();
    bn.dispose();
  });
});
