/**
 * The environment variables `goe` reads, checked before any command starts (issue 17: a bad value
 * is a usage error, exit 2, one line saying what to set). Empty counts as unset, as where they are
 * read. Not checked: GOE_ADAPTER (any text names part of an adapter; one that matches none is
 * answered with the adapters that exist, when the device is made) and GOE_DEBUG (any value turns
 * stacks on).
 */
import { statSync } from 'node:fs';
import { GPU_WAIT_SETTINGS } from '../engine/device.ts';

/** Dawn's Node flags are `key=value` (e.g. enable-dawn-features=allow_unsafe_apis, backend=vulkan). */
const DAWN_FLAG = /^[a-z][a-z0-9_-]*=\S+$/;

function folderProblem(path: string): 'missing' | 'not a folder' | null {
  try {
    return statSync(path).isDirectory() ? null : 'not a folder';
  } catch {
    return 'missing';
  }
}

/** Why the environment cannot run `goe`, as one line, or null when it can. */
export function envProblem(env: NodeJS.ProcessEnv = process.env): string | null {
  const set = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

  const wait = set('GOE_GPU_WAIT');
  if (wait !== undefined && !(GPU_WAIT_SETTINGS as readonly string[]).includes(wait)) {
    return `GOE_GPU_WAIT=${wait} is not a way to wait for the GPU: set it to auto (the default), nap or spin, or unset it`;
  }
  const warnings = set('GOE_DAWN_WARNINGS');
  if (warnings !== undefined && warnings !== '0' && warnings !== '1') {
    return `GOE_DAWN_WARNINGS=${warnings}: set it to 1 to show Dawn's adapter warnings, or to 0 (or unset it) to hide them`;
  }
  const flags = set('GOE_DAWN_FLAGS');
  const badFlag = flags?.split(',').find((f) => f.length > 0 && !DAWN_FLAG.test(f));
  if (badFlag !== undefined) {
    return `GOE_DAWN_FLAGS holds "${badFlag}", not a key=value Dawn flag: write comma-separated key=value pairs (e.g. enable-dawn-features=allow_unsafe_apis) or unset it`;
  }
  const data = set('GOE_DATA_DIR');
  if (data !== undefined && folderProblem(data) === 'not a folder') {
    return `GOE_DATA_DIR=${data} is a file, not a folder: point it at a folder for datasets (it is made if missing) or unset it`;
  }
  const system = set('GOE_SYSTEM_DATASETS');
  if (system !== undefined && system !== 'none') {
    const problem = folderProblem(system);
    if (problem !== null) {
      return `GOE_SYSTEM_DATASETS=${system} is ${problem === 'missing' ? 'no folder that exists' : 'a file, not a folder'}: set it to a folder holding fashion-mnist/, to none (ignore system datasets), or unset it`;
    }
  }
  return null;
}
