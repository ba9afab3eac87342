/**
 * Batch-by-batch accumulation of OOD scores, in the style of pytorch-ood's `OODMetrics`:
 * `update()` per batch, `compute()` at the end, `reset()` to reuse.
 *
 * Scores are kept (not summarised) because the metrics are exact functions of the full ranking.
 * They are stored in two growable Float64Arrays, split by population, so millions of scores cost
 * 8 bytes each and `compute()` sorts each population once.
 */
import {
  computeFromSorted,
  resolveOptions,
  type OodMetricOptions,
  type OodMetricResult,
} from './ood-metrics.ts';
import { assertFiniteScores, type ScoreArray } from './scores.ts';

/** A Float64Array that grows by doubling, so appending n scores costs O(n) overall. */
class GrowableScores {
  private buffer = new Float64Array(1024);
  length = 0;

  push(score: number): void {
    if (this.length === this.buffer.length) {
      const bigger = new Float64Array(this.buffer.length * 2);
      bigger.set(this.buffer);
      this.buffer = bigger;
    }
    this.buffer[this.length++] = score;
  }

  /** A sorted copy of the scores so far. */
  sortedCopy(): Float64Array {
    const sorted = this.buffer.slice(0, this.length);
    sorted.sort();
    return sorted;
  }
}

/**
 * Per-sample OOD membership of a batch. Booleans: `true` = OOD. Numbers: class labels as
 * pytorch-ood uses them, where a label < 0 (conventionally -1) means OOD and any label >= 0 is an
 * in-distribution class. Beware: numeric 0/1 flags are read as labels (all in-distribution); pass
 * booleans for flags.
 */
export type OodMembership = ArrayLike<boolean> | ArrayLike<number>;

export class OodMetrics {
  private readonly options: Required<OodMetricOptions>;
  private inScores = new GrowableScores();
  private oodScores = new GrowableScores();

  constructor(options?: OodMetricOptions) {
    this.options = resolveOptions(options);
  }

  /**
   * Adds a batch of outlier scores (higher = more OOD) and, per sample, whether it is OOD
   * (see `OodMembership`), or one boolean for the whole batch (`update(oodScores, true)`).
   * Throws, adding nothing, on mismatched lengths, NaN / infinite scores or NaN labels.
   */
  update(scores: ScoreArray, isOodOrLabels: OodMembership | boolean): this {
    if (typeof isOodOrLabels === 'boolean') {
      assertFiniteScores(scores, 'update batch');
      const into = isOodOrLabels ? this.oodScores : this.inScores;
      for (let i = 0; i < scores.length; i++) into.push(scores[i]!);
      return this;
    }
    if (typeof isOodOrLabels !== 'object' || isOodOrLabels === null || typeof isOodOrLabels.length !== 'number') {
      throw new Error(`update: expected per-sample OOD flags or labels, or one boolean for the batch; got ${String(isOodOrLabels)}`);
    }
    if (scores.length !== isOodOrLabels.length) {
      throw new Error(`update: ${scores.length} scores but ${isOodOrLabels.length} labels; they must match one to one`);
    }
    assertFiniteScores(scores, 'update batch');
    const ood = new Uint8Array(scores.length);
    for (let i = 0; i < scores.length; i++) ood[i] = isOod(isOodOrLabels[i], i) ? 1 : 0;
    for (let i = 0; i < scores.length; i++) (ood[i] ? this.oodScores : this.inScores).push(scores[i]!);
    return this;
  }

  /** The metrics over everything added since construction or the last `reset()`. */
  compute(): OodMetricResult {
    if (this.inScores.length === 0 || this.oodScores.length === 0) {
      throw new Error(
        `OodMetrics.compute: need both in-distribution and OOD scores, have ${this.inScores.length} in-distribution ` +
          `and ${this.oodScores.length} OOD (OOD samples have label < 0 or isOod true)`,
      );
    }
    return computeFromSorted(this.inScores.sortedCopy(), this.oodScores.sortedCopy(), this.options);
  }

  /** Forgets all scores; the options stay. */
  reset(): this {
    this.inScores = new GrowableScores();
    this.oodScores = new GrowableScores();
    return this;
  }

  /** How many in-distribution and OOD scores have been added. */
  get counts(): { nIn: number; nOut: number } {
    return { nIn: this.inScores.length, nOut: this.oodScores.length };
  }
}

function isOod(flagOrLabel: boolean | number | undefined, index: number): boolean {
  if (typeof flagOrLabel === 'boolean') return flagOrLabel;
  if (typeof flagOrLabel === 'number' && !Number.isNaN(flagOrLabel)) return flagOrLabel < 0;
  throw new Error(`update: label at index ${index} is ${String(flagOrLabel)}; expected a boolean isOod flag or a numeric label (< 0 = OOD)`);
}
