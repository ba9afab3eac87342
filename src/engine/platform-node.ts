/**
 * The only Node-specific part of the engine: Dawn's GPU object from the npm package `webgpu`,
 * and kernel sources read from the kernels/ folder beside src/.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Platform } from './platform.ts';

const KERNEL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernels');

let gpuObject: GPU | null = null;

/**
 * Every GPU object handed out stays referenced for the life of the process. Dawn's Node binding
 * frees its instance when the JavaScript GPU object is garbage-collected, but a device made from
 * it keeps polling that instance (InstanceBase::ProcessEvents) while a promise is pending: abort,
 * segfault or hang (bench/NOTES.md, "The crash", 2026-11-27; bench/crash/engine-gc-pending.ts
 * with a named adapter died 3 of 3 runs without this, test/engine/crash.test.ts).
 */
const keptGpuObjects: GPU[] = [];

function createDawnGpu(extraFlags: string[] = []): GPU {
  const require = createRequire(import.meta.url);
  let mod: { create: (flags: string[]) => GPU; globals: object };
  try {
    mod = require('webgpu');
  } catch (e) {
    throw new Error(
      `could not load Dawn's Node bindings (npm package "webgpu"): ${(e as Error).message}\n` +
        'Run `npm ci` in the project root.',
    );
  }
  // The WebGPU constants (GPUBufferUsage, GPUMapMode, ...) are globals in a browser; Dawn hands
  // them over as an object.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  // Dawn toggles: keep the validation Dawn does by default; GOE_DAWN_FLAGS adds more
  // (comma-separated, e.g. "enable-dawn-features=allow_unsafe_apis").
  const flags = (process.env.GOE_DAWN_FLAGS ?? '').split(',').filter((s) => s.length > 0);
  return mod.create([...flags, ...extraFlags]);
}

export const nodePlatform: Platform = {
  name: 'node-dawn',
  gpu(): GPU {
    // Module-level: never collected (see keptGpuObjects).
    gpuObject ??= createDawnGpu();
    return gpuObject;
  },
  gpuWithFlags(flags: string[]): GPU {
    const gpu = createDawnGpu(flags);
    keptGpuObjects.push(gpu);
    return gpu;
  },
  kernelSource(name: string): string {
    const file = join(KERNEL_DIR, `${name}.wgsl`);
    if (!existsSync(file)) {
      throw new Error(`kernel file kernels/${name}.wgsl not found (looked in ${KERNEL_DIR})`);
    }
    return readFileSync(file, 'utf8');
  },
};

/**
 * Runs a command-line program's main function: an engine error (no adapter, a GPU error, bad
 * input to an op) prints its message, without a stack trace from deep inside, and exits non-zero.
 * Set GOE_DEBUG=1 to see the stack.
 */
export async function runMain(main: () => Promise<void> | void): Promise<void> {
  try {
    await main();
  } catch (e) {
    const err = e as Error;
    const known = ['NoAdapterError', 'GpuError', 'OpError'].includes(err?.name);
    if (process.env.GOE_DEBUG || !known) console.error(err);
    else console.error(`error: ${err.message}`);
    process.exitCode = err?.name === 'NoAdapterError' ? 3 : 1;
  }
}
