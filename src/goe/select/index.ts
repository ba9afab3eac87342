/** Choosing sigma^2 / T without OOD data (`goe select`, `--sigma2 auto`). */
export * from './criteria.ts';
export * from './select.ts';
