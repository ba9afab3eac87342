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

/** How the nap loop paces itself (createNapWaiter). */
export interface NapOptions {
  /** A wait younger than this (ms) only spins: short waits get no added latency. */
  spinMs: number;
  /** The longest single nap (ms): the most latency one wait can gain. */
  maxNapMs: number;
  /** A nap lasts at most this fraction of the newest pending wait's age, so a wait of t ms is
   * stretched by at most this fraction of t (and by at most maxNapMs). */
  napFraction: number;
}

export const defaultNapOptions: NapOptions = { spinMs: 0.2, maxNapMs: 1, napFraction: 1 / 8 };

export interface NapWaiter {
  waitFor<T>(p: Promise<T>): Promise<T>;
  /** For tests: waits in flight, whether a loop turn is scheduled, loops started, naps taken. */
  readonly stats: { readonly pending: number; readonly scheduled: boolean; readonly loops: number; readonly naps: number };
}

/**
 * Waiting for Dawn without a spinning main thread. While any Dawn promise is pending, Dawn's
 * binding re-queues its event processing with setImmediate on every event-loop turn, so the
 * loop never blocks and the main thread runs at 100% (allocating a function per turn, with GC
 * to match). On a software adapter that thread takes a core from the driver's workers, which are
 * the GPU: measured with perf on a 1024^3 matmul on 2 cores, main thread ~35% of all samples,
 * lavapipe ~63% (bench/NOTES.md, "Waiting for the GPU without a spinning main thread").
 *
 * While at least one `waitFor` is pending, one loop of our own (a counter, not a loop per wait)
 * runs beside Dawn's: each turn it blocks the thread in Atomics.wait for a nap, so Dawn polls
 * once per nap instead of continuously. Naps start only after `spinMs` and grow with the age of
 * the newest wait (at most `napFraction` of it, at most `maxNapMs`), so a wait finishes at most
 * that much later than with spinning. The loop's immediates are unref'd and it stops on the first
 * turn with nothing pending: it never keeps the process alive by itself. Atomics.wait on the main
 * thread is a Node-only liberty (browsers forbid it), hence this lives behind Platform.
 */
export function createNapWaiter(options: Partial<NapOptions> = {}): NapWaiter {
  const { spinMs, maxNapMs, napFraction } = { ...defaultNapOptions, ...options };
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const stats = { pending: 0, scheduled: false, loops: 0, naps: 0 };
  let newestStart = 0;
  const turn = (): void => {
    stats.scheduled = false;
    if (stats.pending === 0) return;
    const age = performance.now() - newestStart;
    if (age >= spinMs) {
      // Nobody ever notifies the cell: this is a sleep that Dawn's own turns cannot interrupt.
      Atomics.wait(cell, 0, 0, Math.min(maxNapMs, age * napFraction));
      stats.naps++;
    }
    schedule();
  };
  const schedule = (): void => {
    stats.scheduled = true;
    setImmediate(turn).unref();
  };
  return {
    stats,
    waitFor<T>(p: Promise<T>): Promise<T> {
      stats.pending++;
      newestStart = performance.now();
      if (!stats.scheduled) {
        stats.loops++;
        schedule();
      }
      return Promise.resolve(p).finally(() => {
        stats.pending--;
      });
    },
  };
}

/** The process's one nap loop, shared by every device and by the benchmark harness. */
export const gpuWaiter: NapWaiter = createNapWaiter();

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
  waitFor: gpuWaiter.waitFor,
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
