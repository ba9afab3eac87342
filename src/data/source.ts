/**
 * Sources: plain, structured-clonable descriptions of a dataset that both the main thread and the
 * loader's worker threads can open. In-memory data lives in SharedArrayBuffers (shared, not copied,
 * with workers); file-backed data is named by path and byte offset and each thread reads it itself.
 */
import type { DecodeOptions } from './images.ts';

/** Memory order of one image sample: planar (CIFAR, GOE samples) or interleaved (TinyImages, decoded files). */
export type Layout = 'CHW' | 'HWC';
export type SampleDType = 'uint8' | 'float32' | 'int32';

interface SourceBase {
  /** Human-readable name used in messages (usually the file or folder). */
  name: string;
  /** Number of samples. */
  length: number;
  /** Logical shape of one sample: [C, H, W] for images whatever the layout, [L] for token sequences. */
  sampleShape: number[];
  /** Per-sample class labels, or null for unlabelled data (outliers). */
  labels: Int32Array | null;
  /** Class names, when the format records them. */
  classes?: string[];
}

/** Samples held in memory (shared with workers). */
export interface ArraySource extends SourceBase {
  kind: 'array';
  layout: Layout;
  dtype: SampleDType;
  data: Uint8Array | Float32Array | Int32Array;
  /**
   * Token sequences of their own lengths (int32 only): sample i is data[offsets[i], offsets[i + 1]),
   * and sampleShape is [the longest]. The loader left-pads every batch with `pad` to the batch's
   * longest sequence (the GOE notebooks' collate_batch), so no sequence is truncated.
   */
  offsets?: Int32Array;
  /** Padding id of a ragged token source (the notebooks pad with 0). */
  pad?: number;
}

/**
 * Random token sequences drawn afresh on every access, never stored (the GOE notebooks' noise
 * Dataset, whose __getitem__ calls torch.randint): ids uniform in [low, high). The loader draws
 * each from the stream of its batch position (seed, epoch, batch, position), so a run is
 * reproducible and resumable while every epoch sees new sequences.
 */
export interface RandomTokensSource extends SourceBase {
  kind: 'random-tokens';
  layout: 'CHW';
  dtype: 'int32';
  low: number;
  high: number;
  /** Seed of the draws (mixed with the loader's batch stream). */
  seed: number;
}

/** Samples read lazily by file offset from a C-order .npy array (or a stored .npz member). */
export interface NpySource extends SourceBase {
  kind: 'npy';
  layout: Layout;
  dtype: 'uint8' | 'float32';
  littleEndian: boolean;
  path: string;
  /** Byte offset of sample 0 in the file. */
  dataOffset: number;
}

/** Image files decoded on demand (PNG/JPEG), resized and centre-cropped to a fixed size. */
export interface ImageFilesSource extends SourceBase {
  kind: 'images';
  layout: 'HWC';
  dtype: 'uint8';
  files: string[];
  decode: DecodeOptions;
  /** 'throw': a file that fails to decode stops the loader; 'skip': it is replaced and reported. */
  onError: 'throw' | 'skip';
}

export type Source = ArraySource | NpySource | ImageFilesSource | RandomTokensSource;

/** Tokens in sample `idx` of a token source (its own length when ragged, else the sample width). */
export function tokenLength(s: Source, idx: number): number {
  if (s.kind === 'array' && s.offsets !== undefined) return s.offsets[idx + 1]! - s.offsets[idx]!;
  return s.sampleShape[0]!;
}

/** Number of scalar values in one sample. */
export function sampleSize(s: Pick<SourceBase, 'sampleShape'>): number {
  return s.sampleShape.reduce((a, b) => a * b, 1);
}

/** The same source with every label replaced (e.g. an OOD test set marked -1), or with labels dropped (null). */
export function withLabels<S extends Source>(s: S, labels: Int32Array | number | null): S {
  if (typeof labels === 'number') return { ...s, labels: new Int32Array(s.length).fill(labels) };
  if (labels !== null && labels.length !== s.length) {
    throw new RangeError(`withLabels: ${labels.length} labels for ${s.length} samples of ${s.name}`);
  }
  return { ...s, labels };
}

/** A source restricted to some of its samples (in the order given). */
export function subset<S extends Source>(s: S, indices: ArrayLike<number>): S {
  const n = indices.length;
  for (let i = 0; i < n; i++) {
    const k = indices[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= s.length) throw new RangeError(`subset: index ${k} out of range for ${s.name} (${s.length} samples)`);
  }
  const labels = s.labels === null ? null : Int32Array.from({ length: n }, (_, i) => s.labels![indices[i]!]!);
  if (s.kind === 'images') {
    return { ...s, length: n, labels, files: Array.from({ length: n }, (_, i) => s.files[indices[i]!]!) };
  }
  if (s.kind === 'random-tokens') return { ...s, length: n, labels }; // nothing stored: fewer draws
  if (s.kind === 'array' && s.offsets !== undefined) {
    const from = s.offsets;
    const offsets = new Int32Array(new SharedArrayBuffer((n + 1) * 4));
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + from[indices[i]! + 1]! - from[indices[i]!]!;
    const data = new Int32Array(new SharedArrayBuffer(offsets[n]! * 4));
    for (let i = 0; i < n; i++) data.set((s.data as Int32Array).subarray(from[indices[i]!]!, from[indices[i]! + 1]!), offsets[i]!);
    return { ...s, length: n, labels, data, offsets };
  }
  // Array and npy sources are copied into a compact shared array: subsets are small or one-off.
  const size = sampleSize(s);
  if (s.kind === 'array') {
    const Ctor = s.data.constructor as new (b: SharedArrayBuffer) => Uint8Array | Float32Array | Int32Array;
    const data = new Ctor(new SharedArrayBuffer(n * size * s.data.BYTES_PER_ELEMENT));
    for (let i = 0; i < n; i++) data.set(s.data.subarray(indices[i]! * size, (indices[i]! + 1) * size) as never, i * size);
    return { ...s, length: n, labels, data };
  }
  throw new TypeError(`subset of a lazily read .npy source (${s.name}) is not supported: load it with readNpy(..., { lazy: false }) first`);
}
