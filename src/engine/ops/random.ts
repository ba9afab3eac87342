/**
 * Random tensors from Philox4x32-10 on the GPU (kernels/random.wgsl): a counter-based generator,
 * so the numbers are a pure function of (seed, counter). The words, `rand`, `uniform` (for [0, 1))
 * and `bernoulli` are bit-identical on every adapter (integer arithmetic, exact conversions);
 * `randn` goes through the adapter's log/sin/cos and agrees to a few ULP.
 *
 * Element i of a call's output comes from word i % 4 of block (offset + floor(i / 4)), block b
 * meaning the 128-bit counter (b mod 2^32, floor(b / 2^32), 0, 0) under the 64-bit key `seed`.
 * Calls without an explicit seed draw from a global generator: its key is the seed set by
 * `manualSeed` (PyTorch's default seed until then) and its offset advances by the blocks each call
 * consumes, so successive calls differ and the whole sequence repeats after the same
 * `manualSeed`. A call with `{ seed }` uses its own key from offset 0 (or `offset`), and leaves the
 * global generator alone.
 *
 * `dropoutBits` and `maskByBits` are dropout's forward and backward over `scaledBernoulli`'s
 * numbers, each one dispatch, with the keep mask held as bits (one u32 per 32 elements).
 */
import { empty, checkShape, numel, type Shape, type Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { dispatch, f32Bits, grid1d, kernel, ringBlock } from './launch.ts';

export type Seed = number | bigint;

export interface RandomOptions {
  /** Use this key (a u64) instead of the global generator; the counter then starts at `offset`. */
  seed?: Seed;
  /** First counter block (4 numbers each) when `seed` is given; default 0. */
  offset?: number;
}

/** PyTorch's default seed (default_rng_seed_val), so an unseeded program is still reproducible. */
export const DEFAULT_SEED = 67280421310721n;

const U64 = (1n << 64n) - 1n;

let globalKey = DEFAULT_SEED;
let globalOffset = 0;

function toKey(op: string, seed: Seed): bigint {
  if (typeof seed === 'bigint') return BigInt.asUintN(64, seed);
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new OpError(op, `seed must be an integer (a safe-integer number or a bigint), got ${String(seed)}`);
  }
  // negative seeds wrap modulo 2^64, as torch.manual_seed does
  return BigInt(seed) & U64;
}

/** Sets the global generator's key and restarts its counter (torch.manual_seed). */
export function manualSeed(seed: Seed): void {
  globalKey = toKey('manualSeed', seed);
  globalOffset = 0;
}

/** The global generator's state, to save with a checkpoint and restore with `setRngState`. */
export function getRngState(): { seed: bigint; offset: number } {
  return { seed: globalKey, offset: globalOffset };
}

export function setRngState(state: { seed: Seed; offset: number }): void {
  if (!Number.isSafeInteger(state.offset) || state.offset < 0) throw new OpError('setRngState', `offset must be a non-negative integer, got ${state.offset}`);
  globalKey = toKey('setRngState', state.seed);
  globalOffset = state.offset;
}

/** Key and first counter for a call consuming `blocks` blocks (advancing the global offset). */
function draw(op: string, blocks: number, opts: RandomOptions): { key: bigint; offset: number } {
  if (opts.seed !== undefined) {
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new OpError(op, `offset must be a non-negative integer, got ${offset}`);
    return { key: toKey(op, opts.seed), offset };
  }
  if (opts.offset !== undefined) throw new OpError(op, 'offset is only meaningful together with an explicit seed');
  const offset = globalOffset;
  globalOffset += blocks;
  return { key: globalKey, offset };
}

type Counter = readonly [number, number, number, number];

/** The 128-bit counter of block `offset` (a safe integer: the two low words). */
function counterAt(offset: number): Counter {
  return [offset % 2 ** 32, Math.floor(offset / 2 ** 32), 0, 0];
}

/** kernels/random.wgsl's Params, as a view of the parameter ring (launch.ts): pass it to
 * `dispatch` before making another block. */
