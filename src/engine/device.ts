/**
 * The device layer: adapter choice, limits and features, error reporting, and the command
 * stream (one encoder, one open compute pass, a uniform arena, submitted in batches).
 *
 * Nothing here waits on the GPU except `read` (an explicit readback) and `sync`.
 */
import { getPlatform } from './platform.ts';
import { BufferPool, StagingPool } from './pool.ts';
import { BindGroupCache, type BindGroupStats } from './bind-groups.ts';
import { GpuError, NoAdapterError } from './errors.ts';
import { adaptersInDawnMessage, noMatchingAdapterMessage } from './adapter-list.ts';
import { capsOf, isSoftwareInfo, restrictCaps, type Caps } from './caps.ts';
import { KernelProfiler, type KernelTime } from './kernel-profile.ts';

export type AdapterChoice = 'auto' | 'hardware' | 'software' | string;

export interface DeviceOptions {
  /** 'auto' (hardware first, software fallback), 'hardware', 'software', or a substring of the
   * adapter's name. Default: the environment variable GOE_ADAPTER, else 'auto'. */
  adapter?: AdapterChoice;
  /** Dispatches recorded before the encoder is submitted on its own (keeps the GPU busy while
   * JavaScript records the rest). */
  dispatchesPerSubmit?: number;
  /** How the host waits for the GPU: 'auto', 'nap' or 'spin' (see chooseGpuWait). Default: the
   * environment variable GOE_GPU_WAIT, else 'auto'. */
  gpuWait?: 'auto' | GpuWaitMode;
}

/** 'nap': waits go through Platform.waitFor (no spinning core); 'spin': bare awaits. */
export type GpuWaitMode = 'nap' | 'spin';

/** The values GOE_GPU_WAIT / DeviceOptions.gpuWait take. */
export const GPU_WAIT_SETTINGS = ['auto', 'nap', 'spin'] as const;

/**
 * Whether waits on the GPU nap (Platform.waitFor) or let Dawn's binding spin the main thread.
 * 'auto' naps on software adapters only. There the GPU is the CPU: the spinning thread takes a
 * core from the driver's workers, and napping made kernels faster (bench/NOTES.md, "Waiting for
 * the GPU without a spinning main thread"). On a hardware GPU the spinner costs a CPU core but no
 * GPU throughput, while a nap can end a wait up to ~1 ms late (bounded by a fraction of the wait):
 * a loss on short training steps that read a loss back, for a core such machines rarely miss.
 * 'nap' or 'spin' force either way (e.g. 'nap' when a data loader on a small machine needs the core).
 */
export function chooseGpuWait(setting: string, isSoftware: boolean): GpuWaitMode {
  if (setting === 'nap' || setting === 'spin') return setting;
  if (setting === 'auto') return isSoftware ? 'nap' : 'spin';
  throw new Error(`GOE_GPU_WAIT=${setting}: expected auto, nap or spin`);
}

/** The features the kernels use when the adapter has them. */
const WANTED_FEATURES: GPUFeatureName[] = ['subgroups', 'timestamp-query', 'shader-f16'];

/** The limits we raise to the adapter's maximum (WebGPU's defaults are far smaller). */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
  // matmul's simd8 kind packs an operand into a 2-D array texture (kernels/simd8/matmul.wgsl)
  'maxTextureDimension2D',
  'maxTextureArrayLayers',
] as const;

const UNIFORM_ARENA_BYTES = 1 << 18;

/** Bind groups kept for reuse (bind-groups.ts): above the distinct groups of one training step of
 * the models here (bench/NOTES.md, "Bind groups per dispatch"), so a step never evicts its own. */
const BIND_GROUP_CACHE_LIMIT = 1 << 16;

export interface Kernel {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Whether binding 0 is the kernel's uniform parameter block. */
  readonly hasParams: boolean;
}

