/**
 * Losses (kernels/loss.wgsl), backward beside forward: fused cross-entropy (hard targets with
 * ignoreIndex and label smoothing, soft targets), the uniform-target cross-entropy of Outlier
 * Exposure, NLL, MSE and binary cross-entropy with logits.
 *
 * Cross-entropy is one kernel per row (logsumexp around the row max, the target logit, the row
 * mean for smoothing) and one elementwise backward, (softmax - target) * w, the softmax rebuilt
 * from the saved logsumexp: no [N, C] log-probabilities are kept.
 *
 * Out-of-range targets (not in [0, C), not the ignore index): the fused kernels never read out of
 * bounds; such a target is treated as ignored (loss 0, no gradient, not counted in the mean) and
 * recorded in the device's index-error register. `await checkIndexErrors()` throws for them (one
 * small readback; call it at a sync point), and `await validateTargets(targets, C)` checks a
 * target tensor up front.
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel, f32Bits } from './launch.ts';
import { contiguous } from './movement.ts';
import { binaryRaw, sub, mul } from './binary.ts';
import { reduceRaw, dense, mean, sum } from './reduce.ts';
import { rowWorkgroup } from './softmax.ts';
import { full } from './creation.ts';
import { indexErrorRegister, validateIndices, INDEX_OP_BITS } from './gather.ts';

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** Targets equal to this contribute nothing (PyTorch's default -100). Hard targets only. */
  ignoreIndex?: number;
  /** 'mean' (default: over the non-ignored samples, as PyTorch), 'sum' or 'none' ([N]). */
  reduction?: Reduction;
  /** Mixes the target with the uniform distribution: (1 - e) target + e / C (PyTorch). */
  labelSmoothing?: number;
}

function groups2d(groups: number): [number, number] {
  const gx = Math.min(groups, 32768);
  return [gx, Math.ceil(groups / gx)];
}

function shp(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

function checkReduction(op: string, r: string): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new OpError(op, `reduction must be 'mean', 'sum' or 'none', got '${r}'`);
  return r;
}

function checkLogits(op: string, logits: Tensor): void {
  logits.storageFor(op);
  if (logits.dtype !== 'f32') throw new OpError(op, `logits must be f32, got ${logits.dtype} of shape ${shp(logits)}`);
  if (logits.rank !== 2) throw new OpError(op, `logits must be [N, C], got shape ${shp(logits)}`);
  if (logits.shape[1] === 0) throw new OpError(op, `logits of shape ${shp(logits)} have no classes`);
}

/** Params block of loss.wgsl. */
function lossParams(rows: number, cols: number, offX: number, offT: number, ignore: number, smoothing: number, opBit: number, offQ: number): Uint32Array {
  const p = new Uint32Array(8);
  p[0] = rows;
  p[1] = cols;
  p[2] = offX;
  p[3] = offT;
  p[4] = ignore; // two's complement: a Uint32Array stores a number modulo 2^32
  p[5] = f32Bits(smoothing);
  p[6] = opBit;
  p[7] = offQ;
  return p;
}

/** The per-row loss reduced as asked; also returns what the backward needs to rebuild w. */
function reduceRows(rowsLoss: Tensor, weights: Tensor | null, reduction: Reduction): { out: Tensor; count: Tensor | null } {
  if (reduction === 'none') return { out: rowsLoss, count: null };
  const total = reduceRaw('sum', rowsLoss, [0], false);
  if (reduction === 'sum') {
    rowsLoss.dispose();
    return { out: total, count: null };
  }
  let count: Tensor;
  if (weights) {
    count = reduceRaw('sum', weights, [0], false);
  } else {
    count = full([], rowsLoss.shape[0]);
  }
  const out = binaryRaw('div', total, count);
  total.dispose();
  rowsLoss.dispose();
  return { out, count };
}

/** w[r]: the incoming gradient per row, times the ignore mask and the mean's 1/count. */
function rowWeights(g: Tensor, weights: Tensor | null, count: Tensor | null, reduction: Reduction, rows: number): Tensor {
  let scaled = g;
  if (reduction === 'mean' && count) scaled = binaryRaw('div', g, count);
  let w: Tensor;
  if (weights) {
    w = binaryRaw('mul', weights, scaled); // broadcasts a scalar g over the rows
  } else if (scaled.rank === 0 || reduction !== 'none') {
    const ones = full([rows], 1);
    w = binaryRaw('mul', ones, scaled);
    ones.dispose();
  } else {
    w = dense(scaled);
    if (w === scaled && scaled === g) return w;
  }
  if (scaled !== g) scaled.dispose();
  return w;
}

