/**
 * Choosing the sampling parameter (sigma^2 for a BigGAN, T for an LM) without OOD data: what the
 * paper leaves open (its authors chose by looking at samples). Each criterion looks only at the
 * baseline classifier, held-out inliers and samples drawn at each value of a grid:
 *
 * - 'msp-quantile': tau = the q-quantile (default 0.05) of the baseline's maximum softmax
 *   probability (MSP) on held-out inliers; the chosen value is the smallest of the grid at which at
 *   least `fraction` (default 0.5) of the generated samples have an MSP below tau, i.e. the
 *   typical sample already looks less familiar to the classifier than 95% of real inliers.
 * - 'feature-band' (images): features are the baseline's globally pooled last feature maps
 *   (WRN intermediateForward, pytorch-ood's); d(x) = distance to the nearest class mean of the
 *   held-out inliers' features; tau = the q-quantile (default 0.95) of d on the inliers. The chosen
 *   value is the smallest whose median d lies in the band [tau, bandHigh * tau] (default 2): out
 *   of the inliers' region but near it; if no value's median falls in the band, the smallest one
 *   above tau (said in the evidence).
 *
 * - 'proxy-ood' (needs a sweep over the grid): the OE model fine-tuned at each value v_i scores
 *   held-out inliers against the outliers generated at the next value v_(i+1), a proxy OOD set it
 *   never trained on; the chosen value is the one whose model separates them best (MSP AUROC).
 *   The largest value has no next one and is not a candidate.
 *
 * Each keeps every number it decided on (the evidence table) for select.json.
 */

export interface CriterionRow {
  value: number;
  /** Samples scored at this value. */
  n: number;
  /** 'msp-quantile': median MSP of the samples and the fraction below tau; 'feature-band': median distance and the fraction beyond tau. */
  median: number;
  fraction: number;
  /** Whether this value meets the criterion. */
  meets: boolean;
  /** 'proxy-ood': the AUROC (MSP) of this value's OE model on held-out inliers against the next value's samples, and that value. */
  auroc?: number;
  proxy?: number;
}

export interface CriterionResult {
  criterion: string;
  description: string;
  /** The threshold(s) from the held-out inliers. */
  threshold: Record<string, number>;
  chosen: number;
  /** False when no value met the criterion and the fallback was taken (said in `note`). */
  reached: boolean;
  note?: string;
  rows: CriterionRow[];
}

/** The q-quantile of values (linear interpolation between order statistics, numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const a = Float64Array.from(values).sort();
  if (a.length === 0) throw new RangeError('quantile: no values');
  const pos = q * (a.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(a.length - 1, lo + 1);
  return a[lo]! + (a[hi]! - a[lo]!) * (pos - lo);
}

/** 'msp-quantile' from the inliers' MSPs and each grid value's sample MSPs (grid ascending). */
export function mspQuantileCriterion(inlierMsp: ArrayLike<number>, samples: readonly { value: number; msp: ArrayLike<number> }[], q = 0.05, fraction = 0.5): CriterionResult {
  const tau = quantile(inlierMsp, q);
  const rows: CriterionRow[] = samples.map((s) => {
    let below = 0;
    for (let i = 0; i < s.msp.length; i++) if (s.msp[i]! < tau) below++;
    const f = below / s.msp.length;
    return { value: s.value, n: s.msp.length, median: quantile(s.msp, 0.5), fraction: f, meets: f >= fraction };
  });
  const hit = rows.find((r) => r.meets);
  return {
    criterion: 'msp-quantile',
    description: `smallest value at which at least ${fraction * 100}% of the samples have a baseline MSP below the ${q}-quantile of its MSP on held-out inliers`,
    threshold: { quantile: q, tau, fraction },
    chosen: hit?.value ?? rows[rows.length - 1]!.value,
    reached: hit !== undefined,
    ...(hit === undefined ? { note: `no value of the grid reached it; the largest (${rows[rows.length - 1]!.value}) is taken: extend the grid` } : {}),
    rows,
  };
}

/** 'feature-band' from the inliers' and each grid value's distances to the nearest class mean (grid ascending). */
export function featureBandCriterion(inlierDistance: ArrayLike<number>, samples: readonly { value: number; distance: ArrayLike<number> }[], q = 0.95, bandHigh = 2): CriterionResult {
  const tau = quantile(inlierDistance, q);
  const rows: CriterionRow[] = samples.map((s) => {
    let beyond = 0;
    for (let i = 0; i < s.distance.length; i++) if (s.distance[i]! > tau) beyond++;
    const median = quantile(s.distance, 0.5);
    return { value: s.value, n: s.distance.length, median, fraction: beyond / s.distance.length, meets: median >= tau && median <= bandHigh * tau };
  });
  const inBand = rows.find((r) => r.meets);
  const above = rows.find((r) => r.median >= tau);
  const chosen = inBand ?? above ?? rows[rows.length - 1]!;
  return {
    criterion: 'feature-band',
    description: `smallest value whose samples' median feature distance to the nearest inlier class mean lies in [tau, ${bandHigh} tau], tau the ${q}-quantile of the held-out inliers' distances`,
    threshold: { quantile: q, tau, bandHigh: bandHigh * tau },
    chosen: chosen.value,
    reached: inBand !== undefined,
    ...(inBand === undefined ? { note: above !== undefined ? `no median fell in the band; the first value beyond tau (${above.value}) is taken` : `no value's median left the inliers' region; the largest is taken: extend the grid` } : {}),
    rows,
  };
}

/** Distance of each feature row to the nearest of the class means. features [n, d] row-major. */
export function nearestMeanDistance(features: Float32Array, n: number, d: number, means: Float64Array[]): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    for (const m of means) {
      let s = 0;
      for (let j = 0; j < d; j++) {
        const diff = features[i * d + j]! - m[j]!;
        s += diff * diff;
      }
      if (s < best) best = s;
    }
    out[i] = Math.sqrt(best);
  }
  return out;
}

/** Per-class means of feature rows (classes with no row are left out). */
export function classMeans(features: Float32Array, labels: Int32Array, d: number): Float64Array[] {
  const sums = new Map<number, { s: Float64Array; n: number }>();
  for (let i = 0; i < labels.length; i++) {
    const k = labels[i]!;
    const e = sums.get(k) ?? { s: new Float64Array(d), n: 0 };
    for (let j = 0; j < d; j++) e.s[j]! += features[i * d + j]!;
    e.n++;
    sums.set(k, e);
  }
  return [...sums.values()].map((e) => e.s.map((v) => v / e.n));
}

/** 'proxy-ood' from each value's AUROC against the next value's samples (grid ascending, the last without a row). */
export function proxyOodCriterion(rows: readonly { value: number; proxy: number; auroc: number; n: number; medianMsp: number }[]): CriterionResult {
  if (rows.length === 0) throw new RangeError('proxy-ood: needs at least two finished values of the sweep');
  const best = rows.reduce((a, b) => (b.auroc > a.auroc ? b : a));
  return {
    criterion: 'proxy-ood',
    description: "value whose OE model best separates held-out inliers from the next value's generated samples (MSP AUROC; the largest value has no proxy and is not a candidate)",
    threshold: {},
    chosen: best.value,
    reached: true,
    rows: rows.map((r) => ({ value: r.value, n: r.n, median: r.medianMsp, fraction: 0, meets: r.value === best.value, auroc: r.auroc, proxy: r.proxy })),
  };
}