export class Device {
  readonly adapter: GPUAdapter;
  readonly gpu: GPUDevice;
  readonly info: GPUAdapterInfo;
  readonly isSoftware: boolean;
  readonly features: ReadonlySet<string>;
  readonly limits: GPUSupportedLimits;
  readonly pool: BufferPool;
  readonly staging: StagingPool;
  readonly uniformAlign: number;
  /** Subgroup size the kernels may assume, 0 when subgroups are unavailable. */
  readonly subgroupSize: number;
  /** How `wait` waits (chooseGpuWait). */
  readonly gpuWait: GpuWaitMode;
  /** What the kernels may assume (caps.ts): every plan reads this, not the adapter. */
  private capsNow: Caps;
  private readonly capsFull: Caps;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private recorded = 0;
  private readonly dispatchesPerSubmit: number;
  private readonly uniformCpu = new Uint8Array(UNIFORM_ARENA_BYTES);
  private readonly uniformU32 = new Uint32Array(this.uniformCpu.buffer);
  private readonly uniformF32 = new Float32Array(this.uniformCpu.buffer);
  /** The pipeline set in the open pass (null when none or no pass). */
  private passPipeline: GPUComputePipeline | null = null;
  private readonly maxWorkgroups: number;
  private uniformUsed = 0;
  private readonly uniformGpu: GPUBuffer;
  private readonly bindGroups: BindGroupCache;
  /** Kernel labels recorded into the pending encoder, to name the culprit of an error. */
  private pendingLabels = new Set<string>();
  /** Errors reported asynchronously by the device, thrown at the next sync point. */
  private readonly errors: GpuError[] = [];
  private readonly checks: Promise<void>[] = [];
  private lostReason: string | null = null;
  /** Why the device went away (also when we destroyed it), for waits that start afterwards. */
  private lostError: GpuError | null = null;
  /** Rejecters of the waits in flight: a lost device fails them instead of leaving them hanging.
   * A set, not a `lost.then` per wait: reactions on the never-settling `lost` promise are kept
   * for the device's life (~460 bytes a wait, 93 MB per 200k waits measured). */
  private readonly lostWaiters = new Set<(e: Error) => void>();
  private destroyed = false;
  /** Timestamps per dispatch while a kernel profile runs (startKernelProfile). */
  private profiler: KernelProfiler | null = null;
  /** Tests set this: every new tensor's buffer is filled with NaN first, so elements a kernel
   * forgets to write show up instead of passing as stale zeros. */
  poison = false;
  /** Counters for tests and benchmarks. */
  readonly stats = { submits: 0, dispatches: 0, uploads: 0, readbacks: 0 };

