/**
 * The batching pipeline: seeded shuffling and batching, per-sample transforms, inlier/outlier
 * mixing, and prefetching on worker threads into a ring of shared-memory batch slots, so the next
 * batch is ready when the training step asks for it and reaches the engine without extra copies.
 *
 *   const loader = new DataLoader({ source: cifarTrain, batchSize: 128, transform: { mean, std },
 *                                   outliers: { source: goeSamples, mode: 'paired', batchSize: 256 } });
 *   for await (const batch of loader.epoch(e)) { const x = upload(batch.x, batch.shape); ... }
 *   await loader.close();
 *
 * A batch's arrays are views of a slot that is reused: they are valid until the iterator is
 * advanced (upload or copy them before asking for the next batch).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Assembler, type AssemblyPlan, type Job, type JobResult, type Skip } from './assemble.ts';
import { DataError } from './errors.ts';
import { permutation, Rng } from './rng.ts';
import { type NumericArray, toShared } from './shared.ts';
import { type Source, tokenLength } from './source.ts';
import { compileTransform, type CompiledTransform, type ImageTransform } from './transforms.ts';

export interface OutlierOptions {
  source: Source;
  /**
   * 'mixed': outliers are pooled with the inliers and shuffled together, so each batch holds a random
   *   number of each (the GOE notebooks; pytorch-ood style, labels -1). An epoch covers both sets once.
   * 'paired': every batch holds `batchSize` inliers followed by `outliers.batchSize` outliers (the OE
   *   repository). An epoch covers the inliers once; outliers are drawn from their own shuffled stream,
   *   which carries on across epochs.
   */
  mode: 'mixed' | 'paired';
  /** Outliers per batch in 'paired' mode (default: the inlier batch size). */
  batchSize?: number;
  /** Transform for outliers (default: the inlier transform). */
  transform?: ImageTransform | null;
}

export interface LoaderOptions {
  /** The inliers (or the only dataset, e.g. for evaluation). */
  source: Source;
  batchSize: number;
  /** Shuffle every epoch (default true). */
  shuffle?: boolean;
  /** Seed of shuffling and augmentation (default 0). */
  seed?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Image transform (default: scale uint8 to [0, 1], nothing else). Ignored for token sources. */
  transform?: ImageTransform | null;
  outliers?: OutlierOptions;
  /** Worker threads (default: available cores - 1, at most 8; 0 assembles on the main thread). */
  workers?: number;
  /** Batches prepared ahead of the one being consumed (default 2). Each batch is split between all workers. */
  prefetch?: number;
  /** Called with files newly skipped in a batch (image sources with onError 'skip'), each file once. Default: a process warning. */
  onSkip?: (skipped: Skip[]) => void;
}

/** One batch. Inliers come first, then outliers; `x` and `y` cover both, the two views below split them. */
export interface Batch<X extends Float32Array | Int32Array = Float32Array | Int32Array> {
  epoch: number;
  index: number;
  /** All samples, [n, ...sampleShape] (float32 NCHW images or int32 token ids). */
  x: X;
  shape: number[];
  /** Labels: class indices for inliers, -1 for outliers and unlabelled samples. */
  y: Int32Array;
  nIn: number;
  nOut: number;
  /** The inlier part (views, no copies). */
  inliers: { x: X; y: Int32Array; shape: number[] };
  /** The outlier part (views, no copies). */
  outliers: { x: X; shape: number[] };
  /** Files replaced in this batch because they failed to decode (onError: 'skip'). */
  skipped: Skip[];
}

interface Executor {
  run(job: Job): Promise<JobResult>;
  close(): Promise<void>;
}

class InlineExecutor implements Executor {
  private readonly asm: Assembler;
  constructor(plan: AssemblyPlan) {
    this.asm = new Assembler(plan);
  }
  run(job: Job): Promise<JobResult> {
    // Yield first so the caller's step can proceed while this batch is assembled.
    return new Promise((resolve) => setImmediate(() => void this.asm.run(job).then(resolve)));
  }
  async close(): Promise<void> {
    this.asm.close();
  }
}

/** worker.ts beside this file in the checkout, worker.js beside the built one (dist/, npm run build). */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

