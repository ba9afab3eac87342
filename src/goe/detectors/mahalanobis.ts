/**
 * Mahalanobis detector (Lee, Lee, Lee and Shin, NeurIPS 2018) on penultimate features.
 *
 * Fit (float64, on the CPU, reading the features back once per batch): class means mu_c and the
 * tied covariance Sigma = (1/N) sum_i (f_i - mu_{y_i})(f_i - mu_{y_i})^T (the empirical covariance
 * of the class-centred features, as the paper's code fits it), plus a small ridge on the diagonal
 * so that dead (constant) features do not make it singular; then Sigma = L L^T (Cholesky) and
 * W = L^-1, so the precision is P = W^T W.
 *
 * Score (on the GPU): the minimum over classes of the squared distance
 *   D_c(f) = (f - mu_c)^T P (f - mu_c) = |W f - W mu_c|^2 = |g|^2 - 2 g . nu_c + |nu_c|^2,
 * with g = W f (one matmul) and nu_c = W mu_c precomputed. pytorch-ood reports 0.5 * min D_c
 * (the same ranking).
 *
 * Optional input perturbation (the paper's "input pre-processing"): x' = x - eps * sign(d/dx
 * D_chat(f(x))), chat the closest class, which moves x towards its class; then score x'.
 */
import {
  OpError,
  Tensor,
  add,
  compare,
  keep,
  matmul,
  min,
  mul,
  noGrad,
  scope,
  reshape,
  square,
  sum,
  tensor,
} from '../../engine/index.ts';
import { asTensorFn, type Batches, type Detector, type LabelledBatch, type TensorFn, type TensorModel } from './detector.ts';
import { cholesky, invertLower, NotPositiveDefiniteError } from './linalg.ts';
import { checkEps, perturbInput } from './perturb.ts';

/** Default ridge, relative to the mean variance (the mean of the covariance's diagonal). */
export const MAHALANOBIS_DEFAULT_RIDGE = 1e-6;

export interface MahalanobisOptions {
  /** Maps an input batch to features [N, D] (any rank >= 2 is flattened to [N, D]). */
  readonly features: TensorModel;
  /** Input perturbation size (default 0: none). Lee et al. tune it in {0, 0.0005, ..., 0.2}. */
  readonly eps?: number;
  /** Per-channel std of the input normalisation: the step becomes eps / std per channel. */
  readonly inputStd?: readonly number[];
  /** Parameters kept out of the perturbation's backward pass (see PerturbOptions.freeze). */
  readonly freeze?: readonly Tensor[];
  /** Ridge added to the covariance's diagonal, relative to its mean diagonal (default 1e-6). */
  readonly ridge?: number;
}

/** Fitted statistics (float64). */
export interface MahalanobisStats {
  readonly classes: number;
  readonly dim: number;
  /** Class means, [classes, dim] row-major. */
  readonly means: Float64Array;
  /** Tied covariance with the ridge added, [dim, dim]. */
  readonly covariance: Float64Array;
  /** Samples per class. */
  readonly counts: Float64Array;
}

/** One-pass float64 accumulator of per-class sums and the scatter matrix around a shift. */
class MomentAccumulator {
  readonly dim: number;
  private shift: Float64Array | null = null;
  private readonly sums = new Map<number, Float64Array>();
  private readonly counts = new Map<number, number>();
  private readonly scatter: Float64Array;
  total = 0;

  constructor(dim: number) {
    this.dim = dim;
    this.scatter = new Float64Array(dim * dim);
  }