  private constructor(adapter: GPUAdapter, device: GPUDevice, opts: DeviceOptions, gpuWait: GpuWaitMode) {
    this.adapter = adapter;
    this.gpu = device;
    this.info = adapter.info;
    this.isSoftware = isSoftwareAdapter(adapter);
    this.features = new Set([...device.features].map(String));
    this.limits = device.limits;
    this.maxWorkgroups = device.limits.maxComputeWorkgroupsPerDimension;
    this.capsFull = this.capsNow = capsOf({ info: adapter.info, features: this.features, limits: device.limits });
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.subgroupSize = this.features.has('subgroups') ? (adapter.info.subgroupMinSize ?? 0) : 0;
    this.dispatchesPerSubmit = opts.dispatchesPerSubmit ?? 256;
    this.gpuWait = gpuWait;
    this.bindGroups = new BindGroupCache(device, BIND_GROUP_CACHE_LIMIT);
    this.pool = new BufferPool(device, (e) => this.errors.push(e), () => this.flush(), (b) => this.bindGroups.forget(b));
    this.staging = new StagingPool(device);
    this.uniformGpu = device.createBuffer({
      label: 'uniform-arena',
      size: UNIFORM_ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.errors.push(new GpuError(`${errorKind(err)}: ${err.message}`));
    });
    void device.lost.then((info) => {
      this.lostError = new GpuError(`GPU device lost (${info.reason}: ${info.message})`);
      for (const reject of this.lostWaiters) reject(this.lostError);
      this.lostWaiters.clear();
      if (this.destroyed && info.reason === 'destroyed') return;
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Creates the device on the adapter chosen by `opts.adapter` / GOE_ADAPTER. */
  static async create(opts: DeviceOptions = {}): Promise<Device> {
    const choice = opts.adapter ?? readEnv('GOE_ADAPTER') ?? 'auto';
    const adapter = await requestAdapter(choice);
    const gpuWait = chooseGpuWait(opts.gpuWait ?? readEnv('GOE_GPU_WAIT') ?? 'auto', isSoftwareAdapter(adapter));
    const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
    const requiredLimits: Record<string, number> = {};
    for (const name of RAISED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number | undefined>)[name];
      if (typeof v === 'number') requiredLimits[name] = v;
    }
    const device = await adapter.requestDevice({
      label: 'goe-webgpu',
      requiredFeatures,
      requiredLimits,
    });
    return new Device(adapter, device, opts, gpuWait);
  }

  get caps(): Caps {
    return this.capsNow;
  }

  /** Narrows the caps (tests run the portable kernels on lavapipe this way); null restores them. */
  restrictCaps(r: Parameters<typeof restrictCaps>[1] | null): void {
    this.capsNow = r ? restrictCaps(this.capsFull, r) : this.capsFull;
  }

  /** One line for benchmark and training logs: what we run on and what it allows. */
  describe(): string {
    const i = this.info;
    const name = i.description || i.device || 'unknown adapter';
    const l = this.limits;
    const mib = (n: number) => `${Math.round(n / (1 << 20))} MiB`;
    const feats = WANTED_FEATURES.filter((f) => this.features.has(f)).join(',') || 'none';
    return (
      `adapter: ${name} | vendor ${i.vendor || '?'} | ${this.isSoftware ? 'software' : 'hardware'}` +
      ` | storage binding ${mib(l.maxStorageBufferBindingSize)}, buffer ${mib(l.maxBufferSize)}` +
      `, workgroup ${l.maxComputeWorkgroupStorageSize / 1024} KiB x ${l.maxComputeInvocationsPerWorkgroup}` +
      ` | subgroup ${this.subgroupSize || 'n/a'} | features ${feats}`
    );
  }

  // ---------------------------------------------------------------- recording

  /**
   * Records one compute dispatch. `buffers` bind at @binding(1..n) when the kernel has a
   * uniform parameter block at @binding(0) (`params` given), else at @binding(0..n-1). A buffer
   * binds whole; a binding resource (a buffer range, a texture view) binds as given.
   */
  dispatch(
    kernel: Kernel,
    buffers: readonly (GPUBuffer | GPUBindingResource)[],
    params: ArrayBufferView | null,
    workgroups: readonly [number, number?, number?],
  ): void {
    this.assertUsable(kernel.label);
    const x = workgroups[0];
    const y = workgroups[1] ?? 1;
    const z = workgroups[2] ?? 1;
    const maxWg = this.maxWorkgroups;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new Error(
        `${kernel.label}: dispatch of ${x}x${y}x${z} workgroups exceeds the adapter's limit of ` +
          `${maxWg} per dimension (the op must split its grid)`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return;
    let uOffset = 0;
    let uSize = 0;
    if (kernel.hasParams) {
      if (!params) throw new Error(`${kernel.label}: kernel expects a parameter block`);
      uSize = (params.byteLength + 15) & ~15;
      uOffset = this.pushUniform(params, uSize);
    }
    const bindGroup = this.bindGroups.forDispatch(kernel.label, kernel.layout, kernel.hasParams ? this.uniformGpu : null, uOffset, uSize, buffers);
    const pass = this.profiler ? this.openTimedPass(this.profiler, kernel.label) : this.openPass();
    // a pass keeps its pipeline between dispatches: runs of one kernel (SIMD-8 products) set it once
    if (kernel.pipeline !== this.passPipeline) {
      pass.setPipeline(kernel.pipeline);
      this.passPipeline = kernel.pipeline;
    }
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) this.closePass();
    this.pendingLabels.add(kernel.label);
    this.stats.dispatches++;
    if (++this.recorded >= this.dispatchesPerSubmit) this.flush();
  }

  /** Records a buffer-to-buffer copy in stream order. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.assertUsable('copy');
    if (bytes === 0) return;
    this.closePass();
    this.encoder ??= this.gpu.createCommandEncoder({ label: 'goe-stream' });
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.recorded++;
  }

  /** Writes host data into a buffer, ordered after everything recorded so far. */
  upload(dst: GPUBuffer, dstOffset: number, data: ArrayBufferView): void {
    this.assertUsable('upload');
    // queue.writeBuffer runs before an encoder that is not yet submitted: submit first, so a
    // recycled buffer still read by recorded work is not overwritten under it.
    if (this.encoder) this.flush();
    const bytes = data.byteLength;
    if (bytes % 4 === 0) {
      // Pass the view itself: Dawn rejects a bare SharedArrayBuffer (the data loader's batches
      // live in shared memory) but accepts a view over one.
      this.gpu.queue.writeBuffer(dst, dstOffset, data as unknown as GPUAllowSharedBufferSource);
    } else {
      const padded = new Uint8Array((bytes + 3) & ~3);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      this.gpu.queue.writeBuffer(dst, dstOffset, padded);
    }
    this.stats.uploads++;
  }

  /** Submits everything recorded so far. Cheap; never waits. */
  flush(): void {
    if (!this.encoder) return;
    this.closePass();
    const encoder = this.encoder;
    this.encoder = null;
    this.recorded = 0;
    const labels = [...this.pendingLabels];
    this.pendingLabels.clear();
    const dev = this.gpu;
    dev.pushErrorScope('out-of-memory');
    dev.pushErrorScope('validation');
    if (this.uniformUsed > 0) {
      dev.queue.writeBuffer(this.uniformGpu, 0, this.uniformCpu.buffer, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    this.profiler?.resolveInto(encoder);
    dev.queue.submit([encoder.finish()]);
    this.profiler?.submitted();
    this.stats.submits++;
    const context = labels.length > 0 ? ` (kernels in this submission: ${labels.join(', ')})` : '';
    this.watch(dev.popErrorScope(), `validation error${context}`);
    this.watch(dev.popErrorScope(), `out of GPU memory${context}`);
  }

  /** Destroys a buffer the engine made outside the pool, after submitting the work that names it
   * and dropping the cached bind groups that hold it. */
  destroyBuffer(buf: GPUBuffer): void {
    this.flush();
    this.bindGroups.forget(buf);
    buf.destroy();
  }

  /** Drops the cached bind groups that name a texture view (before its texture is let go). */
  forgetView(view: GPUTextureView): void {
    this.bindGroups.forget(view);
  }

  /**
   * Starts timing every dispatch on the GPU (timestamp queries; kernel-profile.ts says what a
   * profile measures and what it costs). Throws where the adapter has no 'timestamp-query'.
   */
  startKernelProfile(): void {
    this.assertUsable('startKernelProfile');
    this.flush();
    this.profiler = new KernelProfiler(this.gpu, (e) => this.errors.push(new GpuError(e.message)));
  }

  /** Ends the profile: GPU time per kernel label since startKernelProfile, the largest first. */
  async stopKernelProfile(): Promise<KernelTime[]> {
    const profiler = this.profiler;
    if (!profiler) throw new Error('stopKernelProfile: no kernel profile is running (call startKernelProfile first)');
    this.flush();
    this.profiler = null;
    const times = await profiler.report((p) => this.wait(this.raceLost(p)));
    await this.throwPendingErrors();
    return times;
  }

  /** Bind groups created, reused and cached (a test counts them per training step). */
  bindGroupStats(): BindGroupStats {
    return this.bindGroups.stats();
  }

  // ---------------------------------------------------------------- readback and sync

  /** Copies `bytes` from `src` to the host. The only place (with sync) that waits on the GPU. */
  async read(src: GPUBuffer, srcOffset: number, bytes: number): Promise<ArrayBuffer> {
    this.assertUsable('read');
    const aligned = (bytes + 3) & ~3;
    const staging = this.staging.acquire(aligned);
    this.closePass();
    this.encoder ??= this.gpu.createCommandEncoder({ label: 'goe-stream' });
    this.encoder.copyBufferToBuffer(src, srcOffset, staging, 0, aligned);
    this.flush();
    this.stats.readbacks++;
    try {
      await this.waitMapped(staging, aligned);
      const out = staging.getMappedRange(0, aligned).slice(0, bytes);
      staging.unmap();
      return out;
    } finally {
      this.staging.release(staging);
      await this.throwPendingErrors();
    }
  }

  /** Waits until the GPU has finished all submitted work, then throws any error it reported. */
  async sync(): Promise<void> {
    this.flush();
    if (!this.destroyed) await this.wait(this.raceLost(this.gpu.queue.onSubmittedWorkDone()));
    await this.throwPendingErrors();
  }

  /**
   * Awaits a promise that Dawn settles (GPU work done, a buffer mapped): every wait of the engine
   * goes through here, and benchmarks wrap their peers' waits in it to wait the same way.
   * With gpuWait 'nap' the host's Platform.waitFor keeps the main thread from spinning.
   */
  wait<T>(p: Promise<T>): Promise<T> {
    const platform = getPlatform();
    return this.gpuWait === 'nap' && platform.waitFor ? platform.waitFor(p) : p;
  }

  /** Tracks an asynchronous check (pipeline compilation, error scope); failures surface later. */
  watch(scope: Promise<GPUError | null>, what: string): void {
    this.checks.push(
      scope.then(
        (err) => {
          if (err) this.errors.push(new GpuError(`${what}: ${err.message}`));
        },
        (e: unknown) => {
          this.errors.push(new GpuError(`${what}: ${(e as Error).message}`));
        },
      ),
    );
  }

  /** Tracks a kernel module's compilation; its error is thrown first at the next sync point,
   * since the validation errors that follow from a broken pipeline only repeat it. */
  watchCompile(compiled: Promise<GpuError | null>): void {
    this.checks.push(
      compiled.then((err) => {
        if (err) this.errors.unshift(err);
      }),
    );
  }

  /** Drops an error that was already thrown to the caller by another path. */
  forgetError(err: GpuError): void {
    const i = this.errors.indexOf(err);
    if (i >= 0) this.errors.splice(i, 1);
  }

  /** Awaits outstanding checks and throws the first error the device reported. */
  async throwPendingErrors(): Promise<void> {
    while (this.checks.length > 0) await this.wait(Promise.all(this.checks.splice(0)));
    if (this.errors.length > 0) {
      const [first, ...rest] = this.errors.splice(0);
      if (rest.length > 0) first.message += `\n(+${rest.length} more GPU error(s))`;
      throw first;
    }
    if (this.lostReason) throw new GpuError(`GPU device lost (${this.lostReason})`);
  }

  get isLost(): boolean {
    return this.lostReason !== null;
  }

  /** Releases everything: pooled buffers, staging buffers and the device itself. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      // A device that is already broken still gets destroyed.
    }
    this.destroyed = true;
    this.pool.destroyAll();
    this.bindGroups.clear();
    this.staging.destroyAll();
    this.uniformGpu.destroy();
    this.gpu.destroy();
  }

  // ---------------------------------------------------------------- internals

  private assertUsable(what: string): void {
    if (this.destroyed) throw new Error(`${what}: the GPU device has been destroyed`);
    if (this.lostReason) throw new GpuError(`${what}: GPU device lost (${this.lostReason})`);
  }

  private openPass(): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    this.encoder ??= this.gpu.createCommandEncoder({ label: 'goe-stream' });
    this.pass = this.encoder.beginComputePass({ label: 'goe-compute' });
    return this.pass;
  }

  /** A pass of its own for one profiled dispatch, with its timestamps. */
  private openTimedPass(profiler: KernelProfiler, label: string): GPUComputePassEncoder {
    this.closePass();
    if (profiler.full) this.flush();
    this.encoder ??= this.gpu.createCommandEncoder({ label: 'goe-stream' });
    this.pass = this.encoder.beginComputePass({ label, timestampWrites: profiler.passTimestamps(label) });
    return this.pass;
  }

  private closePass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
      this.passPipeline = null;
    }
  }

  /** Copies a parameter block of `size` bytes (16-byte multiple) into the arena; its offset. */
  private pushUniform(params: ArrayBufferView, size: number): number {
    if (size > 65536) throw new Error(`parameter block of ${params.byteLength} bytes is too large`);
    if (this.uniformUsed + size > UNIFORM_ARENA_BYTES) this.flush();
    const offset = this.uniformUsed;
    // the blocks are Uint32Array or Float32Array: copied through a view of the same type, no
    // view object made per dispatch
    if (params instanceof Uint32Array) this.uniformU32.set(params, offset >> 2);
    else if (params instanceof Float32Array) this.uniformF32.set(params, offset >> 2);
    else this.uniformCpu.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength), offset);
    this.uniformUsed = offset + Math.ceil(size / this.uniformAlign) * this.uniformAlign;
    return offset;
  }

