/**
 * A phase's checkpoint files for --resume: the last two are kept (`checkpoint.safetensors` and
 * `checkpoint.prev.safetensors`), and resuming takes the newest one that reads back whole.
 *
 * - Saving moves the current file to the previous name, then writes the new one atomically
 *   (temporary file + rename): a crash in between leaves the previous one, which resume takes.
 * - Every safetensors file written here carries CRC-32s of its tensors and metadata
 *   (src/engine/io/safetensors.ts) and is verified on load, so a flipped bit is caught before
 *   anything is restored (the engine's loaders validate a whole file before changing the model).
 * - Resuming: a corrupt newest file is said in one line and the previous one is used; when no kept
 *   file is readable the phase restarts from its beginning (one line). Checkpoints written before
 *   checksums existed load unverified, as before.
 */
import { existsSync, renameSync } from 'node:fs';
import { SafetensorsError } from '../../engine/index.ts';
import type { LogFn } from './log.ts';

/** Where the checkpoint before `path` is kept: a.safetensors -> a.prev.safetensors (else a.prev). */
export function previousCheckpoint(path: string): string {
  return path.endsWith('.safetensors') ? `${path.slice(0, -'.safetensors'.length)}.prev.safetensors` : `${path}.prev`;
}

/** Writes a checkpoint with `write` (an atomic writer), keeping the one it replaces as the previous. */
export async function saveKeepingPrevious(path: string, write: (path: string) => Promise<void>): Promise<void> {
  if (existsSync(path)) renameSync(path, previousCheckpoint(path));
  await write(path);
}

/** True for a file that does not read back whole: a structural or checksum failure, or unreadable JSON metadata. */
export function isCorruptCheckpoint(e: unknown): boolean {
  return e instanceof SafetensorsError || e instanceof SyntaxError;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/^safetensors: /, '');
}

/**
 * Restores the newest good checkpoint of a phase (`path`, else the previous one kept beside it)
 * with `load`, which must validate the whole file before changing anything. Returns the file used,
 * or null when none exists or none is readable (the phase starts over; said in `log`). Errors other
 * than corruption (a checkpoint of another phase, another model) are thrown as they are.
 */
export async function loadNewestGoodCheckpoint<T>(path: string, load: (file: string) => Promise<T>, log: LogFn, phase: string): Promise<{ file: string; value: T } | null> {
  const prev = previousCheckpoint(path);
  const kept = [path, prev].filter((f) => existsSync(f));
  if (kept.length === 0) return null;
  if (kept[0] === prev) log(`[${phase}] ${path} is missing (interrupted while saving?); resuming from the previous checkpoint ${prev}`);
  for (const [i, file] of kept.entries()) {
    try {
      return { file, value: await load(file) };
    } catch (e) {
      if (!isCorruptCheckpoint(e)) throw e;
      const next = kept[i + 1];
      log(`[${phase}] ${file} is corrupt (${firstLine(e)}); ${next !== undefined ? `resuming from the previous checkpoint ${next}` : 'no good checkpoint is left: the phase restarts from its beginning'}`);
    }
  }
  return null;
}
