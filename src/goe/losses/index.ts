/**
 * Training-time OOD losses on the engine (autograd through the engine's ops): Outlier Exposure in
 * the OE repo's and pytorch-ood's averagings, and energy-bounded learning.
 */
export {
  outlierExposureLoss,
  outlierExposureLossSplit,
  mixedBatchMasks,
  maskedMean,
  OE_DEFAULT_LAMBDA,
  type OeAveraging,
  type OutlierExposureOptions,
} from './outlier-exposure.ts';
export {
  energyBoundedLoss,
  energyBoundedLossMixed,
  energy,
  ENERGY_DEFAULT_ALPHA,
  ENERGY_DEFAULT_M_IN,
  ENERGY_DEFAULT_M_OUT,
  type EnergyBoundedOptions,
} from './energy-bounded.ts';
