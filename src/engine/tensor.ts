/**
 * Tensor: a typed, shaped, strided view of a reference-counted GPU buffer.
 *
 * Ownership model (GPU memory is never left to JavaScript's garbage collector):
 *  - every tensor handle owns one reference to its storage; `dispose()` gives it back, and the
 *    buffer returns to the pool when the last handle (views included) and the last autograd node
 *    that saved it are gone;
 *  - `scope(fn)` disposes every tensor created inside `fn` except what `fn` returns (which moves
 *    to the enclosing scope) and what was `keep()`-ed; scopes nest;
 *  - parameters, optimizer state and gradients of leaves are never owned by a scope.
 */
import { runtime } from './runtime.ts';
import { OpError } from './errors.ts';
import type { GradNode } from './autograd.ts';

export type DType = 'f32' | 'i32' | 'u32';
export type TypedArrayFor<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;
export type Shape = readonly number[];

/** A GPU buffer shared by a tensor and its views; freed into the pool at refcount zero. */
export class Storage {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  private refs = 1;

  constructor(buffer: GPUBuffer, bytes: number) {
    this.buffer = buffer;
    this.bytes = bytes;
    liveStorages++;
  }

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) {
      runtime().device.pool.release(this.buffer);
      liveStorages--;
    }
  }
}

let liveStorages = 0;
let liveTensors = 0;
let nextId = 1;

/** Counters for memory tests: tensor handles and storages alive now. */
export function memoryStats(): { tensors: number; storages: number } {
  return { tensors: liveTensors, storages: liveStorages };
}

// ------------------------------------------------------------------------------------ scopes

const scopeStack: Set<Tensor>[] = [];

