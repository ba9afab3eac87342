import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ArraySource, type Batch, DataLoader, type LoaderOptions, openNpyImages, uploadBatch, uploadSeparate } from '../../src/data/index.ts';
import { bytes, npy, tempDir } from './helpers.ts';

const tmp = tempDir();
afterAll(tmp.cleanup);

/** N samples of shape [C, H, W]; sample i's first pixel holds i % 256 (and its label is i % 10). */
function arraySource(n: number, c = 3, h = 4, w = 5, opts: Partial<ArraySource> = {}): ArraySource {
  const size = c * h * w;
  const data = bytes(n * size, n + c);
  for (let i = 0; i < n; i++) data[i * size] = i % 256;
  return { kind: 'array', name: `array${n}`, length: n, sampleShape: [c, h, w], layout: 'CHW', dtype: 'uint8', data, labels: Int32Array.from({ length: n }, (_, i) => i % 10), ...opts };
}

/** Collect an epoch as plain copies. */
async function collect(loader: DataLoader, epoch = 0): Promise<{ x: number[]; y: number[]; nIn: number; nOut: number; shape: number[] }[]> {
  const out = [];
  for await (const b of loader.epoch(epoch)) out.push({ x: [...b.x], y: [...b.y], nIn: b.nIn, nOut: b.nOut, shape: b.shape });
  return out;
}

async function withLoader<T>(opts: LoaderOptions, f: (l: DataLoader) => Promise<T>): Promise<T> {
  const l = new DataLoader(opts);
  try {
    return await f(l);
  } finally {
    await l.close();
  }
}

/** Recover sample ids from the raw first pixel (scale 1, no normalisation, no augmentation). */
const ids = (b: { x: number[]; shape: number[] }): number[] => {
  const size = b.shape.slice(1).reduce((a, c) => a * c, 1);
  return Array.from({ length: b.shape[0]! }, (_, i) => b.x[i * size]!);
};