  add(features: ArrayLike<number>, labels: ArrayLike<number>): void {
    const d = this.dim;
    const n = labels.length;
    if (features.length !== n * d) throw new OpError('mahalanobis.fit', `${features.length} feature values for ${n} labels of dimension ${d}`);
    if (!this.shift) {
      // Accumulating around the first batch's mean keeps the one-pass scatter accurate.
      this.shift = new Float64Array(d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) this.shift[j] += features[i * d + j] / n;
    }
    const c = this.shift;
    const v = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0) throw new OpError('mahalanobis.fit', `labels must be class indices >= 0, got ${y} at position ${i}`);
      let s = this.sums.get(y);
      if (!s) {
        s = new Float64Array(d);
        this.sums.set(y, s);
      }
      this.counts.set(y, (this.counts.get(y) ?? 0) + 1);
      for (let j = 0; j < d; j++) {
        v[j] = features[i * d + j] - c[j];
        s[j] += v[j];
      }
      const m = this.scatter;
      for (let j = 0; j < d; j++) {
        const vj = v[j];
        if (vj === 0) continue;
        const row = j * d;
        for (let k = j; k < d; k++) m[row + k] += vj * v[k];
      }
    }
    this.total += n;
  }

  finish(ridge: number): MahalanobisStats {
    const d = this.dim;
    if (this.total === 0 || !this.shift) throw new OpError('mahalanobis.fit', 'no training samples');
    const classes = Math.max(...this.counts.keys()) + 1;
    const means = new Float64Array(classes * d);
    const counts = new Float64Array(classes);
    const cov = new Float64Array(d * d);
    // within-class scatter = sum_i v_i v_i^T - sum_c s_c s_c^T / n_c   (v = f - shift)
    for (let j = 0; j < d; j++) for (let k = j; k < d; k++) cov[j * d + k] = this.scatter[j * d + k];
    for (let y = 0; y < classes; y++) {
      const n = this.counts.get(y);
      const s = this.sums.get(y);
      if (!n || !s) throw new OpError('mahalanobis.fit', `class ${y} has no training samples (labels must cover 0..${classes - 1})`);
      counts[y] = n;
      for (let j = 0; j < d; j++) means[y * d + j] = this.shift[j] + s[j] / n;
      for (let j = 0; j < d; j++) {
        const sj = s[j] / n;
        for (let k = j; k < d; k++) cov[j * d + k] -= sj * s[k];
      }
    }
    let trace = 0;
    for (let j = 0; j < d; j++) {
      for (let k = j; k < d; k++) {
        const val = cov[j * d + k] / this.total;
        cov[j * d + k] = val;
        cov[k * d + j] = val;
      }
      trace += cov[j * d + j];
    }
    const r = (ridge * trace) / d;
    for (let j = 0; j < d; j++) cov[j * d + j] += r;
    return { classes, dim: d, means, covariance: cov, counts };
  }
}

function flattenFeatures(op: string, f: Tensor): Tensor {
  if (f.rank < 2) throw new OpError(op, `features must have shape [N, D], got [${f.shape.join(', ')}]`);
  if (f.dtype !== 'f32') throw new OpError(op, `features must be f32, got ${f.dtype}`);
  return f.rank === 2 ? f : reshape(f, [f.shape[0], -1]);
}

export class MahalanobisDetector implements Detector {
  readonly name: string;
  private readonly opts: MahalanobisOptions;
  /** options.features as a function. */
  private readonly features: TensorFn;
  private readonly eps: number;
  private stats: MahalanobisStats | null = null;
  /** GPU constants: W^T [D, D], (W mu_c)^T [D, C], |W mu_c|^2 [C]. */
  private wT: Tensor | null = null;
  private nuT: Tensor | null = null;
  private nuSq: Tensor | null = null;

  constructor(opts: MahalanobisOptions) {
    this.features = asTensorFn('mahalanobis', 'features', opts?.features);
    this.opts = opts;
    this.eps = opts.eps ?? 0;
    checkEps('mahalanobis', this.eps);
    const ridge = opts.ridge ?? MAHALANOBIS_DEFAULT_RIDGE;
    if (!(Number.isFinite(ridge) && ridge >= 0)) throw new OpError('mahalanobis', `ridge must be a finite number >= 0, got ${ridge}`);
    this.name = this.eps > 0 ? `Mahalanobis(eps=${this.eps})` : 'Mahalanobis';
  }

  /** The fitted statistics (float64), or null before fit. */
  get fitted(): MahalanobisStats | null {
    return this.stats;
  }

  /** Extracts features batch by batch (no graph) and fits on them. */
  async fit(data: Batches<LabelledBatch>): Promise<void> {
    let acc: MomentAccumulator | null = null;
    for await (const batch of data) {
      const f = noGrad(() => scope(() => flattenFeatures('mahalanobis.fit', this.features(batch.input))));
      let values: Float32Array;
      try {
        values = (await f.data()) as Float32Array;
      } finally {
        f.dispose();
      }
      const labels = batch.labels instanceof Tensor ? await batch.labels.data() : batch.labels;
      acc ??= new MomentAccumulator(values.length / Math.max(labels.length, 1));
      acc.add(values, labels);
    }
    if (!acc) throw new OpError('mahalanobis.fit', 'no training batches');
    this.setStats(acc.finish(this.opts.ridge ?? MAHALANOBIS_DEFAULT_RIDGE));
  }

