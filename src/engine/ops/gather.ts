/**
 * Index ops (kernels/gather.wgsl), backward beside forward.
 *
 * Out-of-range indices: no kernel here (nor the fused losses) ever reads out of bounds. A bad
 * index reads as 0 and is recorded in the device's index-error register; `checkIndexErrors()`
 * reads the register (one small readback, only when called) and throws an OpError naming the ops
 * and the bad values. `validateIndices` checks one tensor at once.
 */
import { Tensor, empty, numel, contiguousStrides } from '../tensor.ts';
import { runtime } from '../runtime.ts';
import type { Device } from '../device.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel, MAX_RANK, WG } from './launch.ts';
import { contiguous, reshape } from './movement.ts';
import { full } from './creation.ts';
import { dense } from './reduce.ts';

// ------------------------------------------------------------------------- the error register

/** The bit each op sets in the register when it meets an index out of range. */
export const INDEX_OP_BITS = { crossEntropy: 1, nllLoss: 2, gather: 4, indexSelect: 8, embedding: 16, oneHot: 32 } as const;
export type IndexOp = keyof typeof INDEX_OP_BITS;

const REGISTER_WORDS = 8;
const INT_MAX = 0x7fffffff;
const INT_MIN = -0x80000000;
const registers = new WeakMap<Device, GPUBuffer>();

function initialRegister(): Int32Array {
  return new Int32Array([0, 0, INT_MAX, INT_MIN, INT_MAX, 0, 0, 0]);
}

