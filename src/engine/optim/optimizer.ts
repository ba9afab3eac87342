/**
 * The optimizer base: parameter groups, per-parameter step counts and state, and the fused
 * multi-tensor dispatch (kernels/optimizers.wgsl).
 *
 * Dispatch plan: parameters are grouped into "units" of (parameter group, parameter buffer). nn
 * Parameters share a few arena buffers (nn/parameter.ts), so a model's parameters form one unit
 * per arena chunk; plain tensors passed as parameters form one unit each. Each unit owns its
 * state buffers (momentum, Adam moments) laid out compactly. A step dispatches once per unit and
 * gradient buffer and step count: for a model built from nn modules, one dispatch per arena chunk
 * (usually one in all). Parameters whose `grad` is null are skipped, as PyTorch skips them (their
 * step count does not advance).
 *
 * Hyper-parameters travel in the uniform block, so changing `lr` (a schedule) or any other value
 * between steps never builds a new pipeline.
 */
import { Tensor, keep } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { runtime } from '../runtime.ts';
import { zeros, fillRange } from '../ops/creation.ts';
import { TableCache, type Segment, type OptimParams, dispatchRows } from './blocks.ts';
import type { KernelSpec } from '../kernels.ts';

/** Hyper-parameters of a group; `params` are the tensors it updates. */
export interface ParamGroup<H> {
  params: Tensor[];
  /** The group's hyper-parameters (mutable: schedules set `lr`). */
  options: H & { lr: number };
  /** The learning rate the group started with (schedules compute from it). */
  initialLr: number;
}

export type ParamsArg<H> = Iterable<Tensor> | readonly ({ params: Iterable<Tensor> } & Partial<H>)[];

interface Unit {
  group: number;
  buffer: GPUBuffer;
  /** parameter indices (into `allParams`) in this unit, with their state offsets */
  params: number[];
  stateOffset: Map<number, number>;
  stateSize: number;
  state: Tensor[] | null;
}

/** What a concrete optimizer says about one dispatch. */
export interface StepKernel {
  entry: string;
  spec: KernelSpec;
  params: Omit<OptimParams, 'rows'>;
}

/** Serializable optimizer state: per-parameter tensors by PyTorch's names, plus JSON. */
export interface OptimizerState {
  /** `state.<paramIndex>.<name>` -> values (shape of the parameter) */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** hyper-parameters per group, step counts per parameter, the optimizer's kind */
  meta: { kind: string; groups: Record<string, unknown>[]; steps: number[] };
}

export abstract class Optimizer<H extends { lr: number }> {
  readonly paramGroups: ParamGroup<H>[];
  /** Steps taken per parameter (PyTorch's state[p]['step']). */
  protected readonly steps: number[];
  private readonly allParams: Tensor[];
  private readonly units: Unit[] = [];
  private readonly tables = new TableCache();
  private disposed = false;
  readonly kind: string;

