/**
 * The kernel benchmark harness every kernel family shares (modelled on llm.c's dev/cuda):
 *
 *  - a family registers numbered variants (ours) and peers (TF.js, the previous version) for a
 *    list of problems;
 *  - every variant is validated against a float64 reference on the problem's own random data
 *    (outputs start poisoned, so an unwritten element fails) before it is timed; a variant that
 *    fails is reported and never timed;
 *  - timing: warm-up, then repetitions until a time budget, median and spread; GPU timestamps
 *    (a timestamped empty pass before and after each repetition, in queue order) when the device
 *    has 'timestamp-query', else submission to completion (onSubmittedWorkDone) per repetition;
 *    inputs rotate through several copies when one copy would sit in a cache;
 *  - every await of a variant's GPU work (ours and the peers', which await Dawn themselves) goes
 *    through `gpuWait` (Device.wait), so all of them wait the same way: nap or spin (GOE_GPU_WAIT);
 *  - output: the adapter line, then a table row per (problem, variant); `--json` prints the rows
 *    as JSON lines on stdout (the table then goes to stderr).
 */
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtime } from '../src/engine/index.ts';

/** One timed case: a name for the table, the work it does, and what the family needs. */
export interface Problem {
  /** e.g. "1024x1024x1024" or "wrn-g1-fwd". */
  name: string;
  /** Shape description printed in the table. */
  shape: string;
  flops: number;
  /** Minimum bytes that must move (each input read once, the output written once). */
  bytes: number;
}

/** A variant set up for one problem. */
export interface Instance {
  /** Enqueues one repetition on input copy `i` (never waits). */
  run(i: number): void;
  /** Submits what `run` recorded. */
  flush(): void;
  /** Waits for submitted work (for the wall-clock path). */
  done(): Promise<void>;
  /** The output of the last `run`, read back (validation only). */
  output(): Promise<Float32Array>;
  dispose(): void;
}

export interface Variant<P extends Problem> {
  /** "reg4x4", "tfjs-webgpu", ... */
  name: string;
  /** A peer (not ours): timed beside ours for the ratio. */
  peer?: boolean;
  /** Why this variant cannot run the problem (skipped, not failed), or null. */
  unsupported?(p: P): string | null;
  /** A remark for the row (e.g. which kernel an automatic choice picked). */
  note?(p: P): string | undefined;
  /** Allocates `copies` input copies (their data from `inputs(p, copy)`) and the output. */
  setup(p: P, copies: number): Promise<Instance>;
}

/** Checks an output against the float64 reference; returns the max relative error, or a
 * failure message with the first mismatches. */
export type Validator<P extends Problem> = (p: P, out: Float32Array) => { maxRel: number; failure: string | null };

export interface Row {
  problem: string;
  shape: string;
  variant: string;
  peer: boolean;
  status: 'ok' | 'failed' | 'skipped';
  ms?: number;
  msMin?: number;
  msMax?: number;
  reps?: number;
  gflops?: number;
  gbps?: number;
  maxRelErr?: number;
  timing?: 'timestamp' | 'wall';
  /** Process CPU time per repetition (all threads: a software adapter's workers included). On a
   * busy shared machine this is the stable measure of a software adapter's work. */
  cpuMs?: number;
  /** flops / CPU time: GFLOP per CPU-second. */
  gflopsCpu?: number;
  note?: string;
}

export interface HarnessOptions {
  json: boolean;
  /** Seconds of timed repetitions per row (after warm-up). */
  budgetSeconds: number;
  minReps: number;
  maxReps: number;
  /** Bytes above which inputs are not rotated (they do not fit a cache anyway). */
  cacheBytes: number;
  /** Force wall-clock timing even where timestamps exist. */
  wall: boolean;
}

/**
 * Awaits a variant's GPU work the way the engine awaits its own (Device.wait): napping on a
 * software adapter unless GOE_GPU_WAIT says otherwise. A peer such as TF.js awaits Dawn inside
 * `t.data()` or `onSubmittedWorkDone()`; wrapping those awaits here makes the peer wait like ours,
 * so that neither side has a main thread spinning against lavapipe's workers while the other naps.
 */
