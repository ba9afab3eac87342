/**
 * Outlier Exposure (Hendrycks, Mazeika and Dietterich, ICLR 2019):
 *
 *   L = CE(inliers) + lambda * CE(softmax(outliers) -> uniform)
 *
 * where the outlier term of one sample is -(1/C) sum_c log softmax(z)_c = logsumexp(z) - mean_c z
 * (the engine's uniformCrossEntropy; the OE repo writes it as -(mean_c z - logsumexp z)).
 * lambda = 0.5 by default, as in both code bases.
 *
 * Two averagings of the same per-sample terms:
 *  - 'separate' (OE repo, CIFAR/oe_tune.py): mean of CE over the inliers + lambda * mean of the
 *    uniform term over the outliers;
 *  - 'mixed' (pytorch-ood OutlierExposureLoss): one mean over the whole mixed batch of
 *    (CE for inliers, lambda * uniform term for outliers), i.e. each term is weighted by its
 *    share of the batch.
 * On a mixed batch, outliers carry a negative label (-1 by convention); the masks are built on
 * the GPU from the labels, nothing is read back.
 */
import {
  OpError,
  Tensor,
  add,
  compare,
  crossEntropy,
  div,
  maximum,
  mean,
  mul,
  scope,
  sum,
  uniformCrossEntropy,
  where,
} from '../../engine/index.ts';
import { checkLabels, checkLogits, checkNonEmpty, checkNumber, checkSplitBatches } from './checks.ts';

export const OE_DEFAULT_LAMBDA = 0.5;

/** 'mixed': pytorch-ood's mean over the whole batch; 'separate': the OE repo's two means. */
export type OeAveraging = 'mixed' | 'separate';

export interface OutlierExposureOptions {
  /** Weight of the outlier term (default 0.5). */
  readonly lambda?: number;
  /** How the per-sample terms are averaged (default 'mixed', pytorch-ood's form). */
  readonly averaging?: OeAveraging;
}

/** The masks of a mixed batch, on the GPU: isOutlier (label < 0) as i32, and CE targets with
 * every negative label mapped to -1 (the ignored index). */
export function mixedBatchMasks(labels: Tensor): { isOutlier: Tensor; targets: Tensor } {
  const isOutlier = compare('lt', labels, 0);
  const targets = where(isOutlier, -1, labels);
  return { isOutlier, targets };
}

/** sum(values) / max(count, 1): a mean over a masked subset that is 0 (not NaN) when empty. */
export function maskedMean(values: Tensor, mask: Tensor): Tensor {
  return scope(() => {
    const count = sum(where(mask, 1, 0));
    return div(sum(where(mask, values, 0)), maximum(count, 1));
  });
}

/**
 * OE loss of a mixed batch: logits [N, C], labels [N] (i32; class index for inliers, -1 for
 * outliers). Returns a scalar with autograd. A label >= C is not checked here (that would need
 * a read-back): crossEntropy treats it as ignored and records it in the engine's index-error
 * register (`checkIndexErrors()` at a sync point, or `validateTargets` on the dataset once).
 */
export function outlierExposureLoss(logits: Tensor, labels: Tensor, opts: OutlierExposureOptions = {}): Tensor {
  const op = 'outlierExposureLoss';
  checkLogits(op, 'logits', logits);
  checkLabels(op, 'labels', labels, logits);
  const lambda = opts.lambda ?? OE_DEFAULT_LAMBDA;
  checkNumber(op, 'lambda', lambda, 0);
  const averaging = opts.averaging ?? 'mixed';
  if (averaging !== 'mixed' && averaging !== 'separate') {
    throw new OpError(op, `averaging must be 'mixed' (pytorch-ood) or 'separate' (OE repo), got ${String(averaging)}`);
  }
  checkNonEmpty(op, 'logits', logits);
  return scope(() => {
    const { isOutlier, targets } = mixedBatchMasks(labels);
    // CE per sample, 0 for the outliers (ignored index).
    const ce = crossEntropy(logits, targets, { ignoreIndex: -1, reduction: 'none' });
    const uniform = uniformCrossEntropy(logits);
    if (averaging === 'mixed') {
      const oe = where(isOutlier, uniform, 0);
      return mean(add(ce, mul(oe, lambda)));
    }
    const isInlier = compare('ge', labels, 0);
    return add(maskedMean(ce, isInlier), mul(maskedMean(uniform, isOutlier), lambda));
  });
}

/**
 * The OE repo's form with the inliers and the outliers in separate batches:
 * mean CE(inLogits, inTargets) + lambda * mean uniformCE(outLogits).
 */
export function outlierExposureLossSplit(inLogits: Tensor, inTargets: Tensor, outLogits: Tensor, opts: Pick<OutlierExposureOptions, 'lambda'> = {}): Tensor {
  const op = 'outlierExposureLossSplit';
  checkSplitBatches(op, inLogits, inTargets, outLogits);
  const lambda = opts.lambda ?? OE_DEFAULT_LAMBDA;
  checkNumber(op, 'lambda', lambda, 0);
  return scope(() => {
    const ce = crossEntropy(inLogits, inTargets);
    const oe = mean(uniformCrossEntropy(outLogits));
    return add(ce, mul(oe, lambda));
  });
}
