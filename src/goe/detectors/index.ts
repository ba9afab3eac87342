/**
 * OOD detectors: one interface (fit if needed, then score a batch; higher = more OOD), scores
 * from logits (MSP, Energy, MaxLogit, Entropy), ODIN, and Mahalanobis on features, plus
 * `scoreAll` that reads the scores back once per batch for the metrics.
 */
export { scoreAll, asTensorFn, type Batches, type Detector, type LabelledBatch, type TensorFn, type TensorModel } from './detector.ts';
export {
  mspScore,
  energyScore,
  maxLogitScore,
  entropyScore,
  mspDetector,
  energyDetector,
  maxLogitDetector,
  entropyDetector,
  type LogitDetectorOptions,
} from './logit-scores.ts';
export { odinDetector, odinPerturb, odinLoss, ODIN_DEFAULT_EPS, ODIN_DEFAULT_TEMPERATURE, type OdinOptions } from './odin.ts';
export {
  MahalanobisDetector,
  mahalanobisDetector,
  MAHALANOBIS_DEFAULT_RIDGE,
  type MahalanobisOptions,
  type MahalanobisStats,
} from './mahalanobis.ts';
export { perturbInput, inputGradient, signOf, type PerturbOptions } from './perturb.ts';
export { cholesky, invertLower, spdInverse, NotPositiveDefiniteError } from './linalg.ts';
