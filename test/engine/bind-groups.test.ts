/**
 * The bind-group cache (src/engine/bind-groups.ts) and the buffer order it relies on
 * (BufferPool.acquire hands out the oldest free buffer of a size class).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine } from '../helpers/gpu.ts';
import { add, runtime, tensor, type Runtime } from '../../src/engine/index.ts';
import { BindGroupCache } from '../../src/engine/bind-groups.ts';
import { BufferPool } from '../../src/engine/pool.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await engine();
});

function buffer(size = 256): GPUBuffer {
  return rt.device.gpu.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM });
}

describe('BindGroupCache', () => {
  it('finds a group again by layout, buffers, offsets and sizes; forget and the limit drop groups', () => {
    const layout = rt.device.gpu.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      ],
    });
    const [u, a, b, c] = [buffer(1024), buffer(), buffer(), buffer()];
    const cache = new BindGroupCache(rt.device.gpu, 3);
    const entries = (off: number, x: GPUBuffer): GPUBindGroupEntry[] => [
      { binding: 0, resource: { buffer: u, offset: off, size: 256 } },
      { binding: 1, resource: { buffer: x } },
    ];
    const g1 = cache.get('t', layout, entries(0, a));
    expect(cache.get('t', layout, entries(0, a))).toBe(g1);
    const g2 = cache.get('t', layout, entries(256, a)); // another uniform offset: another group
    const g3 = cache.get('t', layout, entries(0, b)); // another buffer: another group
    expect(new Set([g1, g2, g3]).size).toBe(3);
    expect(cache.stats()).toEqual({ cached: 3, created: 3, hits: 1 });

    cache.forget(b);
    expect(cache.stats().cached).toBe(2);
    expect(cache.get('t', layout, entries(0, b))).not.toBe(g3);
    expect(cache.stats()).toEqual({ cached: 3, created: 4, hits: 1 });

    // a hit makes g1 the most recent: the next new group evicts g2, the least recently used
    expect(cache.get('t', layout, entries(0, a))).toBe(g1);
    cache.get('t', layout, entries(0, c));
    expect(cache.stats()).toEqual({ cached: 3, created: 5, hits: 2 });
    expect(cache.get('t', layout, entries(0, a))).toBe(g1);
    expect(cache.get('t', layout, entries(256, a))).not.toBe(g2);
    expect(cache.stats()).toEqual({ cached: 3, created: 6, hits: 3 });
    for (const x of [u, a, b, c]) x.destroy();
  });

  it('a whole buffer, a range of it, and ranges at other offsets or sizes are different keys', () => {
    const layout = rt.device.gpu.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      ],
    });
    const [a, b] = [buffer(1024), buffer(1024)];
    const cache = new BindGroupCache(rt.device.gpu, 100);
    const keys: GPUBindingResource[][] = [
      [a, b],
      [b, a],
      [{ buffer: a }, b],
      [{ buffer: a, offset: 256 }, b],
      [{ buffer: a, offset: 256, size: 256 }, b],
      [{ buffer: a, offset: 512, size: 256 }, b],
      [a, { buffer: b, offset: 0, size: 256 }],
    ];
    const groups = keys.map((k) => cache.get('t', layout, k.map((resource, binding) => ({ binding, resource }))));
    // { buffer: a } binds all of a, but as a range its key differs from the bare buffer's
    expect(new Set(groups).size).toBe(keys.length);
    keys.forEach((k, i) => expect(cache.get('t', layout, k.map((resource, binding) => ({ binding, resource })))).toBe(groups[i]));
    expect(cache.stats()).toEqual({ cached: keys.length, created: keys.length, hits: keys.length });
    a.destroy();
    b.destroy();
  });

  it('past the limit the least recently used eighth goes, and frozen resources still key', () => {
    const layout = rt.device.gpu.createBindGroupLayout({
      entries: [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } }],
    });
    const bufs = Array.from({ length: 17 }, () => buffer());
    Object.freeze(bufs[16]);
    const cache = new BindGroupCache(rt.device.gpu, 16);
    const get = (i: number) => cache.get('t', layout, [{ binding: 0, resource: bufs[i] }]);
    const first = bufs.slice(0, 16).map((_, i) => get(i));
    // touch all but 3 and 7: they become the two least recently used
    for (let i = 0; i < 16; i++) if (i !== 3 && i !== 7) expect(get(i)).toBe(first[i]);
    const frozen = get(16);
    expect(cache.stats().cached).toBe(15);
    expect(get(16)).toBe(frozen);
    for (let i = 0; i < 16; i++) if (i !== 3 && i !== 7) expect(get(i)).toBe(first[i]);
    expect(get(3)).not.toBe(first[3]);
    for (const b of bufs) b.destroy();
  });

  it('a repeated op reuses its bind groups and computes the same values', async () => {
    const x = tensor(Float32Array.from([1, 2, 3, 4, 5]));
    const y = tensor(Float32Array.from([10, 20, 30, 40, 50]));
    const run = async () => {
      const z = add(x, y);
      const v = Array.from(await z.data());
      z.dispose();
      return v;
    };
    expect(await run()).toEqual([11, 22, 33, 44, 55]);
    const before = runtime().device.bindGroupStats();
    expect(await run()).toEqual([11, 22, 33, 44, 55]);
    const after = runtime().device.bindGroupStats();
    expect(after.created).toBe(before.created);
    expect(after.hits).toBeGreaterThan(before.hits);
    x.dispose();
    y.dispose();
  });
});

describe('BufferPool order', () => {
  it('hands out the oldest free buffer of a size class, whatever the release order', () => {
    const pool = new BufferPool(rt.device.gpu, () => {}, () => {});
    const [a, b, c] = [pool.acquire(1000), pool.acquire(1000), pool.acquire(1000)];
    pool.release(b);
    pool.release(c);
    pool.release(a);
    expect(pool.acquire(1000)).toBe(a);
    expect(pool.acquire(1000)).toBe(b);
    pool.release(a);
    expect(pool.acquire(1000)).toBe(a);
    expect(pool.acquire(1000)).toBe(c);
    expect(pool.stats()).toMatchObject({ created: 3, live: 3, free: 0 });
    for (const x of [a, b, c]) pool.release(x);
    pool.destroyAll();
  });

  it('trim tells the device which buffers go (their cached bind groups are dropped)', () => {
    const gone: GPUBuffer[] = [];
    const pool = new BufferPool(rt.device.gpu, () => {}, () => {}, (b) => gone.push(b));
    const a = pool.acquire(300);
    const b = pool.acquire(5000);
    pool.release(a);
    pool.release(b);
    pool.trim();
    expect(new Set(gone)).toEqual(new Set([a, b]));
  });
});
