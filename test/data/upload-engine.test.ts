/**
 * Batches in shared memory reaching engine tensors without copies. WebGPU's queue.writeBuffer takes
 * views of SharedArrayBuffers (AllowSharedBufferSource); Dawn's Node binding accepts such a view but
 * not a bare SharedArrayBuffer, so an upload must pass the view itself.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { empty, init, type Runtime, tensor, type Tensor } from '../../src/engine/index.ts';
import { type ArraySource, type Batch, DataLoader, uploadBatch, uploadSeparate } from '../../src/data/index.ts';
import { bytes } from './helpers.ts';

let rt: Runtime | undefined;
let noGpu = '';
beforeAll(async () => {
  try {
    rt = await init();
  } catch (e) {
    noGpu = (e as Error).message;
  }
});

const n = 10;
const src: ArraySource = {
  kind: 'array',
  name: 'gpu',
  length: n,
  sampleShape: [3, 4, 4],
  layout: 'CHW',
  dtype: 'uint8',
  data: bytes(n * 48, 21),
  labels: Int32Array.from({ length: n }, (_, i) => i % 3),
};

async function eachBatch(f: (b: Batch) => Promise<void>): Promise<void> {
  const loader = new DataLoader({ source: src, batchSize: 4, outliers: { source: { ...src, labels: null }, mode: 'paired', batchSize: 2 }, transform: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, workers: 1 });
  try {
    for await (const b of loader.epoch(0)) await f(b);
  } finally {
    await loader.close();
  }
}

describe('upload into engine tensors', () => {
  it('writeBuffer takes the batch slot views as they are (shared memory, no copy) and they read back unchanged', async (ctx) => {
    if (rt === undefined) ctx.skip(`no WebGPU adapter: ${noGpu}`);
    const upload = (d: Float32Array | Int32Array, s: readonly number[]): Tensor => {
      const t = empty([...s], d instanceof Float32Array ? 'f32' : 'i32');
      rt!.device.gpu.queue.writeBuffer(t.bufferFor('upload'), 0, d); // the view itself: no copy
      return t;
    };
    await eachBatch(async (b) => {
      expect(b.x.buffer).toBeInstanceOf(SharedArrayBuffer);
      const u = uploadBatch(b, { float: upload, int: upload });
      expect(await u.x.data()).toEqual(Float32Array.from(b.x));
      expect(await (u.y as Tensor).data()).toEqual(Int32Array.from(b.y));
      const s = uploadSeparate(b, { float: upload, int: upload });
      expect(await s.outliers!.x.data()).toEqual(Float32Array.from(b.outliers.x));
    });
  });

  it("through the engine's tensor(data, shape) as the upload hook", async (ctx) => {
    if (rt === undefined) ctx.skip(`no WebGPU adapter: ${noGpu}`);
    const hooks = { float: (d: Float32Array, s: readonly number[]): Tensor => tensor(d, [...s]), int: (d: Int32Array, s: readonly number[]): Tensor => tensor(d, [...s]) };
    await eachBatch(async (b) => {
      const u = uploadBatch(b, hooks);
      expect(await u.x.data()).toEqual(Float32Array.from(b.x));
      expect(await (u.y as Tensor).data()).toEqual(Int32Array.from(b.y));
    });
  });
});