/**
 * Cross-entropy from logits [N, C] (torch.nn.functional.cross_entropy):
 *  - targets i32 [N]: class indices; `ignoreIndex` (default -100) rows contribute nothing and
 *    'mean' divides by the number of the other rows (NaN when there are none, as PyTorch);
 *  - targets f32 [N, C]: class probabilities (soft targets; 'mean' divides by N; the targets get
 *    a gradient too when they require one).
 * See the file comment for out-of-range targets.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  checkLogits(op, logits);
  targets.storageFor(op);
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  const e = opts.labelSmoothing ?? 0;
  if (!(e >= 0 && e <= 1)) throw new OpError(op, `labelSmoothing must be in [0, 1], got ${e}`);
  const [N, C] = logits.shape;
  if (targets.dtype === 'f32') {
    if (targets.rank !== 2 || targets.shape[0] !== N || targets.shape[1] !== C) {
      throw new OpError(op, `soft targets must have the logits' shape ${shp(logits)}, got ${shp(targets)}`);
    }
    return softCrossEntropy(logits, targets, reduction, e);
  }
  if (targets.dtype !== 'i32') throw new OpError(op, `targets must be i32 class indices [N] or f32 probabilities [N, C], got ${targets.dtype} of shape ${shp(targets)}`);
  if (targets.rank !== 1 || targets.shape[0] !== N) throw new OpError(op, `targets must be [N] = [${N}] for logits ${shp(logits)}, got ${shp(targets)}`);
  const ignore = opts.ignoreIndex ?? -100;
  if (!Number.isInteger(ignore)) throw new OpError(op, `ignoreIndex must be an integer, got ${ignore}`);
  return hardCrossEntropy(op, logits, targets, reduction, e, ignore, 0);
}

/**
 * Per-sample cross-entropy from softmax(logits) to the uniform distribution over the C classes
 * (the Outlier Exposure term): logsumexp(x) - mean_c x_c >= log C (equal for uniform logits),
 * gradient softmax(x) - 1/C.
 * `reduction` defaults to 'none' ([N]); 'mean' and 'sum' reduce over the samples.
 */
export function uniformCrossEntropy(logits: Tensor, reduction: Reduction = 'none'): Tensor {
  const op = 'uniformCrossEntropy';
  checkLogits(op, logits);
  checkReduction(op, reduction);
  return hardCrossEntropy(op, logits, null, reduction, 0, 0, 2);
}

function hardCrossEntropy(op: string, logits: Tensor, targets: Tensor | null, reduction: Reduction, e: number, ignore: number, mode: number): Tensor {
  const [N, C] = logits.shape;
  const x = contiguous(logits);
  const t = targets ? contiguous(targets) : null;
  const rowsLoss = empty([N]);
  const lse = empty([N]);
  const weights = empty([N]);
  const tb = t ? t.bufferFor(op) : x.bufferFor(op);
  const params = lossParams(N, C, x.offset, t ? t.offset : 0, ignore, e, INDEX_OP_BITS.crossEntropy, 0);
  if (N > 0) {
    const spec = { constants: { WG: rowWorkgroup(C), MODE: mode } };
    dispatch(kernel('loss', 'ce_fwd', spec), [rowsLoss.bufferFor(op), lse.bufferFor(op), weights.bufferFor(op), x.bufferFor(op), tb, indexErrorRegister()], params, groups2d(N));
  }
  const w = mode === 2 ? null : weights;
  const { out, count } = reduceRows(rowsLoss, w, reduction);
  const saved = [x, lse, weights, ...(t ? [t] : []), ...(count ? [count] : [])];
  const res = record(op, out, [logits], saved, (g, s) => {
    const [xs, lses, ws] = s;
    const ts = t ? s[3] : null;
    const cnt = count ? s[t ? 4 : 3] : null;
    const wr = rowWeights(g, w ? ws : null, cnt, reduction, N);
    const dx = empty([N, C]);
    if (N > 0) {
      const bp = lossParams(N, C, xs.offset, ts ? ts.offset : 0, ignore, e, 0, 0);
      const spec = { constants: { MODE: mode } };
      dispatch(kernel('loss', 'ce_bwd', spec), [dx.bufferFor(op), xs.bufferFor(op), (ts ?? xs).bufferFor(op), lses.bufferFor(op), wr.bufferFor(op)], bp, grid1d(N * C));
    }
    if (wr !== g) wr.dispose();
    return [dx];
  });
  for (const tmp of [lse, weights, ...(count ? [count] : [])]) tmp.dispose();
  if (x !== logits) x.dispose();
  if (t && t !== targets) t.dispose();
  return res;
}

