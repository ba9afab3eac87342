/**
 * GPU buffers are recycled through size classes instead of being created per tensor: creating a
 * buffer costs a driver allocation, and JavaScript's garbage collector never sees GPU memory.
 *
 * Size classes: powers of two split in four steps (2^k, 1.25*2^k, 1.5*2^k, 1.75*2^k), so a buffer
 * wastes at most 25% and a training loop's shapes hit the same few classes every step.
 */
import { GpuError } from './errors.ts';

const MIN_BYTES = 256;

export function sizeClass(bytes: number): number {
  if (bytes <= MIN_BYTES) return MIN_BYTES;
  const pow = 2 ** Math.floor(Math.log2(bytes));
  if (pow === bytes) return bytes;
  const step = pow / 4;
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  /** Buffers handed out and not yet released. */
  live: number;
  /** Buffers waiting in the pool for reuse. */
  free: number;
  /** Bytes of all buffers the pool owns (live and free). */
  bytes: number;
  /** Buffers ever created (flat in a steady training loop). */
  created: number;
}

/** A pooled buffer, its size class and its creation order (free lists are sorted by it, see
 * `acquire`): one lookup per release instead of one per step of the sorted insertion. */
interface Pooled {
  buf: GPUBuffer;
  size: number;
  serial: number;
}

export class BufferPool {
  private readonly free = new Map<number, Pooled[]>();
  private readonly records = new WeakMap<GPUBuffer, Pooled>();
  private live = 0;
  private freeCount = 0;
  private bytes = 0;
  private created = 0;
  private readonly device: GPUDevice;
  private readonly onError: (e: GpuError) => void;
  private readonly flush: () => void;
  private readonly beforeDestroy: (b: GPUBuffer) => void;

  /** `beforeDestroy` runs for each buffer `trim` destroys (the device drops its cached bind groups). */
  constructor(device: GPUDevice, onError: (e: GpuError) => void, flush: () => void, beforeDestroy: (b: GPUBuffer) => void = () => {}) {
    this.device = device;
    this.onError = onError;
    this.flush = flush;
    this.beforeDestroy = beforeDestroy;
  }

  /**
   * A storage buffer of at least `bytes` bytes (contents undefined): the oldest free one of its
   * size class. Handing out buffers by age, not last-in-first-out, makes a step that acquires and
   * releases in a fixed order get the same buffers every time (LIFO permutes the free lists from
   * step to step), so the device's bind groups, keyed by buffer, are found again (bind-groups.ts).
   */
  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(Math.max(4, bytes));
    const list = this.free.get(size);
    let buf = list?.pop()?.buf;
    if (buf) {
      this.freeCount--;
    } else {
      if (size > this.device.limits.maxBufferSize) {
        throw new GpuError(
          `a buffer of ${bytes} bytes exceeds the adapter's maxBufferSize of ${this.device.limits.maxBufferSize}`,
        );
      }
      this.device.pushErrorScope('out-of-memory');
      buf = this.device.createBuffer({
        size,
        // UNIFORM too: matmul's simd8 kind binds 64 KiB windows of a packed operand as a uniform buffer
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      void this.device.popErrorScope().then((err) => {
        if (err) this.onError(new GpuError(`out of GPU memory allocating ${size} bytes: ${err.message}`));
      });
      this.records.set(buf, { buf, size, serial: this.created });
      this.bytes += size;
      this.created++;
    }
    this.live++;
    return buf;
  }

  /** Returns a buffer for reuse. Work already recorded that reads it stays valid: the stream
   * submits before any host write (see Device.upload), and kernels run in record order. */
  release(buf: GPUBuffer): void {
    const rec = this.records.get(buf);
    if (rec === undefined) throw new Error('BufferPool.release: buffer not from this pool');
    let list = this.free.get(rec.size);
    if (!list) this.free.set(rec.size, (list = []));
    // newest first, so pop() returns the oldest
    const serial = rec.serial;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].serial > serial) lo = mid + 1;
      else hi = mid;
    }
    if (lo === list.length) list.push(rec);
    else list.splice(lo, 0, rec);
    this.live--;
    this.freeCount++;
  }

  /** Destroys the free buffers (e.g. between experiments); live ones are untouched. */
  trim(): void {
    if (this.freeCount === 0) return;
    this.flush(); // recorded work may still name a free buffer: submit before destroying it
    for (const [size, list] of this.free) {
      for (const { buf } of list) {
        this.beforeDestroy(buf);
        buf.destroy();
      }
      this.bytes -= size * list.length;
    }
    this.free.clear();
    this.freeCount = 0;
  }

  destroyAll(): void {
    this.trim();
  }

  stats(): PoolStats {
    return { live: this.live, free: this.freeCount, bytes: this.bytes, created: this.created };
  }
}

/**
 * MAP_READ staging buffers, reused by size class. Reusing them (instead of a fresh MAP_READ
 * buffer per readback) also avoids the Dawn crash seen on the GPU machine after large readbacks
 * into fresh mapped buffers (see shared/gpu/README.md).
 */
export class StagingPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  private readonly all = new Set<GPUBuffer>();
  private readonly device: GPUDevice;

  constructor(device: GPUDevice) {
    this.device = device;
  }

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(Math.max(4, bytes));
    const buf = this.free.get(size)?.pop();
    if (buf) return buf;
    const created = this.device.createBuffer({
      label: 'staging-read',
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.sizes.set(created, size);
    this.all.add(created);
    return created;
  }

  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf)!;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
  }

  get count(): number {
    return this.all.size;
  }

  destroyAll(): void {
    for (const b of this.all) b.destroy();
    this.all.clear();
    this.free.clear();
  }
}
