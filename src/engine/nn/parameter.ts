/**
 * Parameters and the arena they live in.
 *
 * Why an arena: an optimizer step touches every parameter, and one dispatch per parameter tensor
 * costs a pipeline bind, a bind group and a workgroup grid each (a WRN-40-2 has ~130 parameter
 * tensors). WGSL cannot index an array of buffers, so a single "multi-tensor" dispatch needs the
 * parameters in one buffer: every Parameter is a slice (a view) of a large arena buffer, and its
 * gradient a slice at the same offset of a mirror buffer. The optimizers in optim/ then update a
 * whole arena with one dispatch over a table of (offset, length) blocks.
 *
 * Arenas are chunks allocated on demand (first 4 MiB, doubling up to 64 MiB or the adapter's
 * storage-binding limit); a parameter larger than the chunk gets a chunk of its own. A chunk is
 * freed once every parameter in it is disposed and the allocator has moved on to a newer chunk
 * (`releaseParameterArena()` makes it move on now). A WRN-40-2 (2.2M parameters) fits in two
 * chunks, so its optimizer step is two dispatches.
 *
 * Gradients: `p.grad` of a Parameter is an accessor. Assigning a tensor to it copies the values
 * into the parameter's slot of the gradient mirror (one copy dispatch) and disposes the assigned
 * handle: the parameter takes ownership of what is assigned. Assigning the slot itself
 * (`gradSlot()`, which autograd fills directly on the first accumulation after `zeroGrad`) only
 * marks the gradient present. Reading it returns a view of the slot, owned by the parameter
 * (never dispose it). Assigning null marks "no gradient" (PyTorch's set_to_none); the slot's
 * memory stays allocated for the next step.
 */
import { Tensor, keep, empty, numel, type Shape } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { runtime } from '../runtime.ts';
import { copyValues } from '../ops/copy.ts';

export { copyValues };

/** Parameter offsets are multiples of 64 floats (256 bytes, WebGPU's storage-offset alignment),
 * so a kernel may bind a parameter on its own with a buffer offset. */
const ALIGN = 64;
const FIRST_CHUNK = 1 << 20; // floats (4 MiB)
const MAX_CHUNK = 1 << 24; // floats (64 MiB)

/** One arena buffer: parameter data, and (allocated on the first gradient) its mirror. */
export class ArenaChunk {
  readonly data: Tensor;
  readonly capacity: number;
  used = 0;
  private gradTensor: Tensor | null = null;
  private users = 0;
  private current: boolean;

  /** `current`: the allocator will place more parameters here (false for a chunk made for one
   * large parameter, which is freed with that parameter). */
  constructor(capacity: number, current = true) {
    this.capacity = capacity;
    this.current = current;
    this.data = keep(empty([capacity]));
  }

  /** The gradient mirror (same layout as `data`), allocated on first use. */
  grad(): Tensor {
    if (!this.gradTensor) this.gradTensor = keep(empty([this.capacity]));
    return this.gradTensor;
  }

  get hasGrad(): boolean {
    return this.gradTensor !== null;
  }

  addUser(): void {
    this.users++;
  }

  dropUser(): void {
    this.users--;
    this.maybeFree();
  }

  /** The allocator will not place new parameters here any more. */
  retire(): void {
    this.current = false;
    this.maybeFree();
  }

  private maybeFree(): void {
    if (this.users === 0 && !this.current) {
      this.data.dispose();
      this.gradTensor?.dispose();
      this.gradTensor = null;
    }
  }
}

let currentChunk: ArenaChunk | null = null;
let nextChunkFloats = FIRST_CHUNK;

function maxChunkFloats(): number {
  const limit = runtime().device.limits.maxStorageBufferBindingSize;
  return Math.min(MAX_CHUNK, Math.floor(limit / 4 / ALIGN) * ALIGN);
}

/** Finds room for `n` floats: [chunk, offset]. */
function allocate(n: number): [ArenaChunk, number] {
  const maxFloats = maxChunkFloats();
  if (n > maxFloats) {
    throw new OpError('Parameter', `a parameter of ${n} elements exceeds the adapter's storage binding limit (${maxFloats} floats)`);
  }
  const need = Math.max(ALIGN, Math.ceil(n / ALIGN) * ALIGN);
  if (currentChunk && currentChunk.used + need <= currentChunk.capacity) {
    const off = currentChunk.used;
    currentChunk.used += need;
    return [currentChunk, off];
  }
  const size = Math.min(maxFloats, nextChunkFloats);
  if (need > size / 2) {
    // A large parameter gets a chunk of its own; the current chunk keeps filling.
    const own = new ArenaChunk(need, false);
    own.used = need;
    return [own, 0];
  }
  currentChunk?.retire();
  currentChunk = new ArenaChunk(size);
  nextChunkFloats = Math.min(maxFloats, size * 2);
  currentChunk.used = need;
  return [currentChunk, 0];
}

