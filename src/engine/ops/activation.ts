/**
 * The activation codes kernels/activation.wgsl switches on (its ACT overrides), in one table:
 * matmul's and conv's fused epilogues and the unary ops apply the same WGSL functions, so a fused
 * epilogue gives the unary op's bits (test/engine/activation.test.ts).
 */
export const ACTIVATION_CODES = {
  none: 0,
  relu: 1,
  leaky_relu: 2,
  tanh: 3,
  sigmoid: 4,
  gelu: 5,
  gelu_tanh: 6,
} as const;

export type ActivationName = keyof typeof ACTIVATION_CODES;
export type ActivationCode = (typeof ACTIVATION_CODES)[ActivationName];
