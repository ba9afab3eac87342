/**
 * Reading a score file from disk (Node only; kept out of index.ts so the metrics stay usable in
 * a browser). The format follows the content and extension: `.npy` magic -> NumPy array,
 * `.json` -> JSON array, anything else -> one number per line.
 */
import { readFileSync } from 'node:fs';
import { isNpy, parseNpyScores } from './npy.ts';
import { ScoreFileError } from './score-file-error.ts';
import { parseScoreJson, parseScoreLines } from './score-text.ts';

/** The file's scores as float64. Throws a ScoreFileError (naming the path) on any problem. */
export function readScoreFile(path: string): Float64Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ScoreFileError(path, `cannot read file: ${(error as Error).message}`);
  }
  if (isNpy(bytes) || path.toLowerCase().endsWith('.npy')) return parseNpyScores(bytes, path);
  const text = new TextDecoder('utf-8').decode(bytes);
  if (path.toLowerCase().endsWith('.json')) return parseScoreJson(text, path);
  return parseScoreLines(text, path);
}
