/**
 * Categorical sampling on the GPU with engine ops (no readback): torch.multinomial's role.
 *
 * Gumbel-max: for scores s_k (log-weights), argmax_k (s_k + G_k) with G_k = -log(-log U_k), U_k
 * iid uniform, is distributed exactly as softmax(s): P(argmax = k) = exp(s_k) / sum_j exp(s_j).
 * (G_k are iid Gumbel(0, 1); the maximum of s_j + G_j is attained at k with that probability.)
 * So torch.multinomial(w, 1) with weights w >= 0 is argmax(log w + G), and the word language
 * model's `torch.multinomial(output.div(T).exp(), 1)` is argmax(output / T + G): the weights need
 * never be exponentiated (no overflow for small T).
 *
 * Float details: U = k 2^-24 from `rand` (Philox, bit-identical across adapters), clamped below at
 * 2^-30 so U = 0 gives a finite G (about -3.0) instead of log(0); the largest U (1 - 2^-24) gives
 * G of about 16.6, so the Gumbel tail beyond that (probability 6e-8) is cut. -log(-log U) goes
 * through the adapter's log, whose absolute error near U = 1 (WGSL allows 2^-21 on [0.5, 2]) makes
 * the rare very large G values approximate; the resulting bias on a probability is far below
 * the sampling noise of any practical run.
 */
import type { Tensor } from '../engine/api.ts';
import { OpError } from '../engine/api.ts';
import { noGrad } from '../engine/api.ts';
import { add, div } from '../engine/api.ts';
import { log, neg, clamp } from '../engine/api.ts';
import { argmax } from '../engine/api.ts';
import { unsqueeze } from '../engine/api.ts';
import { rand, type RandomOptions } from '../engine/api.ts';

export interface MultinomialOptions extends RandomOptions {
  /** The input holds log-weights (logits) instead of non-negative weights. Default false. */
  logits?: boolean;
  /** Divide the log-weights by this temperature first (softmax(logits / T)). Default 1. */
  temperature?: number;
  /**
   * Samples per row, drawn with replacement (torch.multinomial(..., replacement=True)); the
   * result then gets a trailing dimension of this size. Default: one sample, no extra dimension.
   */
  numSamples?: number;
}

/** U(0, 1) -> Gumbel(0, 1) noise of the given shape: -log(-log(max(U, 2^-30))). */
export function gumbel(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return noGrad(() => {
    const u = rand(shape, opts);
    const uc = clamp(u, 2 ** -30, null);
    u.dispose();
    const l1 = log(uc);
    uc.dispose();
    const e = neg(l1); // Exp(1)
    l1.dispose();
    const l2 = log(e);
    e.dispose();
    const g = neg(l2);
    l2.dispose();
    return g;
  });
}

/**
 * One category index per row of `x` [..., K] (i32 [...], or [..., numSamples]), drawn from the
 * distribution proportional to the weights x (torch.multinomial; weights >= 0, not all zero,
 * not checked on the GPU) or to exp(x / T) with `logits: true`. Random numbers from `rand` with
 * the given `seed`/`offset`, or the global generator. Not differentiable.
 */
export function multinomial(x: Tensor, opts: MultinomialOptions = {}): Tensor {
  const op = 'multinomial';
  x.storageFor(op);
  if (x.dtype !== 'f32' || x.rank < 1 || x.shape[x.rank - 1] < 1) {
    throw new OpError(op, `expects f32 weights [..., K] with K >= 1, got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  const T = opts.temperature ?? 1;
  if (!(T > 0) || !Number.isFinite(T)) throw new OpError(op, `temperature must be a positive finite number, got ${T}`);
  const n = opts.numSamples;
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new OpError(op, `numSamples must be a positive integer, got ${n}`);
  return noGrad(() => {
    const temps: Tensor[] = [];
    let s = opts.logits ? x : (temps.push(log(x)), temps[temps.length - 1]);
    if (T !== 1) {
      s = div(s, T);
      temps.push(s);
    }
    if (n !== undefined) {
      s = unsqueeze(s, -2); // [..., 1, K]
      temps.push(s);
    }
    const shape = n !== undefined ? [...x.shape.slice(0, -1), n, x.shape[x.rank - 1]] : [...x.shape];
    const g = gumbel(shape, { seed: opts.seed, offset: opts.offset });
    const z = add(s, g);
    g.dispose();
    const idx = argmax(z, -1);
    z.dispose();
    for (const t of temps) t.dispose();
    return idx;
  });
}