  /** Fits on features already on the host: `features` is [N, dim] row-major. */
  fitFeatures(features: ArrayLike<number>, labels: ArrayLike<number>, dim: number): void {
    const acc = new MomentAccumulator(dim);
    acc.add(features, labels);
    this.setStats(acc.finish(this.opts.ridge ?? MAHALANOBIS_DEFAULT_RIDGE));
  }

  private setStats(stats: MahalanobisStats): void {
    const { classes: c, dim: d, means, covariance } = stats;
    let w: Float64Array;
    try {
      w = invertLower(cholesky(covariance, d), d);
    } catch (e) {
      if (e instanceof NotPositiveDefiniteError) {
        throw new OpError('mahalanobis.fit', `the tied covariance of the ${d}-dimensional features is singular (${e.message}); raise options.ridge`);
      }
      throw e;
    }
    const wT = new Float32Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) wT[j * d + i] = w[i * d + j];
    const nuT = new Float32Array(d * c);
    const nuSq = new Float32Array(c);
    for (let k = 0; k < c; k++) {
      let sq = 0;
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j <= i; j++) s += w[i * d + j] * means[k * d + j];
        nuT[i * c + k] = s;
        sq += s * s;
      }
      nuSq[k] = sq;
    }
    this.dispose();
    this.stats = stats;
    this.wT = keep(tensor(wT, [d, d]));
    this.nuT = keep(tensor(nuT, [d, c]));
    this.nuSq = keep(tensor(nuSq, [c]));
  }

  /** Squared Mahalanobis distances [N, C] of features [N, D] to every class mean (differentiable). */
  distances(features: Tensor): Tensor {
    if (!this.stats || !this.wT || !this.nuT || !this.nuSq) throw new OpError('mahalanobis', 'call fit() (or fitFeatures()) before scoring');
    const { wT, nuT, nuSq } = this;
    const dim = this.stats.dim;
    return scope(() => {
      const f = flattenFeatures('mahalanobis', features);
      if (f.shape[1] !== dim) {
        throw new OpError('mahalanobis', `features of shape [${features.shape.join(', ')}] do not have the fitted dimension ${dim}`);
      }
      const g = matmul(f, wT);
      const gSq = sum(square(g), -1, true);
      const cross = mul(matmul(g, nuT), -2);
      return add(add(cross, gSq), nuSq);
    });
  }

  /** Outlier score [N] of features [N, D]: min_c D_c (no perturbation). */
  scoreFeatures(features: Tensor): Tensor {
    return noGrad(() => scope(() => min(this.distances(features), -1)));
  }

  /** Sum over the batch of the distance to each sample's closest class: the perturbation loss. */
  closestClassLoss(features: Tensor): Tensor {
    return scope(() => {
      const d = this.distances(features);
      const closest = noGrad(() => compare('eq', d, min(d, -1, true)));
      return sum(mul(d, closest));
    });
  }

  /** The perturbed input x' = x - eps * sign(d D_chat / dx) / std (a new tensor; x is untouched). */
  perturb(input: Tensor): Tensor {
    if (!this.stats) throw new OpError('mahalanobis', 'call fit() (or fitFeatures()) before scoring');
    return perturbInput('mahalanobis', input, (xl) => this.closestClassLoss(this.features(xl)), {
      eps: this.eps,
      inputStd: this.opts.inputStd,
      freeze: this.opts.freeze,
    });
  }

  score(input: Tensor): Tensor {
    if (!this.stats) throw new OpError('mahalanobis', 'call fit() (or fitFeatures()) before scoring');
    const x = this.eps > 0 ? this.perturb(input) : input;
    try {
      return noGrad(() => scope(() => this.scoreFeatures(this.features(x))));
    } finally {
      if (x !== input) x.dispose();
    }
  }

  /** Frees the GPU constants (a later fit makes new ones). */
  dispose(): void {
    this.wT?.dispose();
    this.nuT?.dispose();
    this.nuSq?.dispose();
    this.wT = this.nuT = this.nuSq = null;
  }
}

/** Shorthand for `new MahalanobisDetector(opts)`. */
export function mahalanobisDetector(opts: MahalanobisOptions): MahalanobisDetector {
  return new MahalanobisDetector(opts);
}
