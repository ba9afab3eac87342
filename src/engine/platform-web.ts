/**
 * The engine's browser platform: `navigator.gpu`, and kernel sources fetched over HTTP.
 *
 * `Platform.kernelSource` is synchronous (pipelines are built on an op's first use), so the WGSL
 * files are fetched once, all together, before the engine starts: `await loadBrowserPlatform(opts)`
 * then `setPlatform(...)` (or `installBrowserPlatform(opts)`, which does both). Which files: the
 * `files` option, or the JSON array of names at <kernelBaseUrl>/index.json (demo/serve.ts serves
 * it from the folder's listing, so a new kernel file needs no list kept by hand). No Node API here.
 */
import type { Platform } from './platform.ts';
import { setPlatform } from './platform.ts';

export interface BrowserPlatformOptions {
  /** Where kernels/<name>.wgsl are served, e.g. '/kernels/' or new URL('kernels/', location.href). */
  kernelBaseUrl: string | URL;
  /** The WebGPU entry point; default `navigator.gpu`. */
  gpu?: GPU;
  /** Fetch function (tests may pass their own); default the global fetch. */
  fetch?: typeof fetch;
  /** The kernel files' names (without .wgsl); default: fetched from <kernelBaseUrl>/index.json. */
  files?: readonly string[];
}

/** A platform over sources already in memory (e.g. bundled as text), with no fetching. */
export function browserPlatformFromSources(sources: ReadonlyMap<string, string> | Record<string, string>, gpu?: GPU): Platform {
  const map = sources instanceof Map ? sources : new Map(Object.entries(sources));
  return {
    name: 'browser',
    gpu(): GPU {
      const g = gpu ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
      if (!g) {
        throw new Error(
          'this browser has no WebGPU (navigator.gpu is undefined): use a recent Chromium or Chrome ' +
            '(headless: --enable-unsafe-webgpu), Edge, or Firefox/Safari with WebGPU enabled, over https or localhost',
        );
      }
      return g;
    },
    kernelSource(name: string): string {
      const s = map.get(name);
      if (s === undefined) {
        throw new Error(`kernel file kernels/${name}.wgsl was not loaded (loaded: ${[...map.keys()].join(', ')})`);
      }
      return s;
    },
  };
}

/** Fetches every kernel file (in parallel) and returns the platform; a missing file is an error
 * naming its URL and HTTP status. */
export async function loadBrowserPlatform(opts: BrowserPlatformOptions): Promise<Platform> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const base = typeof opts.kernelBaseUrl === 'string'
    ? new URL(opts.kernelBaseUrl, (globalThis as { location?: { href: string } }).location?.href)
    : opts.kernelBaseUrl;
  let files = opts.files;
  if (!files) {
    const url = new URL('index.json', base);
    const res = await doFetch(url);
    if (!res.ok) throw new Error(`could not fetch the kernel list ${url.href}: HTTP ${res.status} ${res.statusText} (serve a JSON array of the kernels/ file names there, or pass \`files\`)`);
    const list: unknown = await res.json();
    if (!Array.isArray(list) || !list.every((n) => typeof n === 'string' && /^(?:[A-Za-z0-9_-]+\/)?[A-Za-z0-9_-]+$/.test(n))) {
      throw new Error(`${url.href} must be a JSON array of kernel file names without .wgsl, e.g. ["matmul", "simd8/matmul"]`);
    }
    files = list as string[];
  }
  const entries = await Promise.all(
    files.map(async (name): Promise<[string, string]> => {
      const url = new URL(`${name}.wgsl`, base);
      const res = await doFetch(url);
      if (!res.ok) throw new Error(`could not fetch kernel ${url.href}: HTTP ${res.status} ${res.statusText}`);
      return [name, await res.text()];
    }),
  );
  return browserPlatformFromSources(new Map(entries), opts.gpu);
}

/** loadBrowserPlatform, then setPlatform: after this, `init()` works as under Node. */
export async function installBrowserPlatform(opts: BrowserPlatformOptions): Promise<Platform> {
  const p = await loadBrowserPlatform(opts);
  setPlatform(p);
  return p;
}
