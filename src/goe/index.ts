/**
 * The GOE layer's public API: OOD metrics, detectors, losses, outlier samplers, the training and
 * evaluation loops, and the paper's experiments.
 */
export * from './metrics/index.ts';
export * from './detectors/index.ts';
export * from './losses/index.ts';
export * from './samplers/index.ts';
export * from './train/index.ts';
export * from './experiments/index.ts';
