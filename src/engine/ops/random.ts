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
 */
import { empty, checkShape, numel, type Shape, type Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel } from './launch.ts';

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

function launch(op: string, entry: string, out: Tensor, key: bigint, counter: readonly [number, number, number, number], alpha = 0, beta = 0): void {
  const n = out.size;
  if (n === 0) return;
  const params = new Uint32Array(12);
  const f = new Float32Array(params.buffer);
  params[0] = n;
  params[1] = out.offset;
  params[2] = Number(key & 0xffffffffn);
  params[3] = Number(key >> 32n);
  for (let i = 0; i < 4; i++) params[4 + i] = counter[i] >>> 0;
  f[8] = alpha;
  f[9] = beta;
  dispatch(kernel('random', entry), [out.bufferFor(op)], params, grid1d(Math.ceil(n / 4)));
}

function generate(op: string, entry: string, shape: Shape, opts: RandomOptions, alpha: number, beta: number): Tensor {
  checkShape(op, shape);
  const n = numel(shape);
  const blocks = Math.ceil(n / 4);
  const { key, offset } = draw(op, blocks, opts);
  const out = empty(shape, 'f32');
  launch(op, entry, out, key, [offset % 2 ** 32, Math.floor(offset / 2 ** 32), 0, 0], alpha, beta);
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
  if (!(p >= 0 && p <= 1)) throw new OpError('bernoulli', `p must be in [0, 1], got ${p}`);
  if (!Number.isFinite(value)) throw new OpError('bernoulli', `the kept value must be finite, got ${value}`);
  return generate('bernoulli', 'bernoulli', shape, opts, p, value);
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
