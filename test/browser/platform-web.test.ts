/**
 * The browser platform (src/engine/platform-web.ts) without a browser: its kernel list is the
 * kernels/ folder, it serves what it fetched, and a failed fetch or an unknown name is a clear error.
 */
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KERNEL_FILES, loadBrowserPlatform, browserPlatformFromSources } from '../../src/engine/platform-web.ts';
import { ROOT } from '../../demo/serve.ts';

const KERNELS = join(ROOT, 'kernels');

function fileFetch(missing = ''): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    const name = url.pathname.split('/').pop()!;
    if (name === missing) return new Response('gone', { status: 404, statusText: 'Not Found' });
    return new Response(readFileSync(join(KERNELS, name), 'utf8'));
  }) as typeof fetch;
}

describe('browser platform', () => {
  it('lists every file of kernels/', () => {
    const files = readdirSync(KERNELS).filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5)).sort();
    expect([...KERNEL_FILES].sort()).toEqual(files);
  });

  it('fetches each kernel once and hands out its text', async () => {
    const p = await loadBrowserPlatform({ kernelBaseUrl: 'http://localhost/kernels/', fetch: fileFetch(), gpu: {} as GPU });
    expect(p.name).toBe('browser');
    expect(p.kernelSource('matmul')).toBe(readFileSync(join(KERNELS, 'matmul.wgsl'), 'utf8'));
    expect(() => p.kernelSource('nope')).toThrow(/kernels\/nope\.wgsl was not loaded/);
  });

  it('a kernel the server does not have is an error naming its URL and status', async () => {
    await expect(loadBrowserPlatform({ kernelBaseUrl: 'http://localhost/k/', fetch: fileFetch('gru.wgsl'), gpu: {} as GPU }))
      .rejects.toThrow('could not fetch kernel http://localhost/k/gru.wgsl: HTTP 404 Not Found');
  });

  it('without navigator.gpu says which browsers have WebGPU', () => {
    expect(() => browserPlatformFromSources({}).gpu()).toThrow(/no WebGPU \(navigator.gpu is undefined\)/);
  });
});
