/**
 * The one interface every outlier sampler implements: `sample(n, seed)` gives a set of n outliers
 * as a data-loader source (uint8 NCHW images, or int32 token ids [N, L]), reproducible from the
 * seed, with a description of how it was made.
 */
import type { Source } from '../../data/index.ts';

export interface OutlierSet {
  /** Short name for logs and reports ("uniform-noise", "biggan(sigma2=50)", ...). */
  name: string;
  /** The outliers, unlabelled (labels null): uint8 CHW images or int32 token ids. */
  source: Source;
  /** How the set was made (sampler, parameters, seed): saved next to the set. */
  info: Record<string, unknown>;
  /** Class labels the generator was conditioned on (class-conditional generators). */
  classes?: Int32Array;
  /** For text: the generated lines, before tokenisation. */
  texts?: string[];
}

export interface OutlierSampler {
  readonly name: string;
  /** n outliers (n <= 0 or Infinity: every sample for finite sources); the same seed gives the same set. */
  sample(n: number, seed: number): Promise<OutlierSet>;
}
