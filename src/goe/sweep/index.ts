/**
 * Sweeps over a sampling parameter (paper Fig. 2, 3, 5), convergence curves (Fig. 4), their
 * statistics and plots. Node only (files, child processes, sharp).
 */
export * from './plan.ts';
export * from './run.ts';
export * from './collect.ts';
export * from './stats.ts';
export * from './curve.ts';
export * from './plots.ts';
export * from './recipes.ts';
