/**
 * The run folder's small JSON files (config.json, evaluation.json, summary.json, sidecars): written
 * atomically (a temporary file in the same folder, then a rename), so a crash never leaves half a
 * file under the real name; read back with a DataError naming the file when one is not whole JSON
 * (a truncated sidecar is a one-line input error, not a bare SyntaxError).
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DataError } from '../../data/index.ts';

/** Writes `text` to `path` through a temporary file and a rename. */
export function writeTextAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes `value` as indented JSON, atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeTextAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** Reads a JSON file; one that does not parse is a DataError naming it and saying what to do. */
export function readJsonFile<T>(path: string, remedy = 'delete it and run again to make it anew'): T {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new DataError(`is not whole JSON (${(e as Error).message}; truncated?): ${remedy}`, path);
  }
}
