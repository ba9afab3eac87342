/**
 * The engine's process-wide state: one device and its kernel loader. `init()` creates them;
 * every op reaches them through `runtime()`.
 */
import { Device, type DeviceOptions } from './device.ts';
import { KernelLoader } from './kernels.ts';

export interface Runtime {
  readonly device: Device;
  readonly kernels: KernelLoader;
}

let current: Runtime | null = null;
let pending: Promise<Runtime> | null = null;

/** Creates the device (once; later calls return the same runtime). */
export function init(opts: DeviceOptions = {}): Promise<Runtime> {
  if (current) return Promise.resolve(current);
  pending ??= Device.create(opts).then(
    (device) => {
      current = { device, kernels: new KernelLoader(device) };
      return current;
    },
    (e: unknown) => {
      pending = null;
      throw e;
    },
  );
  return pending;
}

/** The runtime; throws a clear error when `init()` was not awaited first. */
export function runtime(): Runtime {
  if (!current) {
    throw new Error('goe-webgpu: the engine is not initialised: `await init()` before using tensors');
  }
  return current;
}

export function isInitialised(): boolean {
  return current !== null;
}

/** Destroys the device; a later `init()` creates a new one. */
export function shutdown(): void {
  current?.device.destroy();
  current = null;
  pending = null;
}
