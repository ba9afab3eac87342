/**
 * The interface every OOD detector shares: fit (when the method needs statistics of the
 * in-distribution training data), then score batches. A score is an outlier score: higher means
 * more likely out-of-distribution, the convention of src/goe/metrics.
 */
import { OpError, type Tensor } from '../../engine/index.ts';

/** One batch of in-distribution training data: inputs and their class labels. */
export interface LabelledBatch {
  readonly input: Tensor;
  /** Class indices in [0, C), one per sample (a host array or an i32/f32 tensor of shape [N]). */
  readonly labels: Tensor | ArrayLike<number>;
}

export type Batches<B> = Iterable<B> | AsyncIterable<B>;

/** Maps a batch of inputs to a tensor (logits [N, C], or features [N, D]). */
export type TensorFn = (x: Tensor) => Tensor;

/** What a detector runs on its inputs: a function, or a module (its `forward`), e.g. a WideResNet. */
export type TensorModel = TensorFn | { forward(x: Tensor): Tensor };

/** `model` as a function (a module's `forward`, bound to it); anything else is an OpError of `op`. */
export function asTensorFn(op: string, option: string, model: TensorModel | undefined): TensorFn {
  if (typeof model === 'function') return model;
  if (typeof model === 'object' && model !== null && typeof model.forward === 'function') return (x) => model.forward(x);
  throw new OpError(op, `options.${option} must be a function from inputs to a tensor, or a module with forward(x)`);
}

export interface Detector {
  readonly name: string;
  /** Fits the detector's statistics on in-distribution training data (only some detectors). */
  fit?(data: Batches<LabelledBatch>): Promise<void>;
  /**
   * Outlier scores [N] (f32, on the GPU; the caller owns and disposes them) of a batch of inputs.
   * Never reads back. Detectors that perturb the input run one backward pass inside.
   */
  score(input: Tensor): Tensor;
}

/**
 * Scores every batch and reads the scores back, once per batch, into one float64 array in batch
 * order (what the metrics take). Each score tensor is disposed after it is read; the batches are
 * not (they belong to the caller).
 */
export async function scoreAll(detector: Detector, batches: Batches<Tensor>): Promise<Float64Array> {
  const parts: Float32Array[] = [];
  let total = 0;
  for await (const batch of batches) {
    const s = detector.score(batch);
    try {
      if (s.rank !== 1 || s.shape[0] !== batch.shape[0]) {
        throw new Error(`scoreAll(${detector.name}): a batch of ${batch.shape[0]} inputs gave scores of shape [${s.shape.join(', ')}], expected [${batch.shape[0]}]`);
      }
      const d = (await s.data()) as Float32Array;
      parts.push(d);
      total += d.length;
    } finally {
      s.dispose();
    }
  }
  const out = new Float64Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
