/** Outlier samplers: one interface (`sample(n, seed)`), the generators of the paper, its noise baselines, files. */
export type { OutlierSampler, OutlierSet } from './types.ts';
export { ImageNoiseSampler, TokenNoiseSampler, type ImageNoiseKind, type ImageNoiseOptions, type TokenNoiseOptions } from './noise.ts';
export { LatentSampler, sampleLatent, sampleClasses, type ConditionalImageGenerator, type LatentSamplerOptions } from './latent.ts';
export { LmSampler, empiricalEntropy, type LmSamplerOptions } from './lm.ts';
export { FileSampler, saveOutlierSet, type FileSamplerOptions } from './file.ts';