export function gpuWait<T>(p: Promise<T>): Promise<T> {
  return runtime().device.wait(p);
}

export const defaultOptions: HarnessOptions = { json: false, budgetSeconds: 1.5, minReps: 3, maxReps: 50, cacheBytes: 64 << 20, wall: false };

/** Flags shared by every bench script. */
export function parseArgs(argv: readonly string[]): { flags: Set<string>; values: Map<string, string> } {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--') && ['shapes', 'variants', 'budget', 'out'].includes(a.slice(2))) values.set(a.slice(2), argv[++i]);
    else flags.add(a.slice(2));
  }
  return { flags, values };
}

export class Harness {
  readonly opts: HarnessOptions;
  readonly rows: Row[] = [];
  private readonly log: (s: string) => void;

  constructor(opts: Partial<HarnessOptions> = {}) {
    this.opts = { ...defaultOptions, ...opts };
    this.log = this.opts.json ? (s) => process.stderr.write(s + '\n') : (s) => process.stdout.write(s + '\n');
  }

  /** Prints the adapter line (and, with --json, emits it as the first JSON line). */
  header(extra: Record<string, unknown> = {}): void {
    const dev = runtime().device;
    const line = dev.describe();
    this.log(line);
    this.log(`timing: ${this.timing()} | budget ${this.opts.budgetSeconds}s/row, ${this.opts.minReps}..${this.opts.maxReps} reps | gpu wait: ${dev.gpuWait}`);
    if (this.opts.json) process.stdout.write(JSON.stringify({ adapter: line, software: dev.isSoftware, timing: this.timing(), gpuWait: dev.gpuWait, ...extra }) + '\n');
    this.log(
      `${'problem'.padEnd(18)} ${'shape'.padEnd(30)} ${'variant'.padEnd(14)} ${'ms'.padStart(10)} ${'spread'.padStart(17)} ${'GFLOP/s'.padStart(9)} ${'GB/s'.padStart(7)} ${'GF/cpu-s'.padStart(8)} ${'max rel err'.padStart(11)}`,
    );
  }

  timing(): 'timestamp' | 'wall' {
    return !this.opts.wall && runtime().device.features.has('timestamp-query') ? 'timestamp' : 'wall';
  }

  /** Validates, then times, each variant on the problem; appends and prints the rows. */
  async run<P extends Problem>(p: P, variants: readonly Variant<P>[], validate: Validator<P>): Promise<Row[]> {
    const out: Row[] = [];
    for (const v of variants) {
      const base: Row = { problem: p.name, shape: p.shape, variant: v.name, peer: v.peer ?? false, status: 'ok' };
      const why = v.unsupported?.(p) ?? null;
      if (why) {
        out.push(this.emit({ ...base, status: 'skipped', note: why }));
        continue;
      }
      let inst: Instance | null = null;
      try {
        const copies = p.bytes * 2 <= this.opts.cacheBytes ? Math.min(4, Math.max(1, Math.floor(this.opts.cacheBytes / Math.max(p.bytes, 1)))) : 1;
        inst = await v.setup(p, copies);
        // validate first: one run on copy 0 (outputs are poisoned by the engine's test mode)
        inst.run(0);
        inst.flush();
        const got = await gpuWait(inst.output());
        const check = validate(p, got);
        if (check.failure) {
          out.push(this.emit({ ...base, status: 'failed', maxRelErr: check.maxRel, note: check.failure }));
          continue;
        }
        const { t, cpuMs } = await this.time(inst, copies);
        const ms = median(t);
        out.push(
          this.emit({
            ...base,
            ms,
            msMin: Math.min(...t),
            msMax: Math.max(...t),
            reps: t.length,
            gflops: p.flops / (ms * 1e6),
            gbps: p.bytes / (ms * 1e6),
            maxRelErr: check.maxRel,
            timing: this.timing(),
            cpuMs,
            gflopsCpu: p.flops / (cpuMs * 1e6),
            note: v.note?.(p),
          }),
        );
      } catch (e) {
        out.push(this.emit({ ...base, status: 'failed', note: `error: ${(e as Error).message.split('\n')[0]}` }));
      } finally {
        inst?.dispose();
      }
    }
    return out;
  }

