/** Modules, parameters and initialisers (PyTorch's names and defaults). */
export { Parameter, ArenaChunk, releaseParameterArena } from './parameter.ts';