describe('DataLoader: shuffling and batching', () => {
  const src = arraySource(103);
  const raw = { scale: 1 };

  it('every sample exactly once per epoch, seeded: same seed same order, new epoch or seed new order', async () => {
    const e0 = await withLoader({ source: src, batchSize: 10, seed: 1, transform: raw, workers: 0 }, (l) => collect(l, 0));
    expect(e0).toHaveLength(11);
    expect(e0.at(-1)!.shape[0]).toBe(3);
    const order0 = e0.flatMap(ids);
    expect([...order0].sort((a, b) => a - b)).toEqual(Array.from({ length: 103 }, (_, i) => i));
    expect(order0).not.toEqual(Array.from({ length: 103 }, (_, i) => i));
    // labels follow their samples
    for (const b of e0) ids(b).forEach((id, i) => expect(b.y[i]).toBe(id % 10));
    const again = await withLoader({ source: src, batchSize: 10, seed: 1, transform: raw, workers: 0 }, (l) => collect(l, 0));
    expect(again.flatMap(ids)).toEqual(order0);
    const e1 = await withLoader({ source: src, batchSize: 10, seed: 1, transform: raw, workers: 0 }, (l) => collect(l, 1));
    expect(e1.flatMap(ids)).not.toEqual(order0);
    const s2 = await withLoader({ source: src, batchSize: 10, seed: 2, transform: raw, workers: 0 }, (l) => collect(l, 0));
    expect(s2.flatMap(ids)).not.toEqual(order0);
  });

  it('no shuffle keeps file order; dropLast drops the short batch', async () => {
    const plain = await withLoader({ source: src, batchSize: 25, shuffle: false, dropLast: true, transform: raw, workers: 0 }, (l) => collect(l));
    expect(plain).toHaveLength(4);
    expect(plain.flatMap(ids)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('worker threads give exactly the batches the main thread gives (augmentation included)', async () => {
    const opts: LoaderOptions = { source: src, batchSize: 16, seed: 5, transform: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.3, 0.4], randomCrop: { size: [4, 5], padding: 2 }, hflip: true } };
    const inline = await withLoader({ ...opts, workers: 0 }, (l) => collect(l, 3));
    const pooled = await withLoader({ ...opts, workers: 2, prefetch: 3 }, (l) => collect(l, 3));
    expect(pooled).toEqual(inline);
  });

  it('stopping an epoch early and starting another works; closed loaders refuse', async () => {
    const l = new DataLoader({ source: src, batchSize: 8, workers: 1, prefetch: 2, transform: raw });
    for await (const b of l.epoch(0)) if (b.index === 2) break;
    expect((await collect(l, 1)).length).toBe(13);
    await l.close();
    await expect(async () => {
      for await (const _ of l.epoch(2)) void _;
    }).rejects.toThrow(/closed/);
  });
});

describe('DataLoader: transforms', () => {
  it('normalises per channel: (v / 255 - mean) / std, CHW and HWC sources alike', async () => {
    const chw = arraySource(4, 3, 2, 3);
    const hwc = new Uint8Array(chw.data.length);
    for (let n = 0; n < 4; n++) for (let c = 0; c < 3; c++) for (let p = 0; p < 6; p++) hwc[n * 18 + p * 3 + c] = chw.data[n * 18 + c * 6 + p]!;
    const mean = [0.4914, 0.4824, 0.4467];
    const std = [0.2471, 0.2435, 0.2616];
    const a = await withLoader({ source: chw, batchSize: 4, shuffle: false, transform: { mean, std }, workers: 0 }, (l) => collect(l));
    const b = await withLoader({ source: { ...chw, data: hwc, layout: 'HWC' }, batchSize: 4, shuffle: false, transform: { mean, std }, workers: 0 }, (l) => collect(l));
    expect(b).toEqual(a);
    for (let i = 0; i < 72; i++) {
      const c = Math.floor((i % 18) / 6);
      expect(a[0]!.x[i]).toBeCloseTo((chw.data[i]! / 255 - mean[c]!) / std[c]!, 5);
    }
  });

  it('random crop with zero padding and horizontal flip: every output is a crop of the padded, maybe flipped input', async () => {
    const [C, H, W, P] = [2, 5, 6, 2];
    const src = arraySource(64, C, H, W);
    const ref = (n: number, top: number, left: number, flip: boolean): number[] => {
      const out: number[] = [];
      for (let c = 0; c < C; c++)
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            const sy = y + top;
            const sx = (flip ? W - 1 - x : x) + left;
            out.push(sy < 0 || sy >= H || sx < 0 || sx >= W ? 0 : src.data[n * C * H * W + (c * H + sy) * W + sx]!);
          }
      return out;
    };
    const batches = await withLoader({ source: src, batchSize: 64, shuffle: false, transform: { scale: 1, randomCrop: { size: [H, W], padding: P }, hflip: true }, workers: 0 }, (l) => collect(l));
    const x = batches[0]!.x;
    const seen = new Set<string>();
    for (let n = 0; n < 64; n++) {
      const got = x.slice(n * C * H * W, (n + 1) * C * H * W);
      let match: string | undefined;
      for (let top = -P; top <= P && !match; top++)
        for (let left = -P; left <= P && !match; left++)
          for (const flip of [false, true]) if (ref(n, top, left, flip).every((v, i) => v === got[i])) match = `${top},${left},${flip}`;
      expect(match, `sample ${n}`).toBeDefined();
      seen.add(match!);
    }
    expect(seen.size).toBeGreaterThan(10); // offsets and flips vary
  });
});