  private emit(r: Row): Row {
    this.rows.push(r);
    const f = (x: number | undefined, d: number) => (x === undefined ? '' : x.toFixed(d));
    const spread = r.msMin !== undefined ? `${f(r.msMin, 3)}-${f(r.msMax, 3)}` : '';
    const status = r.status === 'ok' ? (r.note ? `  ${r.note}` : '') : `  ${r.status.toUpperCase()}: ${r.note ?? ''}`;
    this.log(
      `${r.problem.padEnd(18)} ${r.shape.padEnd(30)} ${r.variant.padEnd(14)} ${f(r.ms, 3).padStart(10)} ${spread.padStart(17)} ${f(r.gflops, 1).padStart(9)} ${f(r.gbps, 1).padStart(7)} ${f(r.gflopsCpu, 2).padStart(8)} ${(r.maxRelErr === undefined ? '' : r.maxRelErr.toExponential(1)).padStart(11)}${status}`,
    );
    if (this.opts.json) process.stdout.write(JSON.stringify(r) + '\n');
    return r;
  }

  /** Per-repetition times in ms after a warm-up, within the time budget. */
  private async time(inst: Instance, copies: number): Promise<{ t: number[]; cpuMs: number }> {
    // warm-up: pipelines are built, caches and pools filled
    const w0 = performance.now();
    inst.run(1 % copies);
    inst.flush();
    await gpuWait(inst.done());
    const est = performance.now() - w0;
    const reps = Math.max(this.opts.minReps, Math.min(this.opts.maxReps, Math.floor((this.opts.budgetSeconds * 1000) / Math.max(est, 0.01))));
    const c0 = process.cpuUsage();
    const t = this.timing() === 'timestamp' ? await this.timeStamped(inst, copies, reps) : await this.timeWall(inst, copies, reps);
    const c = process.cpuUsage(c0);
    return { t, cpuMs: (c.user + c.system) / 1000 / reps };
  }

