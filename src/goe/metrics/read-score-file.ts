/**
 * Reading a score file from disk (Node only; kept out of index.ts so the metrics stay usable in
 * a browser). The format follows the content and extension: `.npy` magic -> NumPy array,
 * `.json` -> JSON array, anything else -> one number per line. One array of an `.npz` is named
 * `FILE.npz:KEY` (e.g. a run's `scores.npz:in__MSP`); a bare `FILE.npz` must hold one array.
 */
import { readFileSync } from 'node:fs';
import { isNpy, parseNpyScores } from './npy.ts';
import { npzKeys, npzMember } from './npz-member.ts';
import { ScoreFileError } from './score-file-error.ts';
import { parseScoreJson, parseScoreLines } from './score-text.ts';

/** `FILE.npz:KEY` split into the file and the key; any other path has no key. */
export function splitNpzKey(path: string): { file: string; key: string | undefined } {
  const match = /^(.*\.npz):([^/\\]+)$/i.exec(path);
  return match === null ? { file: path, key: undefined } : { file: match[1]!, key: match[2]! };
}

/** The file's scores as float64. Throws a ScoreFileError (naming the path) on any problem. */
export function readScoreFile(path: string): Float64Array {
  const { file, key } = splitNpzKey(path);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new ScoreFileError(file, `cannot read file: ${(error as Error).message}`);
  }
  if (file.toLowerCase().endsWith('.npz')) {
    if (key !== undefined) return parseNpyScores(npzMember(bytes, key, file), path);
    const keys = npzKeys(bytes, file);
    if (keys.length !== 1) throw new ScoreFileError(file, `the .npz holds ${keys.length} arrays; name one as ${file}:KEY (has: ${keys.join(', ')})`);
    return parseNpyScores(npzMember(bytes, keys[0]!, file), `${file}:${keys[0]}`);
  }
  if (isNpy(bytes) || file.toLowerCase().endsWith('.npy')) return parseNpyScores(bytes, file);
  const text = new TextDecoder('utf-8').decode(bytes);
  if (file.toLowerCase().endsWith('.json')) return parseScoreJson(text, file);
  return parseScoreLines(text, file);
}
