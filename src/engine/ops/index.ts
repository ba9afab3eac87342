/** Every op family, re-exported for the public API. */
export * from './creation.ts';
export * from './movement.ts';
export * from './binary.ts';
export * from './reduce.ts';
export * from './layernorm.ts';
export * from './conv.ts';
export * from './matmul.ts';
export * from './attention.ts';
export * from './unary.ts';
export * from './softmax.ts';
export * from './batchnorm.ts';
export * from './random.ts';
export * from './pool.ts';
export * from './shape.ts';
export * from './dropout.ts';
export * from './spectral.ts';
