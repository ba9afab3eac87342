/**
 * The divergence guard of the training loops: non-finite losses, gradients and training state are
 * found on the GPU every step without a readback, and a loop reads one 8-byte flag where it reads
 * anyway (log steps, before every checkpoint, at the end), so a checkpoint is never written from
 * a non-finite state and the run stops with a DivergenceError naming the step and the last good
 * checkpoint.
 *
 * Rules (kernels/finite.wgsl scans the bits, one dispatch per buffer):
 * - every step: the loss is non-finite, or a gradient element has |g| >= 2^64 (its square, which
 *   the gradient norm and Adam's second moment take, overflows f32); the flag keeps the first
 *   such step;
 * - at each check: any f32 tensor of the state (parameters, buffers such as BatchNorm's running
 *   statistics, optimizer moments) is non-finite. The state is scanned only there because a
 *   non-finite value in it stays non-finite (p - lr*d, (1-m)*r + m*x, b*v + (1-b)*g^2): the scan
 *   sees whatever went bad since the last check, and exactly what a checkpoint would hold.
 */
import { Tensor, fromData, keep } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { dispatch, kernel } from '../ops/launch.ts';
import { TableCache, type Segment } from './blocks.ts';

const tables = new TableCache(256);

const NONE = 0xffffffff;
/** Biased f32 exponents from which a value counts as divergence. */
const NON_FINITE = 255;
const SQUARE_OVERFLOWS = 191;

const SOURCES = ['loss', 'gradients', 'state'] as const;
type Source = (typeof SOURCES)[number];

/** A checkpoint file and the step it holds. */
export interface GoodCheckpoint {
  path: string;
  step: number;
}

/** Training diverged: the message names the phase, where, what, and the last good checkpoint. */
export class DivergenceError extends Error {
  readonly phase: string;
  /** First step seen non-finite (per-step checks), or the check's step when only the state was. */
  readonly step: number;
  /** The last step a check found finite (0: none yet). */
  readonly lastGoodStep: number;
  /** What was non-finite: 'loss', 'gradients', 'state', 'validation loss'. */
  readonly sources: string[];
  /** State tensors holding non-finite values (by name). */
  readonly tensors: string[];
  /** The newest checkpoint written from a checked state; null when none was. */
  readonly checkpoint: GoodCheckpoint | null;

  constructor(f: { phase: string; step: number; lastGoodStep: number; sources: string[]; tensors: string[]; checkpoint: GoodCheckpoint | null; message: string }) {
    super(f.message);
    this.name = 'DivergenceError';
    this.phase = f.phase;
    this.step = f.step;
    this.lastGoodStep = f.lastGoodStep;
    this.sources = f.sources;
    this.tensors = f.tensors;
    this.checkpoint = f.checkpoint;
  }
}

export interface DivergenceGuardOptions {
  /** The phase in messages ("pretrain", "biggan", "word-lm"). */
  phase: string;
  /** The checkpoint file this run writes (none: it writes none). */
  checkpoint?: string;
  /** The step the run resumed from `checkpoint` at (that file is the last good one until the next save). */
  resumedAt?: number;
  /** How a step reads in messages (default "step N"). */
  where?: (step: number) => string;
}

/** Named tensors of a module's state and an optimizer's state buffers, for `check`. */
export function trainingState(parts: Record<string, { stateDict(): Map<string, Tensor> } | { stateTensors: readonly Tensor[] }>): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const [prefix, part] of Object.entries(parts)) {
    if ('stateTensors' in part) part.stateTensors.forEach((t, i) => out.push([`${prefix}.state[${i}]`, t]));
    else for (const [k, t] of part.stateDict()) out.push([prefix === '' ? k : `${prefix}.${k}`, t]);
  }
  return out;
}

export class DivergenceGuard {
  readonly phase: string;
  private readonly flag: Tensor;
  private readonly where: (step: number) => string;
  private readonly checkpointPath: string | null;
  private lastCheck: number;
  /** The step of the last passing check (-1: none); nothing has run since when a check repeats it. */
  private passedAt = -1;
  private good: GoodCheckpoint | null;

  constructor(o: DivergenceGuardOptions) {
    this.phase = o.phase;
    this.where = o.where ?? ((s) => `step ${s}`);
    this.checkpointPath = o.checkpoint ?? null;
    this.lastCheck = o.resumedAt ?? 0;
    this.good = o.resumedAt !== undefined && o.checkpoint !== undefined ? { path: o.checkpoint, step: o.resumedAt } : null;
    this.flag = keep(fromData(Uint32Array.of(NONE, 0), [2], 'u32'));
  }

  /** The newest checkpoint written from a checked state. */
  get lastGood(): GoodCheckpoint | null {
    return this.good;
  }