function philoxParams(n: number, offOut: number, key: bigint, counter: Counter, alpha: number, beta: number): Uint32Array {
  const params = ringBlock(12);
  params[0] = n;
  params[1] = offOut;
  params[2] = Number(key & 0xffffffffn);
  params[3] = Number(key >> 32n);
  for (let i = 0; i < 4; i++) params[4 + i] = counter[i] >>> 0;
  params[8] = f32Bits(alpha);
  params[9] = f32Bits(beta);
  return params;
}

function launch(op: string, entry: string, out: Tensor, key: bigint, counter: Counter, alpha = 0, beta = 0): void {
  const n = out.size;
  if (n === 0) return;
  const params = philoxParams(n, out.offset, key, counter, alpha, beta);
  dispatch(kernel('random', entry), [out.bufferFor(op)], params, grid1d(Math.ceil(n / 4)));
}

function generate(op: string, entry: string, shape: Shape, opts: RandomOptions, alpha: number, beta: number): Tensor {
  checkShape(op, shape);
  const n = numel(shape);
  const blocks = Math.ceil(n / 4);
  const { key, offset } = draw(op, blocks, opts);
  const out = empty(shape, 'f32');
  launch(op, entry, out, key, counterAt(offset), alpha, beta);
  return out;
}

/** Uniform numbers in [0, 1): k * 2^-24 from each word's top 24 bits (never 1). */
export function rand(shape: Shape, opts: RandomOptions = {}): Tensor {
  return generate('rand', 'uniform_f32', shape, opts, 0, 1);
}

/** Uniform numbers low + (high - low) u, u from `rand` (torch.Tensor.uniform_). */
export function uniform(shape: Shape, low: number, high: number, opts: RandomOptions = {}): Tensor {
  if (!Number.isFinite(low) || !Number.isFinite(high) || low > high) throw new OpError('uniform', `need finite low <= high, got [${low}, ${high})`);
  return generate('uniform', 'uniform_f32', shape, opts, low, high);
}

/** Normal numbers mean + std z, z by Box-Muller from pairs of words. */
export function randn(shape: Shape, opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  if (!Number.isFinite(mean) || !Number.isFinite(std) || std < 0) throw new OpError('randn', `need a finite mean and std >= 0, got mean ${mean}, std ${std}`);
  return generate('randn', 'normal', shape, opts, mean, std);
}

/** A 1/0 mask (f32): 1 with probability p (u < p, as torch.bernoulli). */
export function bernoulli(shape: Shape, p: number, opts: RandomOptions = {}): Tensor {
  return scaledBernoulli(shape, p, 1, opts);
}

/** `value` with probability p, else 0: `bernoulli` times `value` in one dispatch, from the same
 * numbers (dropout's keep mask scaled by 1/(1-p)). */
export function scaledBernoulli(shape: Shape, p: number, value: number, opts: RandomOptions = {}): Tensor {
  checkBernoulli('bernoulli', p, value);
  return generate('bernoulli', 'bernoulli', shape, opts, p, value);
}

function checkBernoulli(op: string, p: number, value: number): void {
  if (!(p >= 0 && p <= 1)) throw new OpError(op, `p must be in [0, 1], got ${p}`);
  if (!Number.isFinite(value)) throw new OpError(op, `the kept value must be finite, got ${value}`);
}

/** Words of keep bits for n elements: one u32 per 32. */
export function keepBitsWords(n: number): number {
  return Math.ceil(n / 32);
}

function checkFlat(op: string, what: string, t: Tensor, dtype: 'f32' | 'u32', size: number): void {
  t.storageFor(op);
  if (t.dtype !== dtype) throw new OpError(op, `${what} must be ${dtype}, got ${t.dtype}`);
  if (!t.isContiguous) throw new OpError(op, `${what} must be row-major (a view at any offset), got strides [${t.strides.join(', ')}] for shape [${t.shape.join(', ')}]`);
  if (t.size !== size) throw new OpError(op, `${what} must hold ${size} elements, got shape [${t.shape.join(', ')}]`);
}

