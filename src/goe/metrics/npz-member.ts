/**
 * The members of an in-memory .npz score file (a zip of .npy files: np.savez stores them,
 * np.savez_compressed deflates them), read through the project's zip reader (src/data/zip.ts:
 * bounds-checked, inflate capped, CRC-checked); its errors become ScoreFileErrors naming the file.
 */
import { DataError } from '../../data/errors.ts';
import { zipDirectory, zipMemberBytes, type ZipMember } from '../../data/zip.ts';
import { ScoreFileError } from './score-file-error.ts';

function asScoreFileError<T>(source: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
    const prefix = `${source}: `;
    throw new ScoreFileError(source, e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message);
  }
}

function members(bytes: Uint8Array, source: string): ZipMember[] {
  return asScoreFileError(source, () => zipDirectory(bytes, source)).filter((m) => !m.isDirectory);
}

/** Array names of an .npz (member names without ".npy"). */
export function npzKeys(bytes: Uint8Array, source: string): string[] {
  return members(bytes, source).map((m) => m.name.replace(/\.npy$/, ''));
}

/** The bytes of the .npy member `key` (with or without ".npy"), inflated within its declared size and CRC-checked. */
export function npzMember(bytes: Uint8Array, key: string, source: string): Uint8Array {
  const all = members(bytes, source);
  const m = all.find((x) => x.name === `${key}.npy` || x.name === key);
  if (m === undefined) {
    throw new ScoreFileError(source, `no array '${key}' in the .npz (has: ${all.map((x) => x.name.replace(/\.npy$/, '')).join(', ')})`);
  }
  return asScoreFileError(source, () => zipMemberBytes(bytes, m, source));
}