  protected constructor(kind: string, params: ParamsArg<H>, defaults: H) {
    this.kind = kind;
    const groups = normalizeGroups(kind, params, defaults);
    this.paramGroups = groups;
    this.allParams = [];
    const seen = new Set<Tensor>();
    groups.forEach((g, gi) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new OpError(kind, `parameter ${describe(p)} appears more than once`);
        seen.add(p);
        if (p.dtype !== 'f32') throw new OpError(kind, `parameter ${describe(p)} is ${p.dtype}, expected f32`);
        if (!p.isContiguous) throw new OpError(kind, `parameter ${describe(p)} is not contiguous`);
        const buffer = p.bufferFor(kind);
        let unit = this.units.find((u) => u.group === gi && u.buffer === buffer);
        if (!unit) {
          unit = { group: gi, buffer, params: [], stateOffset: new Map(), stateSize: 0, state: null };
          this.units.push(unit);
        }
        const idx = this.allParams.length;
        this.allParams.push(p);
        unit.params.push(idx);
        unit.stateOffset.set(idx, unit.stateSize);
        unit.stateSize += p.size;
      }
    });
    this.steps = new Array<number>(this.allParams.length).fill(0);
  }

  /** Allocates every unit's state now (zeros) rather than inside the first step, so the first
   * step's temporaries and the long-lived state do not interleave in the buffer pool. Called by
   * the concrete optimizers' constructors. */
  protected allocateState(): void {
    for (const u of this.units) this.unitState(u);
  }

  /** Number of state buffers per parameter for this group (momentum: 1, Adam: 2 or 3). */
  protected abstract stateCount(group: ParamGroup<H>): number;
  /** PyTorch's names of the state buffers, in kernel binding order. */
  protected abstract stateNames(group: ParamGroup<H>): string[];
  /** The kernel and uniform values for parameters of `group` at step `step` (1-based, the step
   * being taken). */
  protected abstract stepKernel(group: ParamGroup<H>, step: number): StepKernel;

  get params(): readonly Tensor[] {
    return this.allParams;
  }

  /** The state buffers (momentum, Adam moments), compact per unit: what divergence checks scan. */
  get stateTensors(): readonly Tensor[] {
    return this.units.flatMap((u) => u.state ?? []);
  }

  /** Updates every parameter that has a gradient (no readback, a few dispatches). */
  step(): void {
    if (this.disposed) throw new OpError(this.kind, 'step() after dispose()');
    for (const unit of this.units) {
      const group = this.paramGroups[unit.group];
      // Sub-batches by gradient buffer and step count (all alike in a normal loop).
      const batches = new Map<string, { grad: GPUBuffer; step: number; segs: Segment[]; idx: number[] }>();
      const gradIds = new Map<GPUBuffer, number>();
      for (const i of unit.params) {
        const p = this.allParams[i];
        const g = p.grad;
        if (!g) continue;
        if (!g.isContiguous) throw new OpError(this.kind, `the gradient of ${describe(p)} is not contiguous`);
        if (g.size !== p.size) throw new OpError(this.kind, `gradient of shape [${g.shape.join(', ')}] for parameter ${describe(p)}`);
        const gb = g.bufferFor(this.kind);
        if (!gradIds.has(gb)) gradIds.set(gb, gradIds.size);
        const key = `${gradIds.get(gb)}:${this.steps[i]}`;
        let b = batches.get(key);
        if (!b) batches.set(key, (b = { grad: gb, step: this.steps[i], segs: [], idx: [] }));
        b.segs.push({ p: p.offset, g: g.offset, s: unit.stateOffset.get(i)!, n: p.size });
        b.idx.push(i);
      }
      if (batches.size === 0) continue;
      const state = this.unitState(unit);
      for (const b of batches.values()) {
        const table = this.tables.get(b.segs);
        const k = this.stepKernel(group, b.step + 1);
        const buffers = [table.buffer, unit.buffer, b.grad, ...state.map((s) => s.bufferFor(this.kind))];
        dispatchRows(k.entry, k.spec, buffers, { ...k.params, rows: table.rows });
        for (const i of b.idx) this.steps[i]++;
      }
    }
  }

  /** Sets every gradient to null (default, PyTorch's set_to_none) or to zero. */
  zeroGrad(setToNone = true): void {
    zeroGradOf(this.allParams, setToNone);
  }

  private unitState(unit: Unit): Tensor[] {
    const n = this.stateCount(this.paramGroups[unit.group]);
    if (!unit.state || unit.state.length !== n) {
      unit.state?.forEach((t) => t.dispose());
      unit.state = [];
      for (let k = 0; k < n; k++) unit.state.push(keep(zeros([Math.max(unit.stateSize, 1)])));
    }
    return unit.state;
  }

  /** The state as host arrays, by PyTorch's names (waits for the GPU). */
  async stateDict(): Promise<OptimizerState> {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const unit of this.units) {
      if (!unit.state) continue;
      const names = this.stateNames(this.paramGroups[unit.group]);
      for (let k = 0; k < unit.state.length; k++) {
        const all = (await unit.state[k].data()) as Float32Array;
        for (const i of unit.params) {
          if (this.steps[i] === 0) continue;
          const off = unit.stateOffset.get(i)!;
          const p = this.allParams[i];
          tensors.set(`state.${i}.${names[k]}`, { shape: [...p.shape], data: all.slice(off, off + p.size) });
        }
      }
    }
    const groups = this.paramGroups.map((g) => ({ ...g.options, initial_lr: g.initialLr, params: g.params.map((p) => this.allParams.indexOf(p)) }));
    return { tensors, meta: { kind: this.kind, groups, steps: [...this.steps] } };
  }

  /** Restores what `stateDict` returned (same parameters, in the same order). */
  loadStateDict(state: OptimizerState): void {
    const { meta } = state;
    if (meta.kind !== this.kind) throw new OpError(`${this.kind}.loadStateDict`, `state of a ${meta.kind} optimizer`);
    if (meta.groups.length !== this.paramGroups.length || meta.steps.length !== this.allParams.length) {
      throw new OpError(
        `${this.kind}.loadStateDict`,
        `state has ${meta.groups.length} group(s) and ${meta.steps.length} parameter(s), this optimizer ${this.paramGroups.length} and ${this.allParams.length}`,
      );
    }
    meta.groups.forEach((saved, gi) => {
      const group = this.paramGroups[gi];
      const { params: _p, initial_lr: initialLr, ...opts } = saved;
      void _p;
      Object.assign(group.options, opts);
      if (typeof initialLr === 'number') group.initialLr = initialLr;
    });
    for (const unit of this.units) {
      const names = this.stateNames(this.paramGroups[unit.group]);
      const st = this.unitState(unit);
      names.forEach((name, k) => {
        for (const i of unit.params) {
          const entry = state.tensors.get(`state.${i}.${name}`);
          const p = this.allParams[i];
          if (!entry) {
            if (meta.steps[i] > 0) throw new OpError(`${this.kind}.loadStateDict`, `missing state.${i}.${name} for parameter ${describe(p)}`);
            continue;
          }
          if (entry.data.length !== p.size) {
            throw new OpError(`${this.kind}.loadStateDict`, `state.${i}.${name} has ${entry.data.length} values, parameter ${describe(p)} has ${p.size}`);
          }
          runtime().device.upload(st[k].bufferFor('loadStateDict'), unit.stateOffset.get(i)! * 4, entry.data);
        }
      });
    }
    meta.steps.forEach((s, i) => (this.steps[i] = s));
  }

  /** Frees the state buffers and tables (the parameters stay). */
  dispose(): void {
    for (const u of this.units) {
      u.state?.forEach((t) => t.dispose());
      u.state = null;
    }
    this.tables.dispose();
    this.disposed = true;
  }

  /** Dispatches per step (for tests and benchmarks): units x gradient buffers. */
  get unitCount(): number {
    return this.units.length;
  }
}