function softCrossEntropy(logits: Tensor, targets: Tensor, reduction: Reduction, e: number): Tensor {
  const op = 'crossEntropy';
  const [N, C] = logits.shape;
  const x = contiguous(logits);
  const q = contiguous(targets);
  const rowsLoss = empty([N]);
  const lse = empty([N]);
  const sumq = empty([N]);
  if (N > 0) {
    const p = lossParams(N, C, x.offset, 0, 0, e, 0, q.offset);
    dispatch(kernel('loss', 'ce_soft_fwd', { constants: { WG: rowWorkgroup(C) } }), [rowsLoss.bufferFor(op), lse.bufferFor(op), sumq.bufferFor(op), x.bufferFor(op), q.bufferFor(op)], p, groups2d(N));
  }
  const { out, count } = reduceRows(rowsLoss, null, reduction);
  const saved = [x, q, lse, sumq, ...(count ? [count] : [])];
  const needQ = targets.requiresGrad;
  const res = record(op, out, [logits, targets], saved, (g, [xs, qs, lses, sq, cnt]) => {
    const wr = rowWeights(g, null, cnt ?? null, reduction, N);
    const grads: (Tensor | null)[] = [];
    for (const dq of needQ ? [0, 1] : [0]) {
      const d = empty([N, C]);
      if (N > 0) {
        const bp = lossParams(N, C, xs.offset, 0, 0, e, 0, qs.offset);
        dispatch(kernel('loss', 'ce_soft_bwd', { constants: { DQ: dq } }), [d.bufferFor(op), xs.bufferFor(op), qs.bufferFor(op), lses.bufferFor(op), sq.bufferFor(op), wr.bufferFor(op)], bp, grid1d(N * C));
      }
      grads.push(d);
    }
    if (wr !== g) wr.dispose();
    return grads;
  });
  for (const tmp of [lse, sumq, ...(count ? [count] : [])]) tmp.dispose();
  if (x !== logits) x.dispose();
  if (q !== targets) q.dispose();
  return res;
}

/**
 * Checks that every target lies in [0, C) or equals `ignoreIndex` (default -100); throws an
 * OpError with the bad values otherwise. Reads back one small buffer: meant for validating a
 * dataset's labels once, not for every step (the fused losses record bad targets in the error
 * register instead; see `checkIndexErrors`).
 */
export async function validateTargets(targets: Tensor, C: number, opts: { ignoreIndex?: number | null } = {}): Promise<void> {
  const ignore = opts.ignoreIndex === null ? undefined : (opts.ignoreIndex ?? -100);
  const t = contiguous(targets);
  try {
    await validateIndices('validateTargets', t, C, ignore);
  } finally {
    if (t !== targets) t.dispose();
  }
}

/**
 * Negative log-likelihood from log-probabilities [N, C] and i32 targets [N]
 * (torch.nn.functional.nll_loss): loss_n = -logProbs[n, t_n]; ignoreIndex and reductions as
 * crossEntropy, out-of-range targets likewise treated as ignored and recorded.
 */
