/**
 * The engine's public API, free of any Node import (a browser build imports this module and
 * calls setPlatform with its own platform). Under Node, import index.ts instead.
 */
export { setPlatform, getPlatform, type Platform } from './platform.ts';
export { init, runtime, shutdown, isInitialised, type Runtime } from './runtime.ts';
export { capsOf, CAPS_PRESETS, describeCaps, fitsWorkgroup, subgroupRowsFit, restrictCaps, type Caps } from './caps.ts';
export { Device, type DeviceOptions, type AdapterChoice, type Kernel } from './device.ts';
export type { KernelTime } from './kernel-profile.ts';
export { KernelLoader, type KernelSpec } from './kernels.ts';
export { GpuError, NoAdapterError, OpError } from './errors.ts';
export { Tensor, Storage, scope, keep, empty, fromData as tensor, fromData, memoryStats, numel, type DType, type Shape } from './tensor.ts';
export { backward, noGrad, enableGrad, isGradEnabled, record, detach, GradNode } from './autograd.ts';
export * from './ops/index.ts';
import './tensor-methods.ts';
export * from './optim/index.ts';
export * from './nn/index.ts';
export * from './nn/conv.ts';
export * from './nn/norm.ts';
export { MultiheadAttention, type MultiheadAttentionCall } from './nn/attention.ts';
export { TransformerEncoderLayer, LayerNorm, PositionalEncoding, LearnedPositionalEmbedding, type TransformerEncoderLayerOptions } from './nn/transformer.ts';
export { GRU, type GRUOptions } from './nn/gru.ts';
export * from './io/index.ts';
