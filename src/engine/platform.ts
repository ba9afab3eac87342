/**
 * What the engine needs from its host, and nothing else: a `GPU` object and a way to read a
 * kernel's WGSL source by name. Node provides these in platform-node.ts (Dawn + the file system);
 * a browser would provide `navigator.gpu` and `fetch`. The rest of the engine never imports a
 * Node module, so it runs unchanged on either.
 */
export interface Platform {
  /** A short name for logs ("node-dawn", "browser"). */
  readonly name: string;
  /** The WebGPU entry point (Dawn's GPU object under Node, navigator.gpu in a browser). */
  gpu(): GPU;
  /** A GPU object whose adapter requests are limited to adapters whose name contains the
   * given substring (Dawn's `adapter=` flag); optional. */
  gpuWithFlags?(flags: string[]): GPU;
  /** The text of kernels/<name>.wgsl. Synchronous so pipelines can be built on first use. */
  kernelSource(name: string): string;
  /** Hint to the host that this process may exit when idle (Node: unref Dawn's event loop hold). */
  allowExit?(): void;
  /**
   * Settles as `p` settles, but lets the host wait for it without keeping a CPU core busy;
   * optional (without it the engine awaits `p` directly). Under Node, Dawn re-polls its pending
   * promises on every event-loop turn, so a bare await spins the main thread at 100%; Node's
   * version naps between turns (platform-node.ts). A browser has no such loop to calm.
   */
  waitFor?<T>(p: Promise<T>): Promise<T>;
}

let current: Platform | null = null;

export function setPlatform(p: Platform): void {
  current = p;
}

export function getPlatform(): Platform {
  if (!current) {
    throw new Error(
      'goe-webgpu: no platform set. Under Node import "goe-webgpu" (src/engine/index.ts), which ' +
        'installs the Dawn platform; in a browser call setPlatform(browserPlatform(...)) first.',
    );
  }
  return current;
}
