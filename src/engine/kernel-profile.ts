/**
 * GPU time per kernel, from timestamp queries (the adapter's 'timestamp-query' feature).
 *
 * While a profile runs, the device gives every dispatch a compute pass of its own whose beginning
 * and end write a timestamp; at each submit the pairs are resolved into a buffer and read back
 * when the GPU is done, and the time between them is added to the kernel's label. A pass per
 * dispatch adds a barrier between dispatches that a shared pass may not have, so a profiled
 * run can be somewhat slower than an unprofiled one; the shares between kernels are what it is
 * for (which kernels a training step's GPU time goes to), and the host cost is not measured here.
 */

/** One kernel's share of a profile. */
export interface KernelTime {
  /** `file.wgsl:entry`, as Device.dispatch names kernels. */
  label: string;
  /** Dispatches timed. */
  count: number;
  /** GPU time summed over them, in milliseconds. */
  ms: number;
}

/** Timestamps a query set holds (WebGPU's maximum query count is 4096): two per dispatch. */
const QUERIES = 4096;

/** One submission's queries: which labels they time, and the buffer they are read back from. */
interface Batch {
  querySet: GPUQuerySet;
  labels: string[];
  resolve: GPUBuffer | null;
  readback: GPUBuffer | null;
}

export class KernelProfiler {
  private readonly gpu: GPUDevice;
  private batch: Batch | null = null;
  private readonly totals = new Map<string, { count: number; ns: number }>();
  private readonly pending: Promise<void>[] = [];
  private readonly onError: (e: Error) => void;

  constructor(gpu: GPUDevice, onError: (e: Error) => void) {
    if (!gpu.features.has('timestamp-query')) {
      throw new Error("kernel profile: this adapter has no 'timestamp-query' feature, so kernel times cannot be measured on it");
    }
    this.gpu = gpu;
    this.onError = onError;
  }

  /** Whether the current submission's query set is full (the device then submits first). */
  get full(): boolean {
    return this.batch !== null && this.batch.labels.length * 2 >= QUERIES;
  }

  /** The timestamp writes for the pass of the next dispatch, which runs `label`. */
  passTimestamps(label: string): GPUComputePassTimestampWrites {
    this.batch ??= { querySet: this.gpu.createQuerySet({ type: 'timestamp', count: QUERIES, label: 'kernel-profile' }), labels: [], resolve: null, readback: null };
    const b = this.batch;
    const i = b.labels.length * 2;
    b.labels.push(label);
    return { querySet: b.querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 };
  }

  /** Adds the resolve of this submission's queries to `encoder` (before it is finished). */
  resolveInto(encoder: GPUCommandEncoder): void {
    const b = this.batch;
    if (!b || b.labels.length === 0) return;
    const bytes = b.labels.length * 2 * 8;
    b.resolve = this.gpu.createBuffer({ label: 'kernel-profile-resolve', size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    b.readback = this.gpu.createBuffer({ label: 'kernel-profile-read', size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(b.querySet, 0, b.labels.length * 2, b.resolve, 0);
    encoder.copyBufferToBuffer(b.resolve, 0, b.readback, 0, bytes);
  }

  /** After the submit: reads the times back when the GPU gets there (awaited by `report`). */
  submitted(): void {
    const b = this.batch;
    this.batch = null;
    if (!b) return;
    if (!b.readback) {
      b.querySet.destroy();
      return;
    }
    const readback = b.readback;
    this.pending.push(
      readback.mapAsync(GPUMapMode.READ).then(
        () => {
          const t = new BigUint64Array(readback.getMappedRange().slice(0));
          b.labels.forEach((label, k) => {
            const ns = Number(t[2 * k + 1] - t[2 * k]);
            const sum = this.totals.get(label) ?? { count: 0, ns: 0 };
            sum.count++;
            // a pair the adapter could not order (a reset or wrap) reads as a huge or negative span
            if (ns > 0 && ns < 1e12) sum.ns += ns;
            this.totals.set(label, sum);
          });
          readback.unmap();
        },
        (e: unknown) => this.onError(new Error(`kernel profile: reading the timestamps failed: ${(e as Error).message}`)),
      ).finally(() => {
        readback.destroy();
        b.resolve?.destroy();
        b.querySet.destroy();
      }),
    );
  }

  /** Kernel times so far, the largest first (waits for the readbacks in flight). */
  async report(wait: <T>(p: Promise<T>) => Promise<T>): Promise<KernelTime[]> {
    while (this.pending.length > 0) await wait(Promise.all(this.pending.splice(0)));
    return [...this.totals].map(([label, s]) => ({ label, count: s.count, ms: s.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
  }
}