function newRegister(device: Device): GPUBuffer {
  const buf = device.gpu.createBuffer({
    label: 'index-error-register',
    size: REGISTER_WORDS * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  device.upload(buf, 0, initialRegister());
  return buf;
}

/** The device's index-error register (created on first use). Kernels record bad indices in it. */
export function indexErrorRegister(): GPUBuffer {
  const { device } = runtime();
  let buf = registers.get(device);
  if (!buf) {
    buf = newRegister(device);
    registers.set(device, buf);
  }
  return buf;
}

export interface IndexErrorReport {
  count: number;
  ops: IndexOp[];
  min: number;
  max: number;
  /** Position (flat element or row) of the first bad index seen by any op. */
  first: number;
}

function decode(words: Int32Array): IndexErrorReport | null {
  if (words[0] === 0) return null;
  const ops = (Object.keys(INDEX_OP_BITS) as IndexOp[]).filter((k) => (words[1] & INDEX_OP_BITS[k]) !== 0);
  return { count: words[0], ops, min: words[2], max: words[3], first: words[4] };
}

/**
 * Reads and clears the index-error register; throws an OpError if any op met an index out of
 * range since the last check (those ops treated it as ignored / zero). Waits on the GPU: call it
 * at a sync point (end of an epoch, or after the first step), never inside a step.
 */
export async function checkIndexErrors(): Promise<void> {
  const { device } = runtime();
  const buf = registers.get(device);
  if (!buf) return;
  // snapshot-and-reset on the GPU, in stream order: errors recorded by ops queued after this
  // call stay in the register for the next check
  const snapshot = empty([REGISTER_WORDS], 'i32');
  let words: Int32Array;
  try {
    dispatch(kernel('gather', 'take_errors'), [snapshot.bufferFor('checkIndexErrors'), buf], initialRegister(), [1]);
    words = new Int32Array(await device.read(snapshot.bufferFor('checkIndexErrors'), 0, REGISTER_WORDS * 4));
  } finally {
    snapshot.dispose();
  }
  const report = decode(words);
  if (!report) return;
  throw new OpError(
    report.ops.join(', ') || 'index',
    `${report.count} index value(s) out of range (bad values between ${report.min} and ${report.max}, first at position ${report.first}); ` +
      'they were treated as ignored (zero contribution)',
  );
}

/** Records a range check of i32 `ids` (valid: [0, hi), plus `ignore` when given) into `register`. */
export function recordRangeCheck(ids: Tensor, hi: number, op: IndexOp, register: GPUBuffer, ignore?: number): void {
  if (ids.size === 0) return;
  const p = new Int32Array([ids.size, ids.offset, hi, ignore ?? 0, ignore === undefined ? 0 : 1, INDEX_OP_BITS[op], 0, 0]);
  dispatch(kernel('gather', 'check_range'), [register, ids.bufferFor(op)], p, grid1d(ids.size));
}

/**
 * Checks at once that every value of the i32 tensor `ids` lies in [0, hi) (or equals `ignore`);
 * throws an OpError naming `op` otherwise. One small readback: for input validation outside a
 * training step. `ids` must be contiguous.
 */
export async function validateIndices(op: string, ids: Tensor, hi: number, ignore?: number): Promise<void> {
  ids.storageFor(op);
  if (ids.dtype !== 'i32') throw new OpError(op, `indices must be i32, got ${ids.dtype} of shape [${ids.shape.join(', ')}]`);
  if (!ids.isContiguous) throw new OpError(op, `indices of shape [${ids.shape.join(', ')}] must be contiguous`);
  const { device } = runtime();
  const reg = newRegister(device);
  try {
    recordRangeCheck(ids, hi, 'gather', reg, ignore);
    const report = decode(new Int32Array(await device.read(reg, 0, REGISTER_WORDS * 4)));
    if (report) {
      throw new OpError(
        op,
        `${report.count} of ${ids.size} indices of shape [${ids.shape.join(', ')}] are outside [0, ${hi})` +
          `${ignore !== undefined ? ` (and not the ignore index ${ignore})` : ''}: values between ${report.min} and ${report.max}, first at flat position ${report.first}`,
      );
    }
  } finally {
    device.destroyBuffer(reg);
  }
}

// ------------------------------------------------------------------------------- helpers

function shp(t: Tensor | readonly number[]): string {
  return `[${(t instanceof Tensor ? t.shape : t).join(', ')}]`;
}

function groups2d(groups: number): [number, number] {
  const gx = Math.min(Math.max(groups, 1), 32768);
  return [gx, Math.ceil(groups / gx)];
}

function checkIds(op: string, ids: Tensor, what = 'indices'): void {
  ids.storageFor(op);
  if (ids.dtype !== 'i32') throw new OpError(op, `${what} must be i32, got ${ids.dtype} of shape ${shp(ids)}`);
}

function dimOf(op: string, t: Tensor, dim: number): number {
  const d = dim < 0 ? dim + t.rank : dim;
  if (!Number.isInteger(d) || d < 0 || d >= t.rank) throw new OpError(op, `dimension ${dim} out of range for shape ${shp(t)}`);
  return d;
}

// ------------------------------------------------------------- deterministic scatter-add

/**
 * Sorts M items by bucket (stable LSD radix sort on the GPU, see kernels/gather.wgsl) and sums
 * g's rows per bucket in that fixed order: out[o, k, i] = sum over items m with key k of
 * g[o, m, i], g viewed as [outer, M, inner]. `keys` and `perm` come from a keys_* kernel
 * (the sentinel key K is dropped). Deterministic: the same inputs give the same bits.
 */
function bucketSum(op: string, keys: Tensor, perm: Tensor, K: number, g: Tensor, outer: number, inner: number, outShape: readonly number[]): Tensor {
  const M = keys.size;
  const out = empty(outShape);
  if (out.size === 0) return out;
  let kA = keys;
  let vA = perm;
  let kB = empty([M], 'u32');
  let vB = empty([M], 'u32');
  if (M > 0) {
    const blocks = Math.ceil(M / WG);
    const hist = empty([16 * blocks], 'u32');
    const bits = Math.max(1, Math.ceil(Math.log2(K + 1)));
    for (let shift = 0; shift < bits; shift += 4) {
      const p = new Uint32Array([M, blocks, shift, 16 * blocks]);
      dispatch(kernel('gather', 'radix_hist'), [hist.bufferFor(op), kA.bufferFor(op)], p, groups2d(blocks));
      dispatch(kernel('gather', 'radix_scan'), [hist.bufferFor(op)], p, [1]);
      dispatch(kernel('gather', 'radix_scatter'), [kB.bufferFor(op), vB.bufferFor(op), hist.bufferFor(op), kA.bufferFor(op), vA.bufferFor(op)], p, groups2d(blocks));
      [kA, kB] = [kB, kA];
      [vA, vB] = [vB, vA];
    }
    hist.dispose();
  }
  const start = full([K], 0, 'u32');
  const end = full([K], 0, 'u32');
  if (M > 0) dispatch(kernel('gather', 'segments'), [start.bufferFor(op), end.bufferFor(op), kA.bufferFor(op)], new Uint32Array([M, K, 0, 0]), grid1d(M));
  const gc = dense(g);
  dispatch(kernel('gather', 'segment_sum'), [out.bufferFor(op), gc.bufferFor(op), start.bufferFor(op), end.bufferFor(op), vA.bufferFor(op)], new Uint32Array([outer, K, inner, M]), grid1d(out.size));
  if (gc !== g) gc.dispose();
  for (const t of [kA, kB, vA, vB, start, end]) t.dispose();
  return out;
}

/** Keys (bucket = index, or the sentinel K when invalid or equal to `pad`) and positions. */
function rowKeys(op: string, idx: Tensor, K: number, pad?: number): { keys: Tensor; perm: Tensor } {
  const M = idx.size;
  const keys = empty([M], 'u32');
  const perm = empty([M], 'u32');
  if (M > 0) {
    const p = new Int32Array([M, K, idx.offset, pad ?? 0, pad === undefined ? 0 : 1, 0, 0, 0]);
    dispatch(kernel('gather', 'keys_rows'), [keys.bufferFor(op), perm.bufferFor(op), idx.bufferFor(op)], p, grid1d(M));
  }
  return { keys, perm };
}

// ---------------------------------------------------------------------------- index ops

/** t viewed as [outer, D, inner] around dimension d. */
function around(shape: readonly number[], d: number): { outer: number; D: number; inner: number } {
  return { outer: numel(shape.slice(0, d)), D: shape[d], inner: numel(shape.slice(d + 1)) };
}

/** Rows selected by a 1-D index, without autograd: out[o, k, i] = t[o, idx[k], i]. */
function selectRaw(op: IndexOp, t: Tensor, d: number, idx: Tensor, outShape: readonly number[]): Tensor {
  const { outer, D, inner } = around(t.shape, d);
  const K = idx.size;
  const out = empty(outShape);
  if (out.size > 0) {
    const p = new Uint32Array([outer, D, inner, K, t.offset, idx.offset, INDEX_OP_BITS[op], 0]);
    dispatch(kernel('gather', 'index_select'), [out.bufferFor(op), t.bufferFor(op), idx.bufferFor(op), indexErrorRegister()], p, grid1d(out.size));
  } else if (K > 0 && outer * inner === 0) {
    // nothing to copy, but the indices are still checked
    recordRangeCheck(idx, D, op, indexErrorRegister());
  }
  return out;
}

/**
 * torch.index_select: the slices of `t` along `dim` at the i32 1-D `indices` (repeats allowed).
 * Gradient: the slices' gradients added back per index (deterministic, see bucketSum). An index
 * outside [0, t.shape[dim]) selects zeros and is recorded (see `checkIndexErrors`).
 */
export function indexSelect(t: Tensor, dim: number, indices: Tensor): Tensor {
  const op = 'indexSelect';
  t.storageFor(op);
  checkIds(op, indices);
  if (t.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${t.dtype} of shape ${shp(t)}`);
  if (indices.rank !== 1) throw new OpError(op, `indices must be 1-D, got shape ${shp(indices)}`);
  const d = dimOf(op, t, dim);
  const src = contiguous(t);
  const idx = contiguous(indices);
  const outShape = t.shape.map((s, i) => (i === d ? idx.size : s));
  const out = selectRaw(op, src, d, idx, outShape);
  const inShape = t.shape;
  const res = record(op, out, [t], [idx], (g, [ids]) => {
    const { outer, D, inner } = around(inShape, d);
    const { keys, perm } = rowKeys(op, ids, D);
    return [bucketSum(op, keys, perm, D, g, outer, inner, inShape)];
  });
  if (src !== t) src.dispose();
  if (idx !== indices) idx.dispose();
  return res;
}

export interface EmbeddingOptions {
  /** Rows looked up at this id get no gradient (torch's padding_idx); negative counts from V. */
  paddingIdx?: number;
}

/**
 * Embedding lookup: weight [V, D], ids i32 of any shape -> [...ids.shape, D]. Gradient: each
 * weight row gets the sum of its lookups' gradients (deterministic, repeats allowed); the
 * padding row gets none. Ids outside [0, V) look up zeros and are recorded
 * (see `checkIndexErrors`).
 */
export function embedding(weight: Tensor, ids: Tensor, opts: EmbeddingOptions = {}): Tensor {
  const op = 'embedding';
  weight.storageFor(op);
  checkIds(op, ids, 'ids');
  if (weight.dtype !== 'f32' || weight.rank !== 2) throw new OpError(op, `weight must be f32 [V, D], got ${weight.dtype} of shape ${shp(weight)}`);
  const [V, D] = weight.shape;
  let pad = opts.paddingIdx;
  if (pad !== undefined) {
    if (!Number.isInteger(pad) || pad < -V || pad >= V) throw new OpError(op, `paddingIdx ${pad} out of range for ${V} embeddings`);
    if (pad < 0) pad += V;
  }
  const w = contiguous(weight);
  const idx = contiguous(ids);
  const out = selectRaw(op, w, 0, idx, [...ids.shape, D]);
  const res = record(op, out, [weight], [idx], (g, [ix]) => {
    const { keys, perm } = rowKeys(op, ix, V, pad);
    return [bucketSum(op, keys, perm, V, g, 1, D, [V, D])];
  });
  if (w !== weight) w.dispose();
  if (idx !== ids) idx.dispose();
  return res;
}

function gatherParams(n: number, rank: number, dim: number, offT: number, offIdx: number, dsize: number, opBit: number, sentinel: number, shape: readonly number[], strides: readonly number[]): Uint32Array {
  const p = new Uint32Array(8 + 16);
  p.set([n, rank, dim, offT, offIdx, dsize, opBit, sentinel]);
  for (let d = 0; d < rank; d++) {
    p[8 + d] = shape[d];
    p[16 + d] = strides[d];
  }
  return p;
}

/**
 * torch.gather: out[c] = t[c with c[dim] = index[c]] for every position c of the i32 `index`
 * (same rank as t; index.shape[d] <= t.shape[d] for d != dim). Gradient: scattered back and
 * added where indices repeat (deterministic). Indices outside [0, t.shape[dim]) give 0 and are
 * recorded (see `checkIndexErrors`).
 */
export function gather(t: Tensor, dim: number, index: Tensor): Tensor {
  const op = 'gather';
  t.storageFor(op);
  checkIds(op, index, 'index');
  if (t.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${t.dtype} of shape ${shp(t)}`);
  const d = dimOf(op, t, dim);
  if (index.rank !== t.rank) throw new OpError(op, `index ${shp(index)} must have the rank of the input ${shp(t)}`);
  if (t.rank > MAX_RANK) throw new OpError(op, `rank ${t.rank} exceeds the supported maximum of ${MAX_RANK}`);
  for (let i = 0; i < t.rank; i++) {
    if (i !== d && index.shape[i] > t.shape[i]) throw new OpError(op, `index ${shp(index)} is larger than the input ${shp(t)} in dimension ${i}`);
  }
  const idx = contiguous(index);
  const out = empty(index.shape);
  const n = out.size;
  if (n > 0) {
    const p = gatherParams(n, t.rank, d, t.offset, idx.offset, t.shape[d], INDEX_OP_BITS.gather, 0, index.shape, t.strides);
    dispatch(kernel('gather', 'gather_fwd'), [out.bufferFor(op), t.bufferFor(op), idx.bufferFor(op), indexErrorRegister()], p, grid1d(n));
  }
  const inShape = t.shape;
  const idxShape = index.shape;
  const res = record(op, out, [t], [idx], (g, [ix]) => {
    const K = numel(inShape);
    const keys = empty([n], 'u32');
    const perm = empty([n], 'u32');
    if (n > 0) {
      const p = gatherParams(n, inShape.length, d, 0, ix.offset, inShape[d], 0, K, idxShape, contiguousStrides(inShape));
      dispatch(kernel('gather', 'keys_gather'), [keys.bufferFor(op), perm.bufferFor(op), ix.bufferFor(op)], p, grid1d(n));
    }
    const flat = bucketSum(op, keys, perm, K, g, 1, 1, [K]);
    const r = reshape(flat, inShape);
    flat.dispose();
    return [r];
  });
  if (idx !== index) idx.dispose();
  return res;
}

/**
 * One-hot encoding: ids i32 of any shape -> f32 [...ids.shape, numClasses]. An id outside
 * [0, numClasses) gives an all-zero row and is recorded (see `checkIndexErrors`).
 */
export function oneHot(ids: Tensor, numClasses: number): Tensor {
  const op = 'oneHot';
  checkIds(op, ids, 'ids');
  if (!Number.isInteger(numClasses) || numClasses <= 0) throw new OpError(op, `numClasses must be a positive integer, got ${numClasses}`);
  const idx = contiguous(ids);
  const out = empty([...ids.shape, numClasses]);
  if (out.size > 0) {
    const p = new Uint32Array([idx.size, numClasses, idx.offset, INDEX_OP_BITS.oneHot]);
    dispatch(kernel('gather', 'one_hot'), [out.bufferFor(op), idx.bufferFor(op), indexErrorRegister()], p, grid1d(out.size));
  }
  if (idx !== ids) idx.dispose();
  return out;
}