/** Runs `fn`, then disposes every tensor created inside it except the ones it returns. */
export function scope<T>(fn: () => T): T {
  const tracked = new Set<Tensor>();
  scopeStack.push(tracked);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopeStack.pop();
    for (const t of tracked) t.dispose();
    throw e;
  }
  if (result instanceof Promise) {
    scopeStack.pop();
    for (const t of tracked) t.dispose();
    throw new Error('scope(fn): fn must be synchronous (await outside the scope, then read the results)');
  }
  scopeStack.pop();
  const keepSet = new Set<Tensor>();
  collectTensors(result, keepSet);
  const parent = scopeStack[scopeStack.length - 1];
  for (const t of tracked) {
    if (keepSet.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes tensors from every enclosing scope: the caller now owns them. Returns its argument. */
export function keep<T>(value: T): T {
  const set = new Set<Tensor>();
  collectTensors(value, set);
  for (const t of set) for (const s of scopeStack) s.delete(t);
  return value;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
  }
}

// ------------------------------------------------------------------------------------ tensor

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new OpError(op, `invalid shape [${shape.join(', ')}]: dimensions must be non-negative integers`);
  }
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: Shape;
  readonly strides: Shape;
  /** Offset of element [0, ..., 0] in the storage, in elements. */
  readonly offset: number;
  readonly dtype: DType;
  readonly size: number;
  private _storage: Storage | null;
  /** Whether gradients flow to this tensor. Set on leaves by the user (or nn.Parameter). */
  requiresGrad = false;
  /** Accumulated gradient (leaves, and intermediates that called `retainGrad()`). */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (null for leaves). */
  gradFn: GradNode | null = null;
  /** Set by `retainGrad()`: backward stores this intermediate's gradient in `grad`. */
  retainsGrad = false;
  /** Optional name (parameters carry PyTorch's names). */
  name?: string;

  constructor(storage: Storage, shape: Shape, dtype: DType, strides?: Shape, offset = 0) {
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtype;
    this.size = numel(shape);
    liveTensors++;
    scopeStack[scopeStack.length - 1]?.add(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this._storage === null;
  }

  /** The storage; throws a clear error if this tensor was disposed. */
  storageFor(op: string): Storage {
    if (!this._storage) {
      throw new OpError(op, `tensor #${this.id}${this.name ? ` (${this.name})` : ''} of shape [${this.shape.join(', ')}] was used after dispose()`);
    }
    return this._storage;
  }

  /** The GPU buffer (for kernels); `offset` and `strides` say where the elements are. */
  bufferFor(op: string): GPUBuffer {
    return this.storageFor(op).buffer;
  }

  get isContiguous(): boolean {
    let expected = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== expected) return false;
      expected *= this.shape[i];
    }
    return true;
  }

  /** A new handle on the same storage (a view); used by view ops and by autograd to save tensors. */
  view(shape: Shape, strides: Shape, offset: number): Tensor {
    return new Tensor(this.storageFor('view').retain(), shape, this.dtype, strides, offset);
  }

  /** Frees this handle. Idempotent. The buffer is recycled once no view or graph node holds it. */
  dispose(): void {
    if (!this._storage) return;
    this._storage.release();
    this._storage = null;
    liveTensors--;
    for (const s of scopeStack) s.delete(this);
    if (this.gradFn) {
      const node = this.gradFn;
      this.gradFn = null;
      node.dropRef();
    }
    if (this.grad && this.retainsGrad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Reads the elements back (in logical row-major order). The only call that waits on the GPU. */
  async data(): Promise<TypedArrayFor<DType>> {
    const storage = this.storageFor('data');
    const { device } = runtime();
    if (this.isContiguous) {
      const bytes = await device.read(storage.buffer, this.offset * 4, this.size * 4);
      return typedView(this.dtype, bytes);
    }
    const { contiguous } = await import('./ops/movement.ts');
    const c = contiguous(this);
    try {
      const bytes = await device.read(c.bufferFor('data'), c.offset * 4, c.size * 4);
      return typedView(this.dtype, bytes);
    } finally {
      c.dispose();
    }
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new OpError('item', `tensor of shape [${this.shape.join(', ')}] has ${this.size} elements, expected 1`);
    return (await this.data())[0];
  }

  /** Keeps this intermediate's gradient after backward (PyTorch's retain_grad). */
  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  toString(): string {
    return `Tensor(${this.dtype}[${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''}${this.disposed ? ', disposed' : ''})`;
  }
}

function typedView(dtype: DType, bytes: ArrayBuffer): TypedArrayFor<DType> {
  if (dtype === 'f32') return new Float32Array(bytes);
  if (dtype === 'i32') return new Int32Array(bytes);
  return new Uint32Array(bytes);
}

/** Allocates an uninitialised contiguous tensor. Kernels write all of it. */
export function empty(shape: Shape, dtype: DType = 'f32'): Tensor {
  checkShape('empty', shape);
  const bytes = Math.max(4, numel(shape) * 4);
  const { device } = runtime();
  const buffer = device.pool.acquire(bytes);
  if (device.poison) device.upload(buffer, 0, new Uint32Array(bytes / 4).fill(0x7fc00000));
  return new Tensor(new Storage(buffer, bytes), shape, dtype);
}

/** Uploads host data into a new tensor (the data's length must match the shape). */
export function fromData(data: ArrayLike<number> | Float32Array | Int32Array | Uint32Array, shape?: Shape, dtype?: DType): Tensor {
  const inferred: DType = dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32');
  const shp = shape ?? [data.length];
  checkShape('tensor', shp);
  if (numel(shp) !== data.length) {
    throw new OpError('tensor', `${data.length} values do not fill shape [${shp.join(', ')}] (${numel(shp)} elements)`);
  }
  let typed: Float32Array | Int32Array | Uint32Array;
  if (inferred === 'f32') typed = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
  else if (inferred === 'i32') typed = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
  else typed = data instanceof Uint32Array ? data : Uint32Array.from(data as ArrayLike<number>);
  const t = empty(shp, inferred);
  if (typed.length > 0) runtime().device.upload(t.bufferFor('tensor'), 0, typed);
  return t;
}