  /** Per step, no readback: the loss (one or more scalars) and the gradients of `params`. */
  step(step: number, losses: Tensor | readonly Tensor[], params: Iterable<Tensor>): void {
    this.scan(step, Array.isArray(losses) ? losses : [losses as Tensor], NON_FINITE, 'loss');
    const grads: Tensor[] = [];
    for (const p of params) if (p.grad) grads.push(p.grad);
    this.scan(step, grads, SQUARE_OVERFLOWS, 'gradients');
  }

  /**
   * Scans `state` and reads the flag: throws a DivergenceError if anything since the last check
   * (per-step scans, this scan) was non-finite. Call it before writing a checkpoint.
   */
  async check(step: number, state: Iterable<readonly [string, Tensor]>): Promise<void> {
    if (step === this.passedAt) return;
    const named = [...state];
    this.scan(step, named.map(([, t]) => t), NON_FINITE, 'state');
    const f = (await this.flag.data()) as Uint32Array;
    if (f[1] === 0) {
      this.lastCheck = step;
      this.passedAt = step;
      return;
    }
    const sources = SOURCES.filter((_, i) => (f[1]! & (1 << i)) !== 0);
    throw await this.error(f[0]!, sources, named);
  }

  /** Records a checkpoint written at `step` after a passing check. */
  saved(path: string, step: number): void {
    this.good = { path, step };
  }

  /** Throws for a non-finite value the host saw (a validation loss). */
  async fail(step: number, what: string, state: Iterable<readonly [string, Tensor]> = []): Promise<never> {
    throw await this.error(step, [what], [...state]);
  }

  dispose(): void {
    this.flag.dispose();
  }

  private scan(step: number, tensors: Iterable<Tensor>, minExp: number, source: Source): void {
    const groups = new Map<GPUBuffer, Segment[]>();
    for (const t of tensors) {
      if (t.dtype !== 'f32' || t.size === 0) continue;
      if (!t.isContiguous) throw new OpError('DivergenceGuard', `a ${source} tensor of shape [${t.shape.join(', ')}] is not contiguous`);
      const buf = t.bufferFor('DivergenceGuard');
      let segs = groups.get(buf);
      if (!segs) groups.set(buf, (segs = []));
      segs.push({ p: t.offset, g: 0, s: 0, n: t.size });
    }
    const flag = this.flag.bufferFor('DivergenceGuard');
    const bit = 1 << SOURCES.indexOf(source);
    for (const [buf, segs] of groups) {
      const table = tables.get(segs);
      const gx = Math.min(table.rows, 32768);
      dispatch(kernel('finite', 'scan', {}), [table.buffer, buf, flag], Uint32Array.of(table.rows, step, minExp, bit), [gx, Math.ceil(table.rows / gx)]);
    }
  }

  /** The error, naming the state tensors that hold non-finite values (read back: this is the failure path). */
  private async error(step: number, sources: string[], state: readonly (readonly [string, Tensor])[]): Promise<DivergenceError> {
    const bad: string[] = [];
    for (const [name, t] of state) {
      if (t.dtype !== 'f32') continue;
      const d = (await t.data()) as Float32Array;
      if (d.some((v) => !Number.isFinite(v))) bad.push(name);
    }
    const perStep = sources.some((s) => s !== 'state');
    const when = perStep ? `at ${this.where(step)}` : `between ${this.where(this.lastCheck)} and ${this.where(step)}`;
    const names = sources.map((s) => (s === 'state' ? 'the model or optimizer state' : `the ${s}`));
    const what = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0];
    const shown = bad.slice(0, 4).join(', ') + (bad.length > 4 ? ` and ${bad.length - 4} more` : '');
    const held = bad.length > 0 ? ` Non-finite values are now in ${shown}.` : '';
    const prior = perStep && this.lastCheck > 0 ? ` (the check at ${this.where(this.lastCheck)} found everything finite)` : '';
    const ckpt = this.good
      ? ` Nothing was saved from this state: the last good checkpoint is ${this.good.path} (written at ${this.where(this.good.step)}). Lower the learning rate, or resume from that checkpoint (--resume).`
      : this.checkpointPath !== null
        ? ` Nothing was saved from this state, and no good checkpoint had been written yet (${this.checkpointPath} was not written). Lower the learning rate.`
        : ' This run writes no checkpoint. Lower the learning rate.';
    const message = `[${this.phase}] training diverged: ${what} became non-finite ${when}${prior}.${held}${ckpt}`;
    return new DivergenceError({ phase: this.phase, step, lastGoodStep: this.lastCheck, sources, tensors: bad, checkpoint: this.good, message });
  }
}
