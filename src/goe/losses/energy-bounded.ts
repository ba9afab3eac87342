/**
 * Energy-bounded learning (Liu, Wang, Owens and Li, NeurIPS 2020; energy repo CIFAR/train.py):
 *
 *   L = CE(inliers) + alpha * ( mean_in relu(E_in - m_in)^2 + mean_out relu(m_out - E_out)^2 )
 *
 * with E(x) = -logsumexp_c f(x)_c (the energy at T = 1). Defaults alpha 0.1, m_in -25, m_out -7
 * (the repo's argument defaults; its run.sh uses -23/-5 for CIFAR-10, -27/-5 for CIFAR-100).
 * Each mean runs over its own set of samples, as in the repo.
 */
import {
  Tensor,
  add,
  compare,
  crossEntropy,
  logsumexp,
  mean,
  mul,
  neg,
  relu,
  scope,
  square,
  sub,
} from '../../engine/index.ts';
import { checkLabels, checkLogits, checkNonEmpty, checkNumber, checkSplitBatches } from './checks.ts';
import { maskedMean, mixedBatchMasks } from './outlier-exposure.ts';

export const ENERGY_DEFAULT_ALPHA = 0.1;
export const ENERGY_DEFAULT_M_IN = -25;
export const ENERGY_DEFAULT_M_OUT = -7;

export interface EnergyBoundedOptions {
  /** Weight of the energy regulariser (default 0.1). */
  readonly alpha?: number;
  /** Margin for the inliers' energy (default -25): inliers above it are penalised. */
  readonly mIn?: number;
  /** Margin for the outliers' energy (default -7): outliers below it are penalised. */
  readonly mOut?: number;
}

function resolve(op: string, opts: EnergyBoundedOptions): { alpha: number; mIn: number; mOut: number } {
  const alpha = opts.alpha ?? ENERGY_DEFAULT_ALPHA;
  const mIn = opts.mIn ?? ENERGY_DEFAULT_M_IN;
  const mOut = opts.mOut ?? ENERGY_DEFAULT_M_OUT;
  checkNumber(op, 'alpha', alpha, 0);
  checkNumber(op, 'mIn', mIn);
  checkNumber(op, 'mOut', mOut);
  return { alpha, mIn, mOut };
}

/** Per-sample energies E = -logsumexp(logits) [N]. */
export function energy(logits: Tensor): Tensor {
  return scope(() => neg(logsumexp(logits, -1)));
}

/** Per-sample inlier penalty relu(E - m_in)^2 [N]. */
function inPenalty(logits: Tensor, mIn: number): Tensor {
  return square(relu(sub(energy(logits), mIn)));
}

/** Per-sample outlier penalty relu(m_out - E)^2 [N]. */
function outPenalty(logits: Tensor, mOut: number): Tensor {
  return square(relu(sub(mOut, energy(logits))));
}

/** The energy repo's form: inliers and outliers in separate batches. Returns a scalar. */
export function energyBoundedLoss(inLogits: Tensor, inTargets: Tensor, outLogits: Tensor, opts: EnergyBoundedOptions = {}): Tensor {
  const op = 'energyBoundedLoss';
  checkSplitBatches(op, inLogits, inTargets, outLogits);
  const { alpha, mIn, mOut } = resolve(op, opts);
  return scope(() => {
    const ce = crossEntropy(inLogits, inTargets);
    const reg = add(mean(inPenalty(inLogits, mIn)), mean(outPenalty(outLogits, mOut)));
    return add(ce, mul(reg, alpha));
  });
}

/**
 * The same loss on a mixed batch: labels [N] i32, class index for inliers and -1 (any negative)
 * for outliers; CE and the inlier penalty are averaged over the inliers, the outlier penalty over
 * the outliers (a term whose set is empty in this batch contributes 0). Masks stay on the GPU.
 */
export function energyBoundedLossMixed(logits: Tensor, labels: Tensor, opts: EnergyBoundedOptions = {}): Tensor {
  const op = 'energyBoundedLossMixed';
  checkLogits(op, 'logits', logits);
  checkLabels(op, 'labels', labels, logits);
  checkNonEmpty(op, 'logits', logits);
  const { alpha, mIn, mOut } = resolve(op, opts);
  return scope(() => {
    const { isOutlier, targets } = mixedBatchMasks(labels);
    const isInlier = compare('ge', labels, 0);
    const ce = maskedMean(crossEntropy(logits, targets, { ignoreIndex: -1, reduction: 'none' }), isInlier);
    const reg = add(maskedMean(inPenalty(logits, mIn), isInlier), maskedMean(outPenalty(logits, mOut), isOutlier));
    return add(ce, mul(reg, alpha));
  });
}