/** Sets gradients to null (disposing plain tensors' gradients) or zero. */
export function zeroGradOf(params: Iterable<Tensor>, setToNone = true): void {
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (setToNone) {
      if (!isArenaParam(p)) g.dispose();
      p.grad = null;
    } else {
      zeroFill(g);
    }
  }
}

function isArenaParam(p: Tensor): boolean {
  // Parameters own their gradient slot (see nn/parameter.ts); plain tensors own `grad` outright.
  return typeof (p as { gradSlot?: unknown }).gradSlot === 'function';
}

/** Zeroes a gradient in place (one fill per gradient: set_to_none is the usual path). */
function zeroFill(g: Tensor): void {
  if (!g.isContiguous) throw new OpError('zeroGrad', `gradient of shape [${g.shape.join(', ')}] is not contiguous`);
  fillRange(g, g.offset, g.size, 0);
}

function describe(p: Tensor): string {
  return `${p.name ? `"${p.name}" ` : ''}#${p.id} [${p.shape.join(', ')}]`;
}

function normalizeGroups<H extends { lr: number }>(kind: string, params: ParamsArg<H>, defaults: H): ParamGroup<H>[] {
  const list = [...(params as Iterable<unknown>)];
  const isGroups = list.length > 0 && !(list[0] instanceof Tensor);
  const raw: ({ params: Iterable<Tensor> } & Partial<H>)[] = isGroups
    ? (list as ({ params: Iterable<Tensor> } & Partial<H>)[])
    : [{ params: list as Tensor[] } as unknown as { params: Iterable<Tensor> } & Partial<H>];
  if (list.length === 0) throw new OpError(kind, 'got an empty parameter list');
  return raw.map((g, i) => {
    const { params: ps, ...opts } = g;
    const tensors = [...ps];
    for (const t of tensors) {
      if (!(t instanceof Tensor)) throw new OpError(kind, `group ${i}: parameters must be tensors`);
    }
    const options = { ...defaults, ...opts } as H;
    if (!(options.lr >= 0)) throw new OpError(kind, `invalid learning rate ${options.lr}`);
    return { params: tensors, options, initialLr: options.lr };
  });
}
