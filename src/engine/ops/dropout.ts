/**
 * Dropout from the seeded GPU generator (ops/random.ts): elementwise (torch.nn.functional.dropout)
 * and channel-wise for feature maps (dropout2d: one keep/drop draw per (sample, channel)). Kept
 * values are scaled by 1/(1-p) so evaluation needs no rescaling; in evaluation both are the
 * identity (a view of the input).
 */
import type { Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { record } from '../autograd.ts';
import { dropoutBits, maskByBits, scaledBernoulli, type RandomOptions } from './random.ts';
import { mul } from './binary.ts';
import { binaryRaw } from './binary-raw.ts';
import { copyRaw } from './copy.ts';
import { reshape } from './movement.ts';

function checkP(op: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new OpError(op, `dropout probability must be in [0, 1], got ${p}`);
}

/** y = x * mask, mask = 1/(1-p) with probability 1-p else 0, drawn as `bernoulli(maskShape, 1-p)`
 * draws it (same numbers, same generator offsets). Two dispatches forward (the scaled mask, the
 * product) and one backward (g * mask): no filled scalar and no gradient for the mask. dropout2d's
 * mask is one value per channel, small beside x, so it stays an f32 tensor. */
function masked(x: Tensor, maskShape: readonly number[], p: number, opts: RandomOptions): Tensor {
  if (p === 1) return mul(x, 0);
  const mask = scaledBernoulli(maskShape, 1 - p, 1 / (1 - p), opts);
  const y = binaryRaw('mul', x, mask);
  record('dropout', y, [x], [mask], (g, [m]) => [binaryRaw('mul', g, m)]);
  mask.dispose();
  return y;
}

/** A row-major tensor with `t`'s values: `t` itself when it already is one (any offset), else a
 * copy the caller disposes. */
function rowMajor(t: Tensor): Tensor {
  return t.isContiguous ? t : copyRaw(t);
}

/** Elementwise dropout: the same numbers and generator offsets as `masked(x, x.shape, ...)`, and
 * y bit for bit the same, in one dispatch forward and one backward (ops/random.ts `dropoutBits`).
 * Only the keep bits, 1/32 of an f32 mask, stay alive until backward. A strided x is copied
 * row-major first (one more dispatch), as is a strided gradient. */
function maskedByBits(x: Tensor, p: number, opts: RandomOptions): Tensor {
  if (p === 1) return mul(x, 0);
  // before the copy, which would leak when dropoutBits refused x
  if (x.dtype !== 'f32') throw new OpError('dropout', `x must be f32, got ${x.dtype}`);
  const kept = 1 / (1 - p);
  const src = rowMajor(x);
  const { y, bits } = dropoutBits(src, 1 - p, kept, opts);
  if (src !== x) src.dispose();
  record('dropout', y, [x], [bits], (g, [b]) => {
    const gf = rowMajor(g);
    const dx = maskByBits(gf, b, kept);
    if (gf !== g) gf.dispose();
    return [dx];
  });
  bits.dispose();
  return y;
}

/** Zeroes each element with probability p and scales the rest by 1/(1-p) (training only). */
export function dropout(x: Tensor, p = 0.5, training = true, opts: RandomOptions = {}): Tensor {
  x.storageFor('dropout');
  checkP('dropout', p);
  if (!training || p === 0) return reshape(x, x.shape);
  return maskedByBits(x, p, opts);
}

/** Zeroes whole channels of an [N, C, H, W] (or [C, H, W]) map with probability p (training only). */
export function dropout2d(x: Tensor, p = 0.5, training = true, opts: RandomOptions = {}): Tensor {
  x.storageFor('dropout2d');
  checkP('dropout2d', p);
  if (x.rank !== 4 && x.rank !== 3) throw new OpError('dropout2d', `input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape [${x.shape.join(', ')}]`);
  if (!training || p === 0) return reshape(x, x.shape);
  const maskShape = x.rank === 4 ? [x.shape[0], x.shape[1], 1, 1] : [x.shape[0], 1, 1];
  return masked(x, maskShape, p, opts);
}
