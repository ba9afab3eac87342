/** Optimizers, gradient clipping and learning-rate schedules. */
export { Optimizer, zeroGradOf, type ParamGroup, type ParamsArg, type OptimizerState } from './optimizer.ts';
export { SGD, type SGDOptions } from './sgd.ts';
export { Adam, AdamW, type AdamOptions } from './adam.ts';
export { clipGradNorm } from './clip.ts';
export { DivergenceGuard, DivergenceError, trainingState, type DivergenceGuardOptions, type GoodCheckpoint } from './divergence.ts';
export { LRScheduler, StepLR, MultiStepLR, CosineAnnealingLR, LambdaLR, ReduceLROnPlateau, type Schedulable, type PlateauOptions } from './lr-scheduler.ts';