export function nllLoss(logProbs: Tensor, targets: Tensor, opts: { ignoreIndex?: number; reduction?: Reduction } = {}): Tensor {
  const op = 'nllLoss';
  checkLogits(op, logProbs);
  targets.storageFor(op);
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  const [N, C] = logProbs.shape;
  if (targets.dtype !== 'i32' || targets.rank !== 1 || targets.shape[0] !== N) {
    throw new OpError(op, `targets must be i32 [${N}] for log-probabilities ${shp(logProbs)}, got ${targets.dtype} of shape ${shp(targets)}`);
  }
  const ignore = opts.ignoreIndex ?? -100;
  const x = contiguous(logProbs);
  const t = contiguous(targets);
  const rowsLoss = empty([N]);
  const weights = empty([N]);
  if (N > 0) {
    const p = lossParams(N, C, x.offset, t.offset, ignore, 0, INDEX_OP_BITS.nllLoss, 0);
    dispatch(kernel('loss', 'nll_fwd'), [rowsLoss.bufferFor(op), weights.bufferFor(op), x.bufferFor(op), t.bufferFor(op), indexErrorRegister()], p, grid1d(N));
  }
  const { out, count } = reduceRows(rowsLoss, weights, reduction);
  const saved = [t, weights, ...(count ? [count] : [])];
  const res = record(op, out, [logProbs], saved, (g, [ts, ws, cnt]) => {
    const wr = rowWeights(g, ws, cnt ?? null, reduction, N);
    const dx = empty([N, C]);
    if (N > 0) {
      const p = lossParams(N, C, 0, ts.offset, ignore, 0, 0, 0);
      dispatch(kernel('loss', 'nll_bwd'), [dx.bufferFor(op), ts.bufferFor(op), wr.bufferFor(op)], p, grid1d(N * C));
    }
    if (wr !== g) wr.dispose();
    return [dx];
  });
  for (const tmp of [weights, ...(count ? [count] : [])]) tmp.dispose();
  if (x !== logProbs) x.dispose();
  if (t !== targets) t.dispose();
  return res;
}

function checkPair(op: string, a: Tensor, b: Tensor, an: string, bn: string): void {
  a.storageFor(op);
  b.storageFor(op);
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new OpError(op, `${an} and ${bn} must be f32, got ${a.dtype} ${shp(a)} and ${b.dtype} ${shp(b)}`);
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new OpError(op, `${an} ${shp(a)} and ${bn} ${shp(b)} must have the same shape`);
  }
}

function reduceAll(t: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return t;
  const r = reduction === 'mean' ? mean(t) : sum(t);
  t.dispose();
  return r;
}

/** Mean squared error (torch.nn.functional.mse_loss): (input - target)^2, reduced. Both must
 * have the same shape; both get gradients when they require them. */
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  const op = 'mseLoss';
  checkPair(op, input, target, 'input', 'target');
  checkReduction(op, reduction);
  const d = sub(input, target);
  const sq = mul(d, d);
  d.dispose();
  return reduceAll(sq, reduction);
}

/**
 * Binary cross-entropy from logits (torch.nn.functional.binary_cross_entropy_with_logits):
 * max(x, 0) - x y + log(1 + exp(-|x|)) elementwise, stable for any logit; gradient
 * sigmoid(x) - y (and -x for the targets when they require a gradient).
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, reduction: Reduction = 'mean'): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  checkPair(op, logits, targets, 'logits', 'targets');
  checkReduction(op, reduction);
  const x = contiguous(logits);
  const y = contiguous(targets);
  const n = x.size;
  const el = empty(logits.shape);
  if (n > 0) {
    const p = lossParams(n, 0, x.offset, 0, 0, 0, 0, y.offset);
    dispatch(kernel('loss', 'bce_fwd'), [el.bufferFor(op), x.bufferFor(op), y.bufferFor(op)], p, grid1d(n));
  }
  const out = reduction === 'none' ? el : reduceRaw('sum', el, [...Array(el.rank).keys()], false, reduction === 'mean' ? 1 / n : 1);
  if (out !== el) el.dispose();
  const shape = logits.shape;
  const needY = targets.requiresGrad;
  const res = record(op, out, [logits, targets], [x, y], (g, [xs, ys]) => {
    const gc = dense(g);
    const grads: Tensor[] = [];
    for (const dq of needY ? [0, 1] : [0]) {
      const d = empty(shape);
      if (n > 0) {
        const p = lossParams(n, reduction === 'none' ? 1 : 0, xs.offset, 0, 0, 0, 0, ys.offset);
        p[3] = f32Bits(reduction === 'mean' ? 1 / n : 1); // the scale, in off_t
        dispatch(kernel('loss', 'bce_bwd', { constants: { DQ: dq } }), [d.bufferFor(op), xs.bufferFor(op), ys.bufferFor(op), gc.bufferFor(op)], p, grid1d(n));
      }
      grads.push(d);
    }
    if (gc !== g) gc.dispose();
    return grads;
  });
  if (x !== logits) x.dispose();
  if (y !== targets) y.dispose();
  return res;
}