  private async waitMapped(buf: GPUBuffer, bytes: number): Promise<void> {
    await this.wait(this.raceLost(buf.mapAsync(GPUMapMode.READ, 0, bytes)));
  }

  /** Rejects with the loss reason instead of hanging when the device is lost meanwhile. */
  private raceLost<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.lostError) return reject(this.lostError);
      this.lostWaiters.add(reject);
      p.then(
        (v) => {
          this.lostWaiters.delete(reject);
          resolve(v);
        },
        (e: unknown) => {
          this.lostWaiters.delete(reject);
          reject(e);
        },
      );
    });
  }
}

function errorKind(err: GPUError): string {
  const name = err.constructor?.name ?? '';
  if (name.includes('OutOfMemory')) return 'out of GPU memory';
  if (name.includes('Validation')) return 'validation error';
  return 'GPU error';
}

function readEnv(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.[name];
  return v && v.length > 0 ? v : undefined;
}

function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  return isSoftwareInfo(adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean });
}

async function requestAdapter(choice: AdapterChoice): Promise<GPUAdapter> {
  const platform = getPlatform();
  let adapter: GPUAdapter | null = null;
  let failure = '';
  try {
    const gpu = platform.gpu();
    if (choice === 'software') {
      adapter = await gpu.requestAdapter({ forceFallbackAdapter: true });
      if (adapter && !isSoftwareAdapter(adapter)) {
        throw new NoAdapterError(
          `GOE_ADAPTER=software but the only adapter offered is a hardware one ` +
            `(${adapter.info.description}); unset GOE_ADAPTER to use it`,
        );
      }
    } else if (choice === 'auto' || choice === 'hardware') {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (adapter && choice === 'hardware' && isSoftwareAdapter(adapter)) {
        throw new NoAdapterError(
          `GOE_ADAPTER=hardware but no hardware GPU adapter was found (only the software ` +
            `adapter "${adapter.info.description}"). Install your GPU's Vulkan driver, or unset ` +
            `GOE_ADAPTER to run on the software adapter.`,
        );
      }
    } else {
      adapter = await requestNamedAdapter(choice);
    }
  } catch (e) {
    if (e instanceof NoAdapterError) throw e;
    failure = (e as Error).message;
    const available = adaptersInDawnMessage(failure);
    if (available.length > 0) throw new NoAdapterError(noMatchingAdapterMessage(choice, available));
  }
  if (!adapter) throw new NoAdapterError(noAdapterMessage(choice, failure));
  return adapter;
}