/** WebGPU rejects a dispatch that binds one buffer both written and read. */
function checkDistinct(op: string, tensors: readonly Tensor[]): void {
  const buffers = tensors.map((t) => t.bufferFor(op));
  if (new Set(buffers).size !== buffers.length) throw new OpError(op, 'the input and the outputs must lie in distinct buffers');
}

/**
 * Dropout's forward in one dispatch: y = x * m, m = `kept` where u < keepProb else 0, with the
 * numbers, and the generator blocks consumed (ceil(n / 4)), of `scaledBernoulli(x.shape, keepProb,
 * kept, opts)`: y is bit for bit x times that mask (dropped NaN or infinite x give NaN, as x * 0
 * does). The decisions come back as keep bits instead of an f32 mask: a u32 tensor of
 * W = ceil(n / 32) words, bit 4k + j of word w for element 4 (w + kW) + j in row-major order
 * (the layout that lets one thread own a word and still read x coalesced: kernels/random.wgsl),
 * bits of no element 0. x is f32 and row-major (any offset); `into` supplies both outputs (row-major
 * views at any offset, in buffers of their own).
 */
export function dropoutBits(x: Tensor, keepProb: number, kept: number, opts: RandomOptions = {}, into?: { y: Tensor; bits: Tensor }): { y: Tensor; bits: Tensor } {
  const op = 'dropout';
  checkBernoulli(op, keepProb, kept);
  const n = x.size;
  const words = keepBitsWords(n);
  checkFlat(op, 'x', x, 'f32', n);
  if (into) {
    checkFlat(op, 'the output y', into.y, 'f32', n);
    checkFlat(op, 'the output bits', into.bits, 'u32', words);
    checkDistinct(op, [x, into.y, into.bits]);
  }
  const { key, offset } = draw(op, Math.ceil(n / 4), opts);
  const y = into?.y ?? empty(x.shape, 'f32');
  const bits = into?.bits ?? empty([words], 'u32');
  if (n === 0) return { y, bits };
  const params = philoxParams(n, y.offset, key, counterAt(offset), keepProb, kept);
  params[10] = x.offset;
  params[11] = bits.offset;
  dispatch(kernel('random', 'dropout_fwd'), [y.bufferFor(op), x.bufferFor(op), bits.bufferFor(op)], params, grid1d(words));
  return { y, bits };
}

/** g * m with m = `kept` where `dropoutBits`'s bit is set, else 0 (bit for bit g times the f32
 * mask): dropout's backward in one dispatch. g is f32 and row-major, as is `out` if given. */
export function maskByBits(g: Tensor, bits: Tensor, kept: number, out?: Tensor): Tensor {
  const op = 'dropout';
  const n = g.size;
  checkFlat(op, 'the gradient', g, 'f32', n);
  checkFlat(op, 'the keep bits', bits, 'u32', keepBitsWords(n));
  if (out) {
    checkFlat(op, 'the output', out, 'f32', n);
    checkDistinct(op, [g, bits, out]);
  }
  const dx = out ?? empty(g.shape, 'f32');
  if (n === 0) return dx;
  const params = philoxParams(n, dx.offset, 0n, [0, 0, 0, 0], 0, kept);
  params[10] = g.offset;
  params[11] = bits.offset;
  dispatch(kernel('random', 'dropout_bwd'), [dx.bufferFor(op), g.bufferFor(op), bits.bufferFor(op)], params, grid1d(keepBitsWords(n)));
  return dx;
}

/**
 * The raw Philox4x32-10 words (a u32 tensor of n elements): block b = counter + b (128-bit, words
 * little-endian) under `key` = [k0, k1]. For known-answer tests and for callers that need bits.
 */
export function philoxBits(n: number, key: readonly [number, number], counter: readonly [number, number, number, number] = [0, 0, 0, 0]): Tensor {
  checkShape('philoxBits', [n]);
  const words = [...key, ...counter];
  if (words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
    throw new OpError('philoxBits', `key and counter words must be u32 integers, got key [${key.join(', ')}], counter [${counter.join(', ')}]`);
  }
  const out = empty([n], 'u32');
  launch('philoxBits', 'philox_bits', out, (BigInt(key[1]) << 32n) | BigInt(key[0]), counter);
  return out;
}