describe('DataLoader: inliers and outliers', () => {
  const inl = arraySource(40);
  const out = arraySource(30, 3, 4, 5, { labels: null, name: 'outliers' });
  // make outlier ids distinguishable: 100 + i
  for (let i = 0; i < 30; i++) out.data[i * 60] = 100 + i;

  it("'mixed': one shuffled pool, inliers first in each batch, outliers labelled -1, views split them", async () => {
    await withLoader({ source: inl, batchSize: 16, transform: { scale: 1 }, outliers: { source: out, mode: 'mixed' }, workers: 0 }, async (l) => {
      expect(l.numBatches).toBe(5);
      const all: number[] = [];
      let inTotal = 0;
      for await (const b of l.epoch(0)) {
        const id = ids({ x: [...b.x], shape: b.shape });
        all.push(...id);
        id.forEach((v, i) => expect(i < b.nIn ? v < 100 : v >= 100).toBe(true));
        expect([...b.y.subarray(b.nIn)].every((v) => v === -1)).toBe(true);
        expect([...b.inliers.y].every((v) => v >= 0)).toBe(true);
        expect(b.inliers.x.buffer).toBe(b.x.buffer);
        expect(b.outliers.x.length).toBe(b.nOut * 60);
        inTotal += b.nIn;
      }
      expect(inTotal).toBe(40);
      expect(all.sort((a, b) => a - b)).toEqual([...Array.from({ length: 40 }, (_, i) => i), ...Array.from({ length: 30 }, (_, i) => 100 + i)]);
    });
  });

  it("'paired': fixed numbers per batch; the outlier stream covers all outliers before repeating, across epochs", async () => {
    await withLoader({ source: inl, batchSize: 8, transform: { scale: 1 }, outliers: { source: out, mode: 'paired', batchSize: 12 }, workers: 1 }, async (l) => {
      const stream: number[] = [];
      for (const e of [0, 1]) {
        for await (const b of l.epoch(e)) {
          expect([b.nIn, b.nOut]).toEqual([8, 12]);
          expect(b.shape).toEqual([20, 3, 4, 5]);
          const id = ids({ x: [...b.x], shape: b.shape });
          expect(id.slice(0, 8).every((v) => v < 100)).toBe(true);
          stream.push(...id.slice(8));
        }
      }
      expect(stream).toHaveLength(120);
      for (let k = 0; k < 4; k++) expect(stream.slice(k * 30, (k + 1) * 30).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => 100 + i));
    });
  });

  it('inlier and outlier samples must have the same shape after transforms', () => {
    expect(() => new DataLoader({ source: inl, batchSize: 4, outliers: { source: arraySource(5, 3, 8, 8), mode: 'paired' }, workers: 0 })).toThrow(
      /inlier samples are \[3, 4, 5\] but outlier samples are \[3, 8, 8\]/,
    );
    // ...which a transform can fix (random crop of the bigger outliers)
    const ok = new DataLoader({ source: inl, batchSize: 4, outliers: { source: arraySource(5, 3, 8, 8), mode: 'paired', transform: { randomCrop: { size: [4, 5] } } }, workers: 0 });
    expect(ok.sampleShape).toEqual([3, 4, 5]);
    void ok.close();
  });

  it('lazily read .npy outliers (TinyImages-style HWC) through worker threads', async () => {
    const n = 64;
    const data = bytes(n * 4 * 5 * 3, 3);
    const f = join(tmp.dir, 'out.npy');
    writeFileSync(f, npy('|u1', [n, 4, 5, 3], data));
    const lazy = await openNpyImages(f);
    expect(lazy.kind).toBe('npy');
    const opts: LoaderOptions = { source: inl, batchSize: 8, seed: 9, transform: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], hflip: true }, outliers: { source: lazy, mode: 'paired', batchSize: 16 } };
    const a = await withLoader({ ...opts, workers: 0 }, (l) => collect(l, 0));
    const b = await withLoader({ ...opts, workers: 2 }, (l) => collect(l, 0));
    expect(b).toEqual(a);
  });
});

describe('upload hooks', () => {
  it('hand the engine views of the batch slot (no copies), in both loss forms', async () => {
    const src = arraySource(12);
    const out = arraySource(12, 3, 4, 5, { labels: null });
    await withLoader({ source: src, batchSize: 4, outliers: { source: out, mode: 'paired', batchSize: 2 }, workers: 0 }, async (l) => {
      for await (const b of l.epoch(0)) {
        const seen: { data: Float32Array | Int32Array; shape: readonly number[] }[] = [];
        const hooks = {
          float: (data: Float32Array, shape: readonly number[]) => (seen.push({ data, shape }), seen.length - 1),
          int: (data: Int32Array, shape: readonly number[]) => (seen.push({ data, shape }), seen.length - 1),
        };
        const u = uploadBatch(b as Batch<Float32Array>, hooks);
        expect(seen[u.x as number]!.data).toBe(b.x);
        expect(seen[u.x as number]!.shape).toEqual([6, 3, 4, 5]);
        expect(seen[u.y as number]!.data).toBe(b.y);
        const s = uploadSeparate(b, hooks);
        const xin = seen[s.inliers.x]!.data;
        const xout = seen[s.outliers!.x]!.data;
        expect(xin.buffer).toBe(b.x.buffer);
        expect(xout.buffer).toBe(b.x.buffer);
        expect(xout.byteOffset).toBe(b.x.byteOffset + 4 * 60 * 4);
        expect(seen[s.outliers!.x]!.shape).toEqual([2, 3, 4, 5]);
        // labels stay on the CPU when no int hook is given
        expect(uploadBatch(b, { float: () => 0 }).y).toBe(b.y);
      }
    });
  });
});