/** A named adapter: Dawn's `adapter=<substring>` flag filters by name. */
async function requestNamedAdapter(name: string): Promise<GPUAdapter | null> {
  const platform = getPlatform() as { gpuWithFlags?: (flags: string[]) => GPU };
  if (!platform.gpuWithFlags) {
    throw new NoAdapterError(`choosing an adapter by name ("${name}") is not supported on this platform`);
  }
  return platform.gpuWithFlags([`adapter=${name}`]).requestAdapter({ powerPreference: 'high-performance' });
}

function noAdapterMessage(choice: AdapterChoice, failure: string): string {
  return [
    `no WebGPU adapter available${choice !== 'auto' ? ` (GOE_ADAPTER=${choice})` : ''}` +
      (failure ? `: ${failure.split('\n')[0]}` : '.'),
    'goe-webgpu runs on Dawn over Vulkan (Linux), Metal (macOS) or D3D12 (Windows). On Linux:',
    '  - with a GPU: install its Vulkan driver (NVIDIA driver, or Mesa for AMD/Intel) and libvulkan1;',
    '  - without a GPU: install Mesa\'s lavapipe. Debian 12 needs it from bookworm-backports',
    '    (Debian 12\'s own Mesa 22 is too old for Dawn): add a deb822 source with',
    '    "Suites: bookworm-backports", then',
    '    apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1',
    '    (.ci/env.sh in this repository does exactly that).',
  ].join('\n');
}
