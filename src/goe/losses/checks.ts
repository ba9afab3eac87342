/** Input checks shared by the OOD losses: clear errors naming the loss and the shapes. */
import { OpError, Tensor } from '../../engine/index.ts';

export function checkLogits(op: string, what: string, logits: Tensor): void {
  if (!(logits instanceof Tensor)) throw new OpError(op, `${what} must be a Tensor`);
  logits.storageFor(op);
  if (logits.rank !== 2) throw new OpError(op, `${what} must have shape [N, C], got [${logits.shape.join(', ')}]`);
  if (logits.dtype !== 'f32') throw new OpError(op, `${what} must be f32, got ${logits.dtype} of shape [${logits.shape.join(', ')}]`);
  if (logits.shape[1] < 1) throw new OpError(op, `${what} of shape [${logits.shape.join(', ')}] have no classes`);
}

export function checkLabels(op: string, what: string, labels: Tensor, logits: Tensor): void {
  if (!(labels instanceof Tensor)) throw new OpError(op, `${what} must be an i32 Tensor`);
  labels.storageFor(op);
  if (labels.dtype !== 'i32') throw new OpError(op, `${what} must be i32, got ${labels.dtype} of shape [${labels.shape.join(', ')}]`);
  if (labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new OpError(op, `${what} of shape [${labels.shape.join(', ')}] do not match logits of shape [${logits.shape.join(', ')}] (expected [${logits.shape[0]}])`);
  }
}

export function checkSameClasses(op: string, a: Tensor, b: Tensor): void {
  if (a.shape[1] !== b.shape[1]) {
    throw new OpError(op, `in-distribution logits [${a.shape.join(', ')}] and outlier logits [${b.shape.join(', ')}] have different class counts`);
  }
}

export function checkNonEmpty(op: string, what: string, t: Tensor): void {
  if (t.shape[0] === 0) throw new OpError(op, `${what} is an empty batch (shape [${t.shape.join(', ')}]): its mean is undefined`);
}

/** The checks of every loss that takes inliers and outliers as separate batches. */
export function checkSplitBatches(op: string, inLogits: Tensor, inTargets: Tensor, outLogits: Tensor): void {
  checkLogits(op, 'inLogits', inLogits);
  checkLabels(op, 'inTargets', inTargets, inLogits);
  checkLogits(op, 'outLogits', outLogits);
  checkSameClasses(op, inLogits, outLogits);
  checkNonEmpty(op, 'inLogits', inLogits);
  checkNonEmpty(op, 'outLogits', outLogits);
}

export function checkNumber(op: string, name: string, v: number, min = -Infinity): void {
  if (!(typeof v === 'number' && Number.isFinite(v) && v >= min)) {
    throw new OpError(op, `${name} must be a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${v}`);
  }
}
