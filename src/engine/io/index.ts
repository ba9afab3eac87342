/** Checkpoint formats (platform-free; the Node file functions are in node-files.ts). */
export { parseSafetensors, serializeSafetensors, toFloat32, crc32, SafetensorsError, ChecksumError, CHECKSUM_KEY, type SafeDType, type SafeData, type SafeTensor, type SafetensorsFile, type WritableTensor } from './safetensors.ts';
export { npyBytes, npzBytes, npyDescr, type NpyArrayIn, type NpyData } from './npy-write.ts';
export { checkpointToBytes, checkpointFromBytes, modelToSafetensors, loadModelFromSafetensors, CHECKPOINT_FORMAT, type CheckpointParts, type RestoreOptions, type Stateful } from './checkpoint.ts';