/** New parameters go to a fresh chunk from now on; chunks whose parameters are all disposed are
 * freed. Tests call it to leave no arena behind; models need not. */
export function releaseParameterArena(): void {
  currentChunk?.retire();
  currentChunk = null;
  nextChunkFloats = FIRST_CHUNK;
}

/**
 * A leaf tensor that requires a gradient, lives in a parameter arena and is never owned by a
 * scope (dispose it with its module). Create with `Parameter.empty(shape)` (then initialise it)
 * or `Parameter.from(tensor)`.
 */
export class Parameter extends Tensor {
  readonly arena: ArenaChunk;
  private hasGradient = false;
  private slot: Tensor | null = null;

  private constructor(chunk: ArenaChunk, shape: Shape, offset: number) {
    super(chunk.data.storageFor('Parameter').retain(), shape, 'f32', undefined, offset);
    keep(this);
    this.arena = chunk;
    chunk.addUser();
    this.requiresGrad = true;
    // `grad` is a data field of Tensor; an accessor on the instance replaces it (see above).
    Object.defineProperty(this, 'grad', {
      get: () => this.getGrad(),
      set: (v: Tensor | null) => this.setGrad(v),
      enumerable: true,
      configurable: true,
    });
  }

  /** An uninitialised parameter (in tests every element is NaN until written). */
  static empty(shape: Shape): Parameter {
    const n = numel(shape);
    const [chunk, off] = allocate(n);
    return new Parameter(chunk, shape, off);
  }

  /** A parameter holding a copy of `t`'s values (`t` stays the caller's). */
  static from(t: Tensor): Parameter {
    if (t.dtype !== 'f32') throw new OpError('Parameter', `parameters are f32, got ${t.dtype} of shape [${t.shape.join(', ')}]`);
    const p = Parameter.empty(t.shape);
    copyValues(p, t);
    return p;
  }

  /** Writes host values into the parameter (initialisation, checkpoint loading). */
  upload(values: Float32Array): void {
    if (values.length !== this.size) {
      throw new OpError('Parameter.upload', `${values.length} values for a parameter of shape [${this.shape.join(', ')}] (${this.size} elements)`);
    }
    if (this.size > 0) runtime().device.upload(this.bufferFor('Parameter.upload'), this.offset * 4, values);
  }

  /** The gradient storage of this parameter's arena and the parameter's offset in it. */
  gradSlot(): Tensor {
    if (!this.slot || this.slot.disposed) {
      this.slot = keep(this.arena.grad().view(this.shape, this.strides, this.offset));
    }
    return this.slot;
  }

  private getGrad(): Tensor | null {
    if (!this.hasGradient || this.disposed) return null;
    return this.gradSlot();
  }

  private setGrad(v: Tensor | null): void {
    if (v === null || v === undefined) {
      this.hasGradient = false;
      return;
    }
    if (v === this.slot && !v.disposed) {
      this.hasGradient = true;
      return;
    }
    if (!sameShape(v.shape, this.shape)) {
      throw new OpError('Parameter.grad', `gradient of shape [${v.shape.join(', ')}] for a parameter of shape [${this.shape.join(', ')}]`);
    }
    if (v.dtype !== 'f32') throw new OpError('Parameter.grad', `gradient must be f32, got ${v.dtype}`);
    // a copy_strided dispatch, not copyBufferToBuffer: a buffer copy ends the open compute pass
    // (bench/NOTES.md, issue 19: 116 of them per WRN-40-2 step before autograd wrote slots itself)
    copyValues(this.gradSlot(), v);
    v.dispose();
    this.hasGradient = true;
  }

  override dispose(): void {
    if (this.disposed) return;
    this.hasGradient = false;
    super.dispose();
    this.slot?.dispose();
    this.slot = null;
    this.arena.dropUser();
  }

  override toString(): string {
    return `Parameter(${this.name ?? ''}[${this.shape.join(', ')}])`;
  }
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
