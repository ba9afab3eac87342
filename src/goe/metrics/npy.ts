/**
 * A minimal reader for NumPy `.npy` files holding a 1-D float32 or float64 little-endian array,
 * which is how detector scores are usually saved from Python (`np.save("scores.npy", s)`).
 * Anything else (other dtypes, big-endian, more dimensions) is rejected with a message saying
 * what the file holds, rather than guessed at. Format: numpy.lib.format, versions 1.0 to 3.0.
 */
import { parseNpyHeaderText } from '../../data/npy-header.ts';
import { ScoreFileError } from './score-file-error.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** True when the bytes start with the .npy magic string. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * The scores of a 1-D `<f4` or `<f8` .npy file as float64. `source` names the file in errors.
 * Throws a ScoreFileError on a malformed header, an unsupported dtype or shape, truncated data,
 * an empty array, or a NaN / infinite element (naming its 0-based index).
 */
export function parseNpyScores(bytes: Uint8Array, source: string): Float64Array {
  if (!isNpy(bytes) || bytes.length < 10) throw new ScoreFileError(source, 'not a .npy file (missing the \\x93NUMPY magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new ScoreFileError(source, `unsupported .npy format version ${major}.${bytes[7]}`);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerStart = 8 + lengthBytes;
  if (bytes.length < headerStart) throw new ScoreFileError(source, 'truncated .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (bytes.length < dataStart) throw new ScoreFileError(source, 'truncated .npy header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const dict = parseNpyHeaderText(header, (message) => {
    throw new ScoreFileError(source, message);
  });
  const descr = typeof dict.descr === 'string' ? dict.descr : 'a structured dtype';
  const itemSize = descr === '<f4' ? 4 : descr === '<f8' ? 8 : 0;
  if (itemSize === 0) {
    throw new ScoreFileError(source, `.npy dtype '${descr}' is not supported; save scores as little-endian float32 or float64 ('<f4' / '<f8')`);
  }
  const shape = dict.shape;
  if (shape.length !== 1) {
    throw new ScoreFileError(source, `.npy array has shape (${shape.join(', ')}); expected a 1-D array of scores`);
  }
  const count = shape[0]!;
  if (count === 0) throw new ScoreFileError(source, 'no scores: the .npy array is empty');
  if (bytes.length - dataStart < count * itemSize) {
    throw new ScoreFileError(source, `truncated .npy data: header says ${count} values of ${itemSize} bytes, file has ${bytes.length - dataStart} data bytes`);
  }

  const scores = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const offset = dataStart + i * itemSize;
    const value = itemSize === 4 ? view.getFloat32(offset, true) : view.getFloat64(offset, true);
    if (!Number.isFinite(value)) {
      throw new ScoreFileError(source, `element ${i} is ${Number.isNaN(value) ? 'NaN' : 'infinite'}; scores must be finite numbers`);
    }
    scores[i] = value;
  }
  return scores;
}
