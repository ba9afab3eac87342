/**
 * Parameter initialisation with PyTorch's formulas (torch.nn.init): fan computations, gains,
 * uniform/normal, Kaiming and Xavier.
 *
 * Random numbers come from the engine's seeded GPU generator (ops/random.ts: Philox4x32-10,
 * counter-based, the same integers on every adapter), so one `manualSeed(seed)` fixes the
 * initial weights, dropout masks and everything else random, and a checkpoint's
 * `getRngState()` resumes the whole stream. Each initialiser draws a tensor on the GPU and
 * copies it into the target (no readback, no upload). Pass `{ seed }` to use a private stream.
 */
import type { Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { runtime } from '../runtime.ts';
import { copyInto } from '../ops/movement.ts';
import { uniform, randn, type RandomOptions } from '../ops/random.ts';

// ------------------------------------------------------------------ fans and gains

/** PyTorch's _calculate_fan_in_and_fan_out: dims [out, in, *receptive field]. */
export function calculateFanInAndFanOut(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new OpError('init', `fan in and fan out cannot be computed for a tensor with fewer than 2 dimensions (shape [${shape.join(', ')}])`);
  }
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i];
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

export type Nonlinearity = 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new OpError('calculateGain', `unsupported nonlinearity ${String(nonlinearity)}`);
  }
}

// ------------------------------------------------------------------ initialisers

/** Writes host values into a contiguous f32 tensor. */
function write(op: string, t: Tensor, values: Float32Array): Tensor {
  if (t.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${t.dtype} of shape [${t.shape.join(', ')}]`);
  if (!t.isContiguous) throw new OpError(op, `expects a contiguous tensor, got shape [${t.shape.join(', ')}] with strides [${t.strides.join(', ')}]`);
  if (t.size > 0) runtime().device.upload(t.bufferFor(op), t.offset * 4, values);
  return t;
}

function checkTarget(op: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${t.dtype} of shape [${t.shape.join(', ')}]`);
  t.storageFor(op);
}

/** t = U(a, b), drawn on the GPU. */
export function uniform_(t: Tensor, a = 0, b = 1, opts: RandomOptions = {}): Tensor {
  checkTarget('uniform_', t);
  const r = uniform(t.shape, a, b, opts);
  copyInto(t, r);
  r.dispose();
  return t;
}

/** t = N(mean, std^2), drawn on the GPU. */
export function normal_(t: Tensor, mean = 0, std = 1, opts: RandomOptions = {}): Tensor {
  checkTarget('normal_', t);
  const r = randn(t.shape, { ...opts, mean, std });
  copyInto(t, r);
  r.dispose();
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  return write('constant_', t, new Float32Array(t.size).fill(value));
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

export type FanMode = 'fan_in' | 'fan_out';

function fanOf(t: Tensor, mode: FanMode): number {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t.shape);
  return mode === 'fan_in' ? fanIn : fanOut;
}

export interface KaimingOptions {
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
  random?: RandomOptions;
}

/** U(-b, b) with b = gain * sqrt(3 / fan); defaults as PyTorch (a 0, fan_in, leaky_relu). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const bound = gain * Math.sqrt(3 / fanOf(t, opts.mode ?? 'fan_in'));
  return uniform_(t, -bound, bound, opts.random);
}

/** N(0, std^2) with std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const std = gain / Math.sqrt(fanOf(t, opts.mode ?? 'fan_in'));
  return normal_(t, 0, std, opts.random);
}

/** U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1, opts: RandomOptions = {}): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t.shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, opts);
}

/** N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, gain = 1, opts: RandomOptions = {}): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t.shape);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), opts);
}
