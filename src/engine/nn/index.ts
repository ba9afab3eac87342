/** Modules, parameters and initialisers (PyTorch's names and defaults). */
export { Parameter, ArenaChunk, releaseParameterArena, copyValues } from './parameter.ts';
export { Module, type UnaryModule, type HostTensor, type StateSource, type LoadResult } from './module.ts';
export { Linear, Sequential, ModuleList, Identity, ReLU, LeakyReLU, Tanh, Sigmoid, GELU, Flatten, Dropout, Embedding } from './layers.ts';
export {
  calculateFanInAndFanOut, calculateGain, uniform_, normal_, constant_, zeros_, ones_, kaimingUniform_, kaimingNormal_,
  xavierUniform_, xavierNormal_, type Nonlinearity, type FanMode, type KaimingOptions,
} from './init.ts';
