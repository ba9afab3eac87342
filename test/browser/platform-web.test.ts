/**
 * The browser platform (src/engine/platform-web.ts) without a browser: it fetches the kernel list
 * and every kernel it names, serves what it fetched, and a failed fetch, a bad list or an unknown
 * name is a clear error. The demo server's list is the kernels/ folder.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBrowserPlatform, browserPlatformFromSources } from '../../src/engine/platform-web.ts';
import { kernelNames, ROOT, startDemoServer } from '../../demo/serve.ts';

const KERNELS = join(ROOT, 'kernels');

function fileFetch(opts: { missing?: string; list?: unknown } = {}): { fetch: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  const f = (async (input: string | URL | Request) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    urls.push(url.href);
    // the path below the base folder (/kernels/ or /k/): `matmul.wgsl`, `simd8/matmul.wgsl`
    const name = url.pathname.split('/').slice(2).join('/');
    if (name === 'index.json') return new Response(JSON.stringify(opts.list ?? kernelNames()));
    if (name === opts.missing) return new Response('gone', { status: 404, statusText: 'Not Found' });
    return new Response(readFileSync(join(KERNELS, name), 'utf8'));
  }) as typeof fetch;
  return { fetch: f, urls };
}

describe('browser platform', () => {
  it('fetches the list, then each kernel once, and hands out their text', async () => {
    const { fetch, urls } = fileFetch();
    const p = await loadBrowserPlatform({ kernelBaseUrl: 'http://localhost/kernels/', fetch, gpu: {} as GPU });
    expect(p.name).toBe('browser');
    expect(urls).toHaveLength(1 + kernelNames().length);
    expect(p.kernelSource('matmul')).toBe(readFileSync(join(KERNELS, 'matmul.wgsl'), 'utf8'));
    expect(() => p.kernelSource('nope')).toThrow(/kernels\/nope\.wgsl was not loaded/);
  });

  it('a kernel the server does not have is an error naming its URL and status', async () => {
    await expect(loadBrowserPlatform({ kernelBaseUrl: 'http://localhost/k/', fetch: fileFetch({ missing: 'gru.wgsl' }).fetch, gpu: {} as GPU }))
      .rejects.toThrow('could not fetch kernel http://localhost/k/gru.wgsl: HTTP 404 Not Found');
  });

  it('a list that is not an array of names is refused', async () => {
    await expect(loadBrowserPlatform({ kernelBaseUrl: 'http://localhost/k/', fetch: fileFetch({ list: ['../etc/passwd'] }).fetch, gpu: {} as GPU }))
      .rejects.toThrow(/must be a JSON array of kernel file names/);
  });

  it('the demo server lists every kernels/*.wgsl and serves them', async () => {
    const s = await startDemoServer({ distDir: KERNELS }); // no bundle needed here
    try {
      const list = (await (await fetch(`${s.url}kernels/index.json`)).json()) as string[];
      expect(list).toEqual(kernelNames());
      expect(list).toContain('matmul');
      expect(list).toContain('simd8/matmul');
      expect(await (await fetch(`${s.url}kernels/simd8/matmul.wgsl`)).text()).toBe(readFileSync(join(KERNELS, 'simd8', 'matmul.wgsl'), 'utf8'));
      expect(await (await fetch(`${s.url}kernels/matmul.wgsl`)).text()).toBe(readFileSync(join(KERNELS, 'matmul.wgsl'), 'utf8'));
      expect((await fetch(`${s.url}kernels/..%2Fpackage.json`)).status).toBe(404);
    } finally {
      await s.close();
    }
  });

  it('without navigator.gpu says which browsers have WebGPU', () => {
    expect(() => browserPlatformFromSources({}).gpu()).toThrow(/no WebGPU \(navigator.gpu is undefined\)/);
  });
});
