/**
 * The foundation: device creation, a kernel round trip, WGSL errors with file and line, the
 * pipeline cache, the buffer pool, error paths, and clean process exit.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setPlatform, nodePlatform, init, tensor, add, GpuError, Device, type Runtime } from '../../src/engine/index.ts';
import { applyDefines, resolveIncludes, sourceLine } from '../../src/engine/kernels.ts';
import { sizeClass } from '../../src/engine/pool.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Kernels that exist only in this test, served through the platform (as a browser would serve
// them): one that compiles, one with a type error on line 4.
const TEST_KERNELS: Record<string, string> = {
  test_ok: `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
override SCALE: f32 = 1.0;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < arrayLength(&out)) { out[gid.x] = a[gid.x] * SCALE + 1.0; }
}
`,
  // div_u32 of kernels/index.wgsl through the loader's include step
  test_div: `// include: index
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> xd: array<vec2<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < arrayLength(&xd)) { out[gid.x] = div_u32(xd[gid.x].x, xd[gid.x].y); }
}
`,
  test_broken: `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x: f32 = vec2<u32>(1u, 2u);
  out[gid.x] = x;
}
`,
};

let rt: Runtime;

beforeAll(async () => {
  setPlatform({
    ...nodePlatform,
    kernelSource: (name) => TEST_KERNELS[name] ?? nodePlatform.kernelSource(name),
  });
  rt = await init();
});

describe('device', () => {
  it('runs on an adapter and describes it in one line', () => {
    const line = rt.device.describe();
    expect(line).toMatch(/^adapter: .+ \| vendor .+ \| (software|hardware) \|/);
    expect(line).not.toContain('\n');
    // the adapter's real limits were requested, not WebGPU's defaults (128 MiB bindings)
    expect(rt.device.limits.maxStorageBufferBindingSize).toBe(rt.device.adapter.limits.maxStorageBufferBindingSize);
    expect(rt.device.limits.maxComputeWorkgroupStorageSize).toBe(rt.device.adapter.limits.maxComputeWorkgroupStorageSize);
    for (const f of ['subgroups', 'timestamp-query', 'shader-f16']) {
      expect(rt.device.features.has(f)).toBe(rt.device.adapter.features.has(f as GPUFeatureName));
    }
  });

  it('round-trips data through a kernel with values checked', async () => {
    const n = 1000;
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 100);
    const buf = rt.device.pool.acquire(n * 4);
    const out = rt.device.pool.acquire(n * 4);
    rt.device.upload(buf, 0, data);
    const k = rt.kernels.get('test_ok', 'main', { constants: { SCALE: 2 } });
    // the pooled buffers may be larger than n: the kernel writes arrayLength elements, we read n
    rt.device.dispatch(k, [out, buf], null, [Math.ceil(sizeClass(n * 4) / 4 / 64)]);
    const back = new Float32Array(await rt.device.read(out, 0, n * 4));
    for (let i = 0; i < n; i++) expect(back[i]).toBe(Math.fround(data[i] * 2 + 1));
    rt.device.pool.release(buf);
    rt.device.pool.release(out);
  });

  it('div_u32 (kernels/index.wgsl, included) is exact: every u32 numerator, divisors below 2^24', async () => {
    const ds = [1, 2, 3, 7, 35, 64, 100, 197, 255, 1000, 4095, 65535, 2 ** 20 + 7, 2 ** 24 - 1];
    const xs: number[] = [];
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (const d of ds) {
      for (const x of [0, 1, d - 1, d, d + 1, 3 * d - 1, 3 * d, 2 ** 24 - 1, 2 ** 24, 2 ** 24 + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]) xs.push(x, d);
      for (let t = 0; t < 60; t++) xs.push(next(), d);
      for (let t = 0; t < 20; t++) xs.push(next() % (2 ** 25), d);
    }
    const pairs = Uint32Array.from(xs);
    const n = pairs.length / 2;
    const buf = rt.device.pool.acquire(pairs.byteLength);
    const out = rt.device.pool.acquire(n * 4);
    rt.device.upload(buf, 0, pairs);
    // the pooled input may be larger than the pairs: rows past n compute garbage we never read
    rt.device.dispatch(rt.kernels.get('test_div', 'main'), [out, buf], null, [Math.ceil(sizeClass(pairs.byteLength) / 8 / 64)]);
    const back = new Uint32Array(await rt.device.read(out, 0, n * 4));
    for (let i = 0; i < n; i++) {
      const [x, d] = [pairs[2 * i], pairs[2 * i + 1]];
      if (back[i] !== Math.floor(x / d)) expect(`${x} / ${d} = ${back[i]}`).toBe(`${x} / ${d} = ${Math.floor(x / d)}`);
    }
    rt.device.pool.release(buf);
    rt.device.pool.release(out);
  });

  it('reads back tensors made by ops', async () => {
    const a = tensor([1, 2, 3, 4], [2, 2]);
    const b = tensor([10, 20], [2]);
    expect(Array.from(await add(a, b).data())).toEqual([11, 22, 13, 24]);
  });
});

describe('device errors', () => {
  it('a lost device is reported with its reason instead of a hang', async () => {
    const d = await Device.create();
    const buf = d.pool.acquire(64);
    d.gpu.destroy(); // the device goes away under the engine, as on a driver reset
    const err = await Promise.race([
      d.read(buf, 0, 16).then(() => null, (e: unknown) => e),
      new Promise((resolve) => setTimeout(() => resolve('hang'), 20_000)),
    ]);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as Error).message).toMatch(/GPU device lost \(destroyed/);
    expect(() => d.dispatch(rt.kernels.get('test_ok', 'main'), [buf], null, [1])).toThrow(/GPU device lost/);
  });

  it('a buffer larger than the adapter allows is a clear error, not a crash', () => {
    const max = rt.device.limits.maxBufferSize;
    expect(() => rt.device.pool.acquire(max + 1)).toThrow(/exceeds the adapter's maxBufferSize/);
  });
});

describe('kernel loader', () => {
  it('reports a WGSL compile error with the file, line and message', async () => {
    const err = await rt.kernels.compile('test_broken', 'main').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as Error).message).toMatch(/kernels\/test_broken\.wgsl:4:\d+: error: /);
  });

  it('surfaces a compile error of a kernel used synchronously at the next readback', async () => {
    const k = rt.kernels.get('test_broken', 'main');
    const out = rt.device.pool.acquire(256);
    rt.device.dispatch(k, [out], null, [1]);
    const err = await rt.device.read(out, 0, 16).catch((e: unknown) => e);
    rt.device.pool.release(out);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as Error).message).toMatch(/kernels\/test_broken\.wgsl:4:\d+/);
    // the device stays usable afterwards
    expect(Array.from(await add(tensor([1]), tensor([2])).data())).toEqual([3]);
  });

  it('names the kernel and entry point of a bad entry point', async () => {
    const err = await rt.kernels.compile('test_ok', 'no_such_entry').catch((e: unknown) => e);
    expect((err as Error).message).toContain('kernels/test_ok.wgsl, entry point "no_such_entry"');
  });

  it('compiles each (file, entry, specialisation) once', () => {
    const before = rt.kernels.compiledCount;
    const k1 = rt.kernels.get('test_ok', 'main', { constants: { SCALE: 3 } });
    const k2 = rt.kernels.get('test_ok', 'main', { constants: { SCALE: 3 } });
    expect(k2).toBe(k1);
    expect(rt.kernels.compiledCount).toBe(before + 1);
    rt.kernels.get('test_ok', 'main', { constants: { SCALE: 4 } });
    expect(rt.kernels.compiledCount).toBe(before + 2);
    for (let i = 0; i < 100; i++) rt.kernels.get('test_ok', 'main', { constants: { SCALE: 3 } });
    expect(rt.kernels.compiledCount).toBe(before + 2);
  });

  it('fills template placeholders and rejects missing ones', () => {
    expect(applyDefines('x', 'array<{{T}}>; {{T}}', { T: 'f32' })).toBe('array<f32>; f32');
    expect(() => applyDefines('x', 'array<{{T}}>', {})).toThrow(/kernels\/x\.wgsl: template placeholder \{\{T\}\} has no value/);
  });

  it('appends included files once each and maps compiler lines back to the file they came from', () => {
    const files: Record<string, string> = { lib: 'fn f() {}\nfn g() {}\n', other: 'fn h() {}' };
    const src = '// include: lib\nfn main() {}\n// include: lib\n// include: other\n';
    const inc = resolveIncludes(src, (n) => files[n]);
    expect(inc.code).toBe(`${src}fn f() {}\nfn g() {}\nfn h() {}\n`);
    expect(inc.parts).toEqual([{ name: 'lib', firstLine: 5 }, { name: 'other', firstLine: 7 }]);
    expect(sourceLine('x', inc, 2)).toBe('kernels/x.wgsl:2');
    expect(sourceLine('x', inc, 6)).toBe('kernels/lib.wgsl:2');
    expect(sourceLine('x', inc, 7)).toBe('kernels/other.wgsl:1');
    // a file without includes is returned as it is (plus a final newline)
    expect(resolveIncludes('fn a() {}', () => '').code).toBe('fn a() {}\n');
  });
});

describe('buffer pool', () => {
  it('reuses buffers: no growth over 1000 allocate/free cycles', () => {
    const pool = rt.device.pool;
    const sizes = [4, 1000, 4096, 65536, 123457];
    for (const s of sizes) pool.release(pool.acquire(s));
    const start = pool.stats();
    for (let i = 0; i < 1000; i++) {
      const bufs = sizes.map((s) => pool.acquire(s));
      for (const b of bufs) pool.release(b);
    }
    const end = pool.stats();
    expect(end.created).toBe(start.created);
    expect(end.bytes).toBe(start.bytes);
    expect(end.live).toBe(start.live);
  });

  it('size classes waste at most 25%', () => {
    for (let b = 1; b < 1 << 22; b = Math.ceil(b * 1.37) + 1) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      if (b > 256) expect(c / b).toBeLessThanOrEqual(1.25);
    }
  });

  it('records many dispatches per submission', async () => {
    const before = rt.device.stats.submits;
    let x = tensor([0]);
    const one = tensor([1]);
    for (let i = 0; i < 50; i++) {
      const y = add(x, one);
      x.dispose();
      x = y;
    }
    expect(rt.device.stats.submits - before).toBeLessThanOrEqual(2);
    expect((await x.data())[0]).toBe(50);
  });
});

describe('processes', () => {
  const node = process.execPath;

  it('exits by itself when its work is done', () => {
    const script = `import { init, tensor, add } from '${ROOT}src/engine/index.ts';
await init(); const x = add(tensor([1, 2]), tensor([3, 4])); console.log(Array.from(await x.data()).join(','));`;
    const r = spawnSync(node, ['--input-type=module', '-e', script], { timeout: 60_000, encoding: 'utf8' });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('4,6');
  });

  it('without any adapter: a clear message, how to install one, non-zero exit, no stack trace', () => {
    const r = spawnSync(node, [`${ROOT}scripts/adapter-info.ts`], {
      timeout: 60_000,
      encoding: 'utf8',
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/none.json', VK_DRIVER_FILES: '/nonexistent/none.json' },
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('no WebGPU adapter available');
    expect(r.stderr).toContain('lavapipe');
    expect(r.stderr).not.toMatch(/\n\s+at .*\.ts:\d+/);
  });
});
