import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * The folder datasets are downloaded to and read from.
 * `GOE_DATA_DIR` wins; otherwise `$XDG_CACHE_HOME/goe-webgpu/data`, otherwise `~/.cache/goe-webgpu/data`.
 */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.GOE_DATA_DIR;
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const xdg = env.XDG_CACHE_HOME;
  const cache = xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return join(cache, 'goe-webgpu', 'data');
}

/** Where Debian's `dataset-fashion-mnist` package installs the Fashion-MNIST IDX files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Where system packages' datasets are looked for: Debian's folders, unless `GOE_SYSTEM_DATASETS`
 * is "none" (ignore them: what a machine without the packages sees) or another folder holding the
 * same layout (fashion-mnist/...).
 */
export function systemFashionMnistDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env.GOE_SYSTEM_DATASETS;
  if (v === undefined || v === '') return DEBIAN_FASHION_MNIST_DIR;
  return v === 'none' ? null : join(resolve(v), 'fashion-mnist');
}