  private async timeWall(inst: Instance, copies: number, reps: number): Promise<number[]> {
    const t: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      inst.run(r % copies);
      inst.flush();
      await gpuWait(inst.done());
      t.push(performance.now() - t0);
    }
    return t;
  }

  /**
   * GPU time per repetition: an empty compute pass with a beginning timestamp is submitted
   * before the repetition's work and one with an end timestamp after it; the queue runs them in
   * order, so the difference covers the repetition's passes (and the gaps between them).
   */
  private async timeStamped(inst: Instance, copies: number, reps: number): Promise<number[]> {
    const gpu = runtime().device.gpu;
    const qs = gpu.createQuerySet({ type: 'timestamp', count: 2 * reps });
    const resolve = gpu.createBuffer({ size: 16 * reps, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = gpu.createBuffer({ size: 16 * reps, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const mark = (index: number, begin: boolean) => {
      const enc = gpu.createCommandEncoder();
      const pass = enc.beginComputePass({ timestampWrites: begin ? { querySet: qs, beginningOfPassWriteIndex: index } : { querySet: qs, endOfPassWriteIndex: index } });
      pass.end();
      gpu.queue.submit([enc.finish()]);
    };
    try {
      for (let r = 0; r < reps; r++) {
        mark(2 * r, true);
        inst.run(r % copies);
        inst.flush();
        mark(2 * r + 1, false);
        // keep the queue from running far ahead of the host on long sweeps
        if (r % 8 === 7) await gpuWait(inst.done());
      }
      const enc = gpu.createCommandEncoder();
      enc.resolveQuerySet(qs, 0, 2 * reps, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * reps);
      gpu.queue.submit([enc.finish()]);
      await gpuWait(read.mapAsync(GPUMapMode.READ));
      const ns = new BigInt64Array(read.getMappedRange().slice(0));
      read.unmap();
      const t: number[] = [];
      for (let r = 0; r < reps; r++) t.push(Number(ns[2 * r + 1] - ns[2 * r]) / 1e6);
      if (t.some((x) => !(x > 0))) throw new Error(`timestamp queries returned non-increasing values (${t.join(', ')}); rerun with --wall`);
      return t;
    } finally {
      qs.destroy();
      resolve.destroy();
      read.destroy();
    }
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Compares `got` against reference values at `indices` (all when null) with tolerance
 * atol + rtol * |ref|; NaN anywhere in `got` (a poisoned, unwritten element) fails.
 */
export function compare(got: Float32Array, ref: (i: number) => number, indices: readonly number[] | null, atol: number, rtol: number, scale = 1): { maxRel: number; failure: string | null } {
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i])) return { maxRel: Infinity, failure: `element ${i} is ${got[i]} (unwritten or overflowed)` };
  }
  const bad: string[] = [];
  let maxRel = 0;
  const n = indices ? indices.length : got.length;
  for (let j = 0; j < n; j++) {
    const i = indices ? indices[j] : j;
    const want = ref(i);
    const err = Math.abs(got[i] - want);
    maxRel = Math.max(maxRel, err / Math.max(Math.abs(want), scale));
    if (err > atol + rtol * Math.abs(want) && bad.length < 5) bad.push(`[${i}] got ${got[i]}, want ${want}`);
  }
  return { maxRel, failure: bad.length ? `mismatches: ${bad.join('; ')}` : null };
}

/** What bench/torch_peer.py's time_problem prints per problem. */
export interface TorchPeerResult {
  name: string;
  ms: number;
  min: number;
  max: number;
  reps: number;
  device: string;
  torch: string;
}

/**
 * Runs a family's PyTorch peer snippet (Python that imports bench/torch_peer.py, builds each
 * problem's tensors and calls time_problem) through /usr/bin/python3 with bench/ on sys.path;
 * `payload(p)` is what the snippet gets for problem p (name and budget are added). Returns one
 * peer row per problem timed: variant 'torch-cpu' on CPU, else `cudaVariant`; note
 * "<device>, torch <version>, <note>". A failing Python run is reported on stderr and gives no rows.
 */
export function runTorchPeer<P extends Problem>(script: string, ps: readonly P[], payload: (p: P) => object, budget: number, cudaVariant: string, note: string): Row[] {
  const input = JSON.stringify(ps.map((p) => ({ name: p.name, ...payload(p), budget })));
  const benchDir = dirname(fileURLToPath(import.meta.url));
  const prelude = `import sys\nsys.path.insert(0, ${JSON.stringify(benchDir)})\n`;
  const r = spawnSync('/usr/bin/python3', ['-c', prelude + script], { input, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    process.stderr.write(`PyTorch peer failed: ${(r.stderr || r.error?.message || '').split('\n').slice(-3).join(' | ')}\n`);
    return [];
  }
  return r.stdout.split('\n').filter(Boolean).map((line) => {
    const o = JSON.parse(line) as TorchPeerResult;
    const p = ps.find((q) => q.name === o.name)!;
    return {
      problem: p.name, shape: p.shape, variant: o.device === 'cpu' ? 'torch-cpu' : cudaVariant, peer: true, status: 'ok',
      ms: o.ms, msMin: o.min, msMax: o.max, reps: o.reps, gflops: p.flops / (o.ms * 1e6), gbps: p.bytes / (o.ms * 1e6),
      timing: o.device === 'cpu' ? 'wall' : 'timestamp', note: `${o.device}, torch ${o.torch}, ${note}`,
    } satisfies Row;
  });
}
