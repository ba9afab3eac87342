/**
 * The Node-only part of checkpoint I/O: reading files, and writing them atomically (a temporary
 * file in the same folder, flushed to disk, then renamed over the target), so a crash or a full
 * disk never leaves a half-written checkpoint under the real name.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { Module, LoadResult } from '../nn/module.ts';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile, type WritableTensor } from './safetensors.ts';
import { npzBytes, type NpyArrayIn } from './npy-write.ts';
import { checkpointToBytes, checkpointFromBytes, modelToSafetensors, loadModelFromSafetensors, type CheckpointParts, type RestoreOptions } from './checkpoint.ts';

/** Writes `bytes` to `path` via a temporary file and an atomic rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now().toString(36)}`);
  let fh;
  try {
    fh = await open(tmp, 'w');
    let off = 0;
    while (off < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
      off += bytesWritten;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw new Error(`could not write ${path}: ${(e as Error).message}`);
  }
  // Make the rename itself durable (best effort: not every platform can open a folder).
  try {
    const dir = await open(dirname(path), 'r');
    await dir.sync().catch(() => undefined);
    await dir.close();
  } catch {
    // ignored
  }
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`could not read ${path}: ${(e as Error).message}`);
  }
}

export async function saveSafetensorsFile(path: string, tensors: ReadonlyMap<string, WritableTensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

export async function loadSafetensorsFile(path: string, opts: { decodeHalf?: boolean } = {}): Promise<SafetensorsFile> {
  return parseSafetensors(await readFileBytes(path), { ...opts, source: path });
}

/** Saves model + optimizer + scheduler + RNG + metadata for resuming training. */
export async function saveCheckpoint(path: string, parts: CheckpointParts): Promise<void> {
  await writeFileAtomic(path, await checkpointToBytes(parts));
}

/** Restores a checkpoint written by `saveCheckpoint`; returns the caller's metadata. */
export async function loadCheckpoint(path: string, opts: RestoreOptions): Promise<{ meta: Record<string, unknown> }> {
  return checkpointFromBytes(await readFileBytes(path), { source: path, ...opts });
}

/** Saves a module's weights as a plain state-dict file (PyTorch-loadable). */
export async function saveModel(path: string, model: Module, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, await modelToSafetensors(model, metadata));
}

export async function loadModel(path: string, model: Module, strict = true): Promise<LoadResult> {
  return loadModelFromSafetensors(model, await readFileBytes(path), strict, path);
}

/** Writes arrays as an .npz (npy-write.ts) atomically, making its folder first: a reader never sees half a file. */
export async function saveNpz(path: string, arrays: Readonly<Record<string, NpyArrayIn>> | ReadonlyMap<string, NpyArrayIn>): Promise<void> {
  const bytes = npzBytes(arrays);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, bytes);
}
