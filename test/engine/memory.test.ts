/**
 * The memory test: 200 training steps of a small model (MLP with dropout, Adam, gradient
 * clipping, a cosine schedule, cross-entropy) leave the number of live tensors and storages, and
 * the buffer pool's live buffers, bytes and created count, exactly where they were after the
 * first step: nothing leaks and nothing new is allocated in a steady loop.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { engine } from '../helpers/gpu.ts';
import { randArray, randnArray } from '../helpers/reference.ts';
import {
  Sequential, Linear, ReLU, Dropout, Adam, CosineAnnealingLR, clipGradNorm, crossEntropy, backward, scope, keep, tensor, memoryStats,
  runtime, releaseParameterArena, manualSeed,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});
afterAll(() => releaseParameterArena());

describe('memory', () => {
  it('200 training steps leave live tensors, storages and the pool flat after the first step', async () => {
    manualSeed(7);
    const [B, I, H, C] = [17, 9, 23, 5];
    const model = new Sequential(new Linear(I, H), new ReLU(), new Dropout(0.1), new Linear(H, C));
    const opt = new Adam(model.parameters(), { lr: 0.01 });
    const sched = new CosineAnnealingLR(opt, 200, 1e-4);
    // a fixed pool of batches (uploaded inside each step, as a data loader would)
    const batches = Array.from({ length: 8 }, (_, b) => ({
      x: Float32Array.from(randnArray(B * I, 100 + b)),
      y: Int32Array.from(randArray(B, 200 + b), (v) => Math.floor((v + 1) * 2.5) % C),
    }));
    const pool = runtime().device.pool;
    const snapshot = () => {
      const m = memoryStats();
      const p = pool.stats();
      return { tensors: m.tensors, storages: m.storages, live: p.live, bytes: p.bytes, created: p.created };
    };
    let first: ReturnType<typeof snapshot> | null = null;
    let firstLoss = 0;
    let lastLoss = 0;
    for (let step = 0; step < 200; step++) {
      const { x, y } = batches[step % batches.length];
      const loss = scope(() => {
        const xt = tensor(x, [B, I]);
        const yt = tensor(y, [B], 'i32');
        opt.zeroGrad();
        const l = crossEntropy(model.forward(xt), yt);
        backward(l);
        clipGradNorm(model.parameters(), 1.0);
        opt.step();
        sched.step();
        return l;
      });
      if (step === 0 || step === 199) {
        keep(loss);
        const v = await loss.item();
        if (step === 0) firstLoss = v;
        else lastLoss = v;
      }
      loss.dispose();
      const now = snapshot();
      if (!first) first = now;
      else if (JSON.stringify(now) !== JSON.stringify(first)) expect({ step, ...now }).toEqual({ step, ...first });
    }
    console.log(`memory: after step 1 and after step 200: ${JSON.stringify(first)}; loss ${firstLoss.toFixed(4)} -> ${lastLoss.toFixed(4)}`);
    expect(lastLoss).toBeLessThan(firstLoss);
    opt.dispose();
    model.dispose();
  });
});
