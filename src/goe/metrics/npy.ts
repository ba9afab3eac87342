/**
 * Scores from NumPy `.npy` bytes: a 1-D little-endian float32 or float64 array, which is how
 * detector scores are usually saved from Python (`np.save("scores.npy", s)`). The file is read by
 * the data layer's .npy reader (the one reader: header, versions 1.0 to 3.0, Fortran order);
 * anything else (other dtypes, big-endian, more dimensions) is rejected with a message saying what
 * the file holds, rather than guessed at.
 */
import { decodeNpyData, parseNpyHeader, type NpyHeader } from '../../data/npy-decode.ts';
import { DataError } from '../../data/errors.ts';
import { ScoreFileError } from './score-file-error.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** True when the bytes start with the .npy magic string. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/** Runs a data-layer read, reporting its DataError as a ScoreFileError of `source`. */
function asScoreFile<T>(source: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof DataError)) throw error;
    const prefix = `${source}: `;
    throw new ScoreFileError(source, error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message);
  }
}

/**
 * The scores of a 1-D `<f4` or `<f8` .npy file as float64. `source` names the file in errors.
 * Throws a ScoreFileError on a malformed header, an unsupported dtype or shape, truncated data,
 * an empty array, or a NaN / infinite element (naming its 0-based index). Bytes after the data
 * are ignored.
 */
export function parseNpyScores(bytes: Uint8Array, source: string): Float64Array {
  const header: NpyHeader = asScoreFile(source, () => parseNpyHeader(bytes, source));
  if (header.descr !== '<f4' && header.descr !== '<f8') {
    throw new ScoreFileError(source, `.npy dtype '${header.descr}' is not supported; save scores as little-endian float32 or float64 ('<f4' / '<f8')`);
  }
  if (header.shape.length !== 1) {
    throw new ScoreFileError(source, `.npy array has shape (${header.shape.join(', ')}); expected a 1-D array of scores`);
  }
  const count = header.shape[0]!;
  if (count === 0) throw new ScoreFileError(source, 'no scores: the .npy array is empty');
  const data = bytes.subarray(header.headerLength, header.headerLength + count * header.itemSize);
  const values = asScoreFile(source, () => decodeNpyData(header, data, source)).data as Float32Array | Float64Array;
  const scores = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const value = values[i]!;
    if (!Number.isFinite(value)) {
      throw new ScoreFileError(source, `element ${i} is ${Number.isNaN(value) ? 'NaN' : 'infinite'}; scores must be finite numbers`);
    }
    scores[i] = value;
  }
  return scores;
}
