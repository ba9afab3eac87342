/**
 * The hook through which batches reach the engine. The engine provides a function that takes a
 * typed array and a shape and returns its tensor (e.g. one queue.writeBuffer into a GPU buffer);
 * the loader hands it views of its shared batch slots, so nothing is copied on the way. Upload
 * must finish reading the array before the loader's iterator is advanced (writeBuffer copies at
 * call time, so calling it is enough). The arrays are views of SharedArrayBuffers: give writeBuffer the
 * view (Dawn rejects a bare SharedArrayBuffer as its data argument).
 */
import type { Batch } from './loader.ts';

/** Upload float data (images), e.g. `(data, shape) => engine.tensor(data, shape)`. */
export type Upload<T> = (data: Float32Array, shape: readonly number[]) => T;
/** Upload int32 data (token ids, labels). */
export type UploadInt<T> = (data: Int32Array, shape: readonly number[]) => T;

export interface UploadHooks<T> {
  float: Upload<T>;
  /** For token batches and labels; without it labels stay on the CPU as Int32Array. */
  int?: UploadInt<T>;
}

export interface UploadedBatch<T> {
  /** All samples (inliers then outliers). */
  x: T;
  /** Labels (-1 for outliers): a tensor if an int hook was given, else the Int32Array view. */
  y: T | Int32Array;
  nIn: number;
  nOut: number;
}

export interface UploadedSeparate<T> {
  inliers: { x: T; y: T | Int32Array };
  /** Undefined when the batch has no outliers. */
  outliers: { x: T } | undefined;
}

function put<T>(data: Float32Array | Int32Array, shape: readonly number[], hooks: UploadHooks<T>): T {
  if (data instanceof Float32Array) return hooks.float(data, shape);
  if (hooks.int === undefined) throw new TypeError('uploadBatch: token batches need an int upload hook');
  return hooks.int(data, shape);
}

/** Labelled form: one tensor for the whole batch, outliers labelled -1 (pytorch-ood's OutlierExposureLoss). */
export function uploadBatch<T>(batch: Batch, hooks: UploadHooks<T>): UploadedBatch<T> {
  return {
    x: put(batch.x, batch.shape, hooks),
    y: hooks.int ? hooks.int(batch.y, [batch.y.length]) : batch.y,
    nIn: batch.nIn,
    nOut: batch.nOut,
  };
}

/** Separate form: inliers and outliers as two tensors (the OE repository's loss). */
export function uploadSeparate<T>(batch: Batch, hooks: UploadHooks<T>): UploadedSeparate<T> {
  const inl = batch.inliers;
  return {
    inliers: { x: put(inl.x, inl.shape, hooks), y: hooks.int ? hooks.int(inl.y, [inl.y.length]) : inl.y },
    outliers: batch.nOut > 0 ? { x: put(batch.outliers.x, batch.outliers.shape, hooks) } : undefined,
  };
}
