/**
 * Batch assembly: read the planned samples of one batch from their sources, transform them and
 * write them into a batch slot (shared memory). Runs the same way on the main thread (workers: 0)
 * and in the loader's worker threads, so results do not depend on the worker count.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { DataError } from './errors.ts';
import { decodeImageInto } from './images.ts';
import { Rng } from './rng.ts';
import { type Source, sampleSize, tokenLength } from './source.ts';
import { type CompiledTransform, drawAugment, writeSample } from './transforms.ts';

/** Everything a worker needs once: the sources, their compiled transforms, the slot buffers. */
export interface AssemblyPlan {
  /** sources[0]: inliers; sources[1]: outliers (optional). */
  sources: Source[];
  /** One per source; null for token (int32) sources, which are copied as they are. */
  transforms: (CompiledTransform | null)[];
  /** Values per output sample. */
  sampleOut: number;
  output: 'float32' | 'int32';
  /** Batch slots (SharedArrayBuffers): x has room for the largest batch, y one label per sample. */
  slots: { x: SharedArrayBuffer; y: SharedArrayBuffer }[];
  /** Id that left-pads token samples shorter than a row (ragged or narrower sources). */
  tokenPad?: number;
}

export interface Job {
  id: number;
  slot: number;
  /** Pairs (source id, sample index), inliers first: a batch, or a contiguous part of one. */
  entries: Int32Array;
  /** Position in the batch of the first entry (a batch may be split between workers). */
  start: number;
  /** Seeds of this batch's augmentation; each sample draws from its own stream (seed..., position). */
  seed: number[];
}

export interface Skip {
  file: string;
  index: number;
  reason: string;
}

export interface JobResult {
  id: number;
  slot: number;
  skipped: Skip[];
  error?: { message: string; file?: string };
}

/** Images decoded at once per thread: overlaps file reads and libvips decoding with the JavaScript resize. */
const IMAGE_CONCURRENCY = 3;

export class Assembler {
  private readonly plan: AssemblyPlan;
  private readonly fds = new Map<number, number>();
  private readonly scratch = new Map<number, Uint8Array>();
  private readonly xs: (Float32Array | Int32Array)[];
  private readonly ys: Int32Array[];

