/**
 * Generated outlier sets as the paper's samples-50.0.npz is laid out: "x" uint8 NCHW, plus "y"
 * int32 classes when given (sample.py stores the labels too). The .npz itself is written by the
 * engine's one numpy writer (engine/io/npy-write.ts).
 */
import { saveNpz, type NpyArrayIn } from '../engine/index.ts';

/** Writes an outlier set atomically (temporary file + rename). */
export async function saveOutliersNpz(path: string, set: { x: Uint8Array; shape: readonly number[]; y?: Int32Array }): Promise<void> {
  const arrays: Record<string, NpyArrayIn> = { x: { data: set.x, shape: set.shape } };
  if (set.y) arrays.y = { data: set.y, shape: [set.y.length] };
  await saveNpz(path, arrays);
}
