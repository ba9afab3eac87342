/**
 * The ImageNet fine-tuning step in micro-batches: a batch of 64 inliers + 64 outliers at 224x224
 * does not fit every device (ViT-B/16's MLP activations alone are 128 x 197 x 3072 floats, 310 MB,
 * above lavapipe's 128 MiB storage binding), so the batch runs as micro-batches whose gradients
 * accumulate in the parameters' .grad before one optimizer step.
 *
 * The rule that makes it the same step: pytorch-ood's OE loss is one mean over the batch,
 * L = (1/B) sum_i l_i (l_i = CE for an inlier, lambda * the uniform term for an outlier), so
 * L = sum_k (b_k / B) L_k with L_k the same loss over micro-batch k of b_k samples. Weighting each
 * micro-batch's loss by b_k / B and summing their gradients gives grad L exactly (up to float
 * rounding) for a model without cross-sample operations (ViT: LayerNorm works per token). A
 * ResNet's BatchNorm in training mode takes its statistics per micro-batch instead, as gradient
 * accumulation does in PyTorch: there it is the usual approximation, not the same step
 * (test/goe/imagenet.test.ts checks the ViT case).
 */
import { add, backward, mul, noGrad, scope, tensor, type Tensor } from '../../engine/index.ts';
import { outlierExposureLoss } from '../losses/index.ts';
import type { Classifier } from '../train/loop.ts';

export interface AccumulateOptions {
  /** Weight of the OE term (pytorch-ood's alpha, 0.5). */
  lambda: number;
  /** Samples per forward (>= 1); the batch runs in ceil(B / microBatch) pieces. */
  microBatch: number;
}

/**
 * Accumulates into .grad the gradient of the batch's OE loss (x: float32 [B, ...shape], labels
 * [B], -1 for outliers), micro-batch by micro-batch; returns the batch's loss (a GPU scalar,
 * nothing read back), owned like any op's result: by the enclosing scope, else by the caller.
 * The caller zeroes the gradients before and steps the optimizer after.
 */
export function accumulateOeGradients(model: Classifier, x: Float32Array, shape: readonly number[], labels: Int32Array, opts: AccumulateOptions): Tensor {
  const B = shape[0]!;
  if (!(B >= 1) || labels.length !== B) throw new RangeError(`accumulateOeGradients: ${labels.length} labels for a batch of ${B}`);
  if (!Number.isInteger(opts.microBatch) || opts.microBatch < 1) throw new RangeError(`accumulateOeGradients: microBatch must be a positive integer, got ${opts.microBatch}`);
  const per = x.length / B;
  return scope(() => {
    let total: Tensor | null = null;
    for (let s = 0; s < B; s += opts.microBatch) {
      const m = Math.min(opts.microBatch, B - s);
      // each micro-batch's graph is freed at the end of its scope; its weighted loss, detached, moves out
      const part = scope(() => {
        const xb = tensor(x.subarray(s * per, (s + m) * per), [m, ...shape.slice(1)]);
        const yb = tensor(labels.subarray(s, s + m), [m], 'i32');
        const loss = outlierExposureLoss(model.forward(xb), yb, { lambda: opts.lambda, averaging: 'mixed' });
        const weighted = mul(loss, m / B);
        backward(weighted);
        return noGrad(() => mul(weighted, 1));
      });
      const prev: Tensor | null = total;
      total = prev === null ? part : noGrad(() => add(prev, part));
    }
    return total!;
  });
}

/** The largest micro-batch (<= batch) whose biggest activation fits the device's storage binding. */
export function planMicroBatch(batch: number, bytesPerSample: number, maxBindingBytes: number): number {
  if (!(bytesPerSample > 0)) return batch;
  return Math.max(1, Math.min(batch, Math.floor(maxBindingBytes / bytesPerSample)));
}

/** Bytes of the largest single activation one 224x224 sample makes in the classifier's forward. */
export function largestActivationBytes(spec: { kind: 'vit'; vit: { imageSize?: number; patchSize?: number; mlpDim?: number; hiddenDim?: number } } | { kind: 'resnet'; baseWidth: number }): number {
  if (spec.kind === 'vit') {
    const o = spec.vit;
    const seq = (o.imageSize! / o.patchSize!) ** 2 + 1;
    return 4 * seq * Math.max(o.mlpDim!, 3 * o.hiddenDim!);
  }
  // ResNet: conv1's base x 112 x 112 output per sample (layer1's 4 base x 56 x 56 output is as large)
  return 4 * spec.baseWidth * 112 * 112;
}