  constructor(plan: AssemblyPlan) {
    this.plan = plan;
    this.xs = plan.slots.map((s) => (plan.output === 'float32' ? new Float32Array(s.x) : new Int32Array(s.x)));
    this.ys = plan.slots.map((s) => new Int32Array(s.y));
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  async run(job: Job): Promise<JobResult> {
    const skipped: Skip[] = [];
    const unique = (): Skip[] => [...new Map(skipped.map((s) => [s.index, s])).values()].sort((a, b) => a.index - b.index);
    try {
      await this.fill(job, skipped);
      return { id: job.id, slot: job.slot, skipped: unique() };
    } catch (e) {
      return { id: job.id, slot: job.slot, skipped: unique(), error: { message: (e as Error).message, file: (e as DataError).file } };
    }
  }

  private async fill(job: Job, skipped: Skip[]): Promise<void> {
    const { sources, transforms, sampleOut } = this.plan;
    const n = job.entries.length / 2;
    // Views starting at this job's first sample: position i here is position start + i in the batch.
    const x = this.xs[job.slot]!.subarray(job.start * sampleOut);
    const y = this.ys[job.slot]!.subarray(job.start);
    // Each sample's augmentation comes from its own stream, so results depend neither on how a batch
    // is split between workers nor on decode timing.
    const aug: { top: number; left: number; flip: boolean }[] = [];
    for (let i = 0; i < n; i++) {
      const t = transforms[job.entries[2 * i]!];
      aug.push(t && (t.random || t.hflip) ? drawAugment(t, new Rng(...job.seed, job.start + i)) : { top: 0, left: 0, flip: false });
    }
    const pending: number[] = [];
    for (let i = 0; i < n; i++) {
      const sid = job.entries[2 * i]!;
      const idx = job.entries[2 * i + 1]!;
      const src = sources[sid]!;
      if (src.kind === 'images') {
        pending.push(i);
        continue;
      }
      y[i] = label(src, sid, idx);
      const t = transforms[sid] ?? null;
      if (src.kind === 'random-tokens' || (src.kind === 'array' && t === null)) {
        this.writeTokens(src, idx, x as Int32Array, i * sampleOut, [...job.seed, job.start + i]);
      } else if (src.kind === 'array') {
        const size = sampleSize(src);
        writeSample(t!, src.data as Uint8Array | Float32Array, idx * size, src.layout, x as Float32Array, i * sampleOut, aug[i]!.top, aug[i]!.left, aug[i]!.flip);
      } else {
        const sample = this.readNpy(sid, src, idx);
        writeSample(t!, sample, 0, src.layout, x as Float32Array, i * sampleOut, aug[i]!.top, aug[i]!.left, aug[i]!.flip);
      }
    }
    if (pending.length === 0) return;
    let next = 0;
    const failures: { i: number; e: unknown }[] = [];
    const worker = async (): Promise<void> => {
      let scratch: Uint8Array | undefined;
      for (;;) {
        const k = next++;
        if (k >= pending.length) return;
        const i = pending[k]!;
        const sid = job.entries[2 * i]!;
        const src = sources[sid]! as Extract<Source, { kind: 'images' }>;
        const [, h, w] = src.sampleShape as [number, number, number];
        scratch ??= new Uint8Array(h * w * 3);
        let idx = job.entries[2 * i + 1]!;
        let ok = false;
        for (let attempt = 0; !ok; attempt++) {
          try {
            await decodeImageInto(src.files[idx]!, src.decode, scratch, h, w);
            ok = true;
          } catch (e) {
            if (src.onError !== 'skip') {
              failures.push({ i, e });
              break;
            }
            skipped.push({ file: src.files[idx]!, index: idx, reason: (e as Error).message });
            if (attempt >= Math.min(16, src.length - 1)) {
              failures.push({ i, e: new DataError(`${attempt + 1} consecutive images failed to decode; giving up (last: ${(e as Error).message})`, src.name) });
              break;
            }
            idx = (idx + 1) % src.length;
          }
        }
        if (!ok) continue;
        y[i] = label(src, sid, idx);
        writeSample(transforms[sid]!, scratch, 0, 'HWC', x as Float32Array, i * sampleOut, aug[i]!.top, aug[i]!.left, aug[i]!.flip);
      }
    };
    await Promise.all(Array.from({ length: Math.min(IMAGE_CONCURRENCY, pending.length) }, worker));
    // Report the first failing sample of the batch, whatever order the decodes finished in.
    if (failures.length > 0) throw failures.reduce((a, b) => (b.i < a.i ? b : a)).e;
  }

  /** One token sample right-aligned in its row of sampleOut ids, left-padded with the plan's pad id. */
  private writeTokens(src: Extract<Source, { kind: 'array' | 'random-tokens' }>, idx: number, x: Int32Array, at: number, stream: number[]): void {
    const row = this.plan.sampleOut;
    const n = tokenLength(src, idx);
    if (n > row) throw new DataError(`token sample ${idx} has ${n} ids, more than the loader's ${row}`, src.name);
    x.fill(this.plan.tokenPad ?? 0, at, at + row - n);
    const to = at + row - n;
    if (src.kind === 'random-tokens') {
      // the batch position's own stream: fresh every epoch, the same on every run and worker split
      const rng = new Rng(...stream, src.seed, 0x70c);
      for (let k = 0; k < n; k++) x[to + k] = src.low + rng.int(src.high - src.low);
      return;
    }
    const from = src.offsets !== undefined ? src.offsets[idx]! : idx * n;
    x.set((src.data as Int32Array).subarray(from, from + n), to);
  }

  private readNpy(sid: number, src: Extract<Source, { kind: 'npy' }>, idx: number): Uint8Array | Float32Array {
    let fd = this.fds.get(sid);
    if (fd === undefined) {
      try {
        fd = openSync(src.path, 'r');
      } catch (e) {
        throw new DataError(`cannot open: ${(e as Error).message}`, src.path);
      }
      this.fds.set(sid, fd);
    }
    const size = sampleSize(src);
    const bytes = size * (src.dtype === 'uint8' ? 1 : 4);
    // One scratch buffer per source: each sample is transformed into the batch before the next is read.
    let buf = this.scratch.get(sid);
    if (buf === undefined) this.scratch.set(sid, (buf = new Uint8Array(bytes)));
    const pos = src.dataOffset + idx * bytes;
    let got = 0;
    while (got < bytes) {
      const r = readSync(fd, buf, got, bytes - got, pos + got);
      if (r === 0) throw new DataError(`truncated: sample ${idx} (bytes ${pos}..${pos + bytes}) is past the end of the file`, src.path);
      got += r;
    }
    if (src.dtype === 'uint8') return buf;
    if (!src.littleEndian) for (let i = 0; i < bytes; i += 4) buf.subarray(i, i + 4).reverse();
    return new Float32Array(buf.buffer, 0, size);
  }
}

function label(src: Source, sid: number, idx: number): number {
  if (sid !== 0 || src.labels === null) return -1;
  return src.labels[idx]!;
}
