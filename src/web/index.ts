/**
 * goe-webgpu in a browser: the platform-free engine API (src/engine/api.ts), the browser platform
 * (navigator.gpu, kernels fetched over HTTP), and `initBrowser`, which does both steps a page needs
 * before using tensors. Bundle with esbuild (demo/serve.ts shows how).
 *
 *   import { initBrowser, tensor, matmul } from './src/web/index.ts';
 *   const rt = await initBrowser({ kernelBaseUrl: '/kernels/' });
 */
import { init, type Runtime, type DeviceOptions } from '../engine/api.ts';
import { installBrowserPlatform, type BrowserPlatformOptions } from '../engine/platform-web.ts';

export * from '../engine/api.ts';
export { installBrowserPlatform, loadBrowserPlatform, browserPlatformFromSources, type BrowserPlatformOptions } from '../engine/platform-web.ts';

/** Fetches the kernels, installs the browser platform and creates the device. */
export async function initBrowser(opts: BrowserPlatformOptions & { device?: DeviceOptions }): Promise<Runtime> {
  await installBrowserPlatform(opts);
  return init(opts.device ?? {});
}

/** One line about the adapter and the limits the kernels must respect (for pages and logs). */
export function describeAdapter(rt: Runtime): string {
  const d = rt.device;
  const info = d.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number; isFallbackAdapter?: boolean };
  const sg = d.features.has('subgroups') ? `subgroups ${info.subgroupMinSize ?? '?'}-${info.subgroupMaxSize ?? '?'}` : 'no subgroups';
  const name = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') || 'unknown adapter';
  return `${name}${info.isFallbackAdapter ? ' (fallback adapter)' : ''}${d.isSoftware ? ', software' : ''}; ` +
    `${d.limits.maxComputeInvocationsPerWorkgroup} invocations/workgroup, ${sg}, ` +
    `storage binding ${Math.round(d.limits.maxStorageBufferBindingSize / 2 ** 20)} MiB, ` +
    `features ${[...d.features].sort().join(',') || 'none'}`;
}