class WorkerPool implements Executor {
  private readonly workers: Worker[] = [];
  private readonly busy: number[] = [];
  private readonly queue: { job: Job; resolve: (r: JobResult) => void; reject: (e: Error) => void }[] = [];
  private readonly waiting = new Map<number, { w: number; resolve: (r: JobResult) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  constructor(plan: AssemblyPlan, count: number) {
    for (let i = 0; i < count; i++) {
      const w = new Worker(WORKER_URL);
      w.on('message', (r: JobResult) => this.done(i, r));
      w.on('error', (e: Error) => this.fail(new DataError(`data loader worker failed: ${e.message}`, undefined, { cause: e })));
      w.on('exit', (code) => {
        if (code !== 0 && this.failure === undefined) this.fail(new DataError(`data loader worker exited with code ${code}`));
      });
      w.postMessage({ type: 'init', plan });
      w.unref();
      this.workers.push(w);
      this.busy.push(0);
    }
  }

  run(job: Job): Promise<JobResult> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let best = 0;
      for (let i = 1; i < this.workers.length; i++) if (this.busy[i]! < this.busy[best]!) best = i;
      if (this.busy[best]! >= 1) return; // one job per worker at a time: the rest wait in order
      const { job, resolve, reject } = this.queue.shift()!;
      this.busy[best]!++;
      this.workers[best]!.ref(); // keep the process alive while a batch is being made
      this.waiting.set(job.id, { w: best, resolve, reject });
      this.workers[best]!.postMessage({ type: 'job', job });
    }
  }

  private done(w: number, r: JobResult): void {
    const p = this.waiting.get(r.id);
    this.waiting.delete(r.id);
    this.busy[w]!--;
    if (this.busy[w] === 0) this.workers[w]!.unref();
    p?.resolve(r);
    this.dispatch();
  }

  private fail(e: Error): void {
    this.failure = e;
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
    for (const q of this.queue.splice(0)) q.reject(e);
  }

  async close(): Promise<void> {
    this.failure ??= new DataError('data loader is closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function defaultWorkers(): number {
  return Math.max(0, Math.min(8, availableParallelism() - 1));
}

function shareSource(s: Source): Source {
  if (s.kind === 'array') {
    const offsets = s.offsets === undefined ? {} : { offsets: toShared(s.offsets) };
    return { ...s, data: toShared(s.data as NumericArray), labels: s.labels === null ? null : toShared(s.labels), ...offsets };
  }
  if (s.labels !== null) return { ...s, labels: toShared(s.labels) };
  return s;
}

/** The batching pipeline. One epoch iterator at a time; call close() when done (or use `await using`). */
export class DataLoader {
  readonly batchSize: number;
  readonly outlierBatchSize: number;
  readonly mode: 'none' | 'mixed' | 'paired';
  /** Output shape of one sample. */
  readonly sampleShape: number[];
  readonly output: 'float32' | 'int32';
  /** Batches per epoch. */
  readonly numBatches: number;
  /** Every file skipped so far (image sources with onError 'skip'), each once. */
  readonly skipped: Skip[] = [];
  private readonly skippedFiles = new Set<string>();

  private readonly opts: LoaderOptions;
  /** Token batches are cut to their longest sequence (a ragged source is in the loader). */
  private readonly ragged: boolean;
  private readonly plan: AssemblyPlan;
  private readonly executor: Executor;
  private readonly prefetch: number;
  private readonly workers: number;
  private readonly nIn: number;
  private readonly nOut: number;
  private readonly sampleOut: number;
  private readonly xViews: (Float32Array | Int32Array)[];
  private readonly yViews: Int32Array[];
  private readonly freeSlots: number[];
  private active = false;
  private closed = false;
  private jobId = 0;
  private outlierPerms = new Map<number, Int32Array>();

  constructor(opts: LoaderOptions) {
    this.opts = opts;
    const src = opts.source;
    if (!(opts.batchSize >= 1) || !Number.isInteger(opts.batchSize)) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    if (src.length === 0) throw new DataError('dataset is empty', src.name);
    this.batchSize = opts.batchSize;
    const out = opts.outliers;
    this.mode = out === undefined ? 'none' : out.mode;
    this.outlierBatchSize = out === undefined ? 0 : out.mode === 'paired' ? (out.batchSize ?? opts.batchSize) : 0;
    if (out !== undefined && out.source.length === 0) throw new DataError('outlier dataset is empty', out.source.name);
    this.nIn = src.length;
    this.nOut = out?.source.length ?? 0;

    const sources = [shareSource(src)];
    if (out) sources.push(shareSource(out.source));
    const isTokens = (s: Source): boolean => (s.kind === 'array' && s.dtype === 'int32') || s.kind === 'random-tokens';
    if (sources.some(isTokens) && !sources.every(isTokens)) throw new DataError('cannot mix token and image sources in one loader');
    this.output = isTokens(src) ? 'int32' : 'float32';
    const transforms: (CompiledTransform | null)[] = sources.map((s, i) => {
      if (isTokens(s)) return null;
      if (s.sampleShape.length !== 3) throw new DataError(`image samples must be [C, H, W], got [${s.sampleShape.join(', ')}]`, s.name);
      const t = i === 1 && out?.transform !== undefined ? out.transform : opts.transform;
      return compileTransform(t, s.sampleShape, s.dtype as 'uint8' | 'float32');
    });
    const shapes = sources.map((s, i) => {
      const t = transforms[i];
      return t ? [t.channels, t.outH, t.outW] : [...s.sampleShape];
    });
    // ragged token sources: rows as wide as the longest sequence, each batch cut to its own longest
    this.ragged = sources.some((s) => s.kind === 'array' && s.offsets !== undefined);
    if (this.ragged) {
      const width = Math.max(1, ...shapes.map((sh) => sh[0]!));
      shapes.forEach((sh) => (sh[0] = width));
    }
    if (shapes.length === 2 && shapes[0]!.join() !== shapes[1]!.join()) {
      throw new DataError(`inlier samples are [${shapes[0]!.join(', ')}] but outlier samples are [${shapes[1]!.join(', ')}] after transforms (${src.name} vs ${out!.source.name})`);
    }
    this.sampleShape = shapes[0]!;
    this.sampleOut = this.sampleShape.reduce((a, b) => a * b, 1);

    const pool = this.mode === 'mixed' ? this.nIn + this.nOut : this.nIn;
    this.numBatches = opts.dropLast ? Math.floor(pool / this.batchSize) : Math.ceil(pool / this.batchSize);
    if (this.numBatches === 0) throw new DataError(`dataset has ${pool} samples, fewer than one batch of ${this.batchSize} with dropLast`, src.name);

    const workers = opts.workers ?? defaultWorkers();
    this.prefetch = Math.max(1, opts.prefetch ?? 2);
    this.workers = workers;
    const maxBatch = this.batchSize + this.outlierBatchSize;
    const slots = Array.from({ length: this.prefetch + 1 }, () => ({
      x: new SharedArrayBuffer(maxBatch * this.sampleOut * 4),
      y: new SharedArrayBuffer(maxBatch * 4),
    }));
    this.xViews = slots.map((s) => (this.output === 'float32' ? new Float32Array(s.x) : new Int32Array(s.x)));
    this.yViews = slots.map((s) => new Int32Array(s.y));
    this.freeSlots = slots.map((_, i) => i).reverse();
    const pad = sources.map((s) => (s.kind === 'array' ? s.pad : undefined)).find((p) => p !== undefined);
    this.plan = { sources, transforms, sampleOut: this.sampleOut, output: this.output, slots, ...(pad !== undefined ? { tokenPad: pad } : {}) };
    this.executor = workers > 0 ? new WorkerPool(this.plan, workers) : new InlineExecutor(this.plan);
  }

  private seed(): number {
    return this.opts.seed ?? 0;
  }

  private outlierPerm(pass: number): Int32Array {
    let p = this.outlierPerms.get(pass);
    if (p === undefined) {
      p = this.opts.shuffle === false ? Int32Array.from({ length: this.nOut }, (_, i) => i) : permutation(this.nOut, new Rng(this.seed(), pass, 0x0b7));
      if (this.outlierPerms.size >= 4) this.outlierPerms.delete(this.outlierPerms.keys().next().value!);
      this.outlierPerms.set(pass, p);
    }
    return p;
  }

  /** The (source, index) pairs of batch `b` of epoch `epoch`: inliers first. */
  private entries(epoch: number, b: number, order: Int32Array): Int32Array {
    const B = this.batchSize;
    if (this.mode === 'mixed') {
      const chunk = order.subarray(b * B, Math.min(order.length, (b + 1) * B));
      const ins: number[] = [];
      const outs: number[] = [];
      for (const k of chunk) (k < this.nIn ? ins : outs).push(k);
      const e = new Int32Array(chunk.length * 2);
      let j = 0;
      for (const k of ins) ((e[j++] = 0), (e[j++] = k));
      for (const k of outs) ((e[j++] = 1), (e[j++] = k - this.nIn));
      return e;
    }
    const chunk = order.subarray(b * B, Math.min(order.length, (b + 1) * B));
    const nOut = this.outlierBatchSize;
    const e = new Int32Array((chunk.length + nOut) * 2);
    let j = 0;
    for (const k of chunk) ((e[j++] = 0), (e[j++] = k));
    if (nOut > 0) {
      // position of this batch's first outlier in the endless outlier stream
      let pos = (epoch * this.numBatches + b) * nOut;
      for (let i = 0; i < nOut; i++, pos++) {
        const pass = Math.floor(pos / this.nOut);
        e[j++] = 1;
        e[j++] = this.outlierPerm(pass)[pos - pass * this.nOut]!;
      }
    }
    return e;
  }

  /** Iterate over the batches of one epoch (epoch numbers seed the shuffle: use 0, 1, 2, ...). */
  async *epoch(epoch = 0): AsyncGenerator<Batch, void, undefined> {
    if (this.closed) throw new DataError('data loader is closed');
    if (this.active) throw new DataError('only one epoch iterator may be active at a time');
    this.active = true;
    const pool = this.mode === 'mixed' ? this.nIn + this.nOut : this.nIn;
    const order = this.opts.shuffle === false ? Int32Array.from({ length: pool }, (_, i) => i) : permutation(pool, new Rng(this.seed(), epoch, 0x5f1e));
    const inflight = new Map<number, { slot: number; n: number; nIn: number; width: number; promise: Promise<JobResult> }>();
    let next = 0;
    const launch = (): void => {
      while (next < this.numBatches && inflight.size < this.prefetch && this.freeSlots.length > 0) {
        const slot = this.freeSlots.pop()!;
        const entries = this.entries(epoch, next, order);
        const n = entries.length / 2;
        const seed = [this.seed(), epoch, next, 0xa06];
        // Split the batch between the workers (at least 8 samples a part), so one batch uses every core.
        const parts = Math.max(1, Math.min(this.workers, Math.floor(n / 8)));
        const jobs: Promise<JobResult>[] = [];
        for (let p = 0; p < parts; p++) {
          const start = Math.floor((p * n) / parts);
          const end = Math.floor(((p + 1) * n) / parts);
          jobs.push(this.executor.run({ id: this.jobId++, slot, entries: entries.slice(2 * start, 2 * end), start, seed }));
        }
        let nIn = 0;
        while (nIn < n && entries[2 * nIn] === 0) nIn++;
        inflight.set(next, { slot, n, nIn, width: this.batchWidth(entries), promise: Promise.all(jobs).then(mergeResults) });
        next++;
      }
    };
    let held = -1;
    try {
      for (let b = 0; b < this.numBatches; b++) {
        // The consumer asked for the next batch: it is done with the previous one.
        if (held >= 0) this.freeSlots.push(held);
        held = -1;
        launch();
        const f = inflight.get(b)!;
        const r = await f.promise;
        inflight.delete(b);
        held = f.slot;
        launch();
        if (r.error) throw DataError.remote(r.error.message, r.error.file);
        const fresh = r.skipped.filter((s) => !this.skippedFiles.has(s.file));
        if (fresh.length > 0) {
          for (const s of fresh) this.skippedFiles.add(s.file);
          this.skipped.push(...fresh);
          (this.opts.onSkip ?? warnSkipped)(fresh);
        }
        yield this.makeBatch(epoch, b, f.slot, f.n, f.nIn, r.skipped, f.width);
      }
    } finally {
      // Wait for batches still being made (their slots are in use), then recycle every slot.
      for (const f of inflight.values()) {
        await f.promise.catch(() => undefined);
        this.freeSlots.push(f.slot);
      }
      if (held >= 0) this.freeSlots.push(held);
      this.active = false;
    }
  }

  /** Ids per row of a batch: its longest sequence (at least 1) when ragged, else the full width. */
  private batchWidth(entries: Int32Array): number {
    if (!this.ragged) return this.sampleOut;
    let width = 1;
    for (let i = 0; i < entries.length; i += 2) width = Math.max(width, tokenLength(this.plan.sources[entries[i]!]!, entries[i + 1]!));
    return width;
  }

  private makeBatch(epoch: number, index: number, slot: number, n: number, nIn: number, skipped: Skip[], width: number): Batch {
    const full = this.sampleOut;
    const size = width;
    // rows are right-aligned (left padding): keep the last `width` ids of each, packed in place
    if (width < full) for (let i = 0; i < n; i++) this.xViews[slot]!.copyWithin(i * width, i * full + full - width, (i + 1) * full);
    const sampleShape = width < full ? [width] : this.sampleShape;
    const x = this.xViews[slot]!.subarray(0, n * size);
    const y = this.yViews[slot]!.subarray(0, n);
    const nOut = n - nIn;
    return {
      epoch,
      index,
      x,
      shape: [n, ...sampleShape],
      y,
      nIn,
      nOut,
      inliers: { x: x.subarray(0, nIn * size), y: y.subarray(0, nIn), shape: [nIn, ...sampleShape] },
      outliers: { x: x.subarray(nIn * size), shape: [nOut, ...sampleShape] },
      skipped,
    };
  }

  /** Stop the worker threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.executor.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function mergeResults(rs: JobResult[]): JobResult {
  return { id: rs[0]!.id, slot: rs[0]!.slot, skipped: rs.flatMap((r) => r.skipped), error: rs.find((r) => r.error)?.error };
}

function warnSkipped(skipped: Skip[]): void {
  for (const s of skipped) process.emitWarning(`skipped an image that failed to decode: ${s.reason}`, { code: 'GOE_DATA_SKIPPED_IMAGE' });
}
