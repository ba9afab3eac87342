/**
 * GOE's text outliers: a word-level Transformer language model (pytorch/examples
 * word_language_model) sampled at temperature T = 2 with generate.py's procedure (sampleWords).
 * generate.py writes a newline after every 20 words; each such line is one outlier text, which
 * the classifier's tokenizer (basic_english) and vocabulary turn into a left-padded id sequence.
 */
import { basicEnglish, textSource, type Vocab } from '../../data/index.ts';
import { sampleWords, type TransformerModel } from '../../models/index.ts';
import type { OutlierSampler, OutlierSet } from './types.ts';

export interface LmSamplerOptions {
  model: TransformerModel;
  /** The language model's words by id (its Dictionary's idx2word). */
  lmWords: readonly string[];
  /** The classifier's vocabulary and sequence length. */
  vocab: Vocab;
  /** A fixed length, or 'batch-longest' (ragged, padded per batch with padId). */
  seqLength: number | 'batch-longest';
  padId?: number;
  /** Sampling temperature (paper: 2). */
  temperature?: number;
  /** Words per outlier text (generate.py's line length: 20). */
  wordsPerLine?: number;
  onProgress?: (done: number, total: number) => void;
}

export class LmSampler implements OutlierSampler {
  readonly name: string;
  readonly opts: LmSamplerOptions;

  constructor(opts: LmSamplerOptions) {
    if (opts.lmWords.length !== opts.model.ntoken) throw new RangeError(`LmSampler: ${opts.lmWords.length} words for a model of ${opts.model.ntoken} tokens`);
    this.opts = opts;
    this.name = `lm(T=${opts.temperature ?? 2})`;
  }

  /** n texts of `wordsPerLine` words each (n * wordsPerLine words sampled in one stream). */
  async sample(n: number, seed: number): Promise<OutlierSet> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    const per = this.opts.wordsPerLine ?? 20;
    const T = this.opts.temperature ?? 2;
    const ids = await sampleWords(this.opts.model, { numWords: n * per, temperature: T, seed, onProgress: this.opts.onProgress });
    const texts: string[] = [];
    for (let i = 0; i < n; i++) texts.push(Array.from(ids.subarray(i * per, (i + 1) * per), (k) => this.opts.lmWords[k]!).join(' '));
    const source = textSource(texts.map(basicEnglish), null, this.opts.vocab, { length: this.opts.seqLength, padId: this.opts.padId, name: this.name });
    return { name: this.name, source, texts, info: { sampler: 'transformer-lm', temperature: T, words: n * per, wordsPerLine: per, n, seed } };
  }
}

/** Entropy (nats) of the empirical token distribution of a sample: higher temperature, flatter. */
export function empiricalEntropy(ids: ArrayLike<number>): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) counts.set(ids[i]!, (counts.get(ids[i]!) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / ids.length;
    h -= p * Math.log(p);
  }
  return h;
}
