/**
 * Synthetic in-memory image classification data for the smoke experiment and tests: each class is
 * a smooth pattern of colour waves (its own frequencies and phases per channel) plus a little
 * pixel noise, uint8 CHW 3x32x32. Smooth inliers are easy to tell apart from noise outliers, so
 * a few steps of OE fine-tuning have a visible effect.
 */
import { Rng, type ArraySource } from '../../data/index.ts';

export function syntheticImages(opts: { classes: number; n: number; seed: number; name?: string; size?: number }): ArraySource {
  const S = opts.size ?? 32;
  const C = 3;
  const size = C * S * S;
  const data = new Uint8Array(new SharedArrayBuffer(opts.n * size));
  const labels = new Int32Array(new SharedArrayBuffer(opts.n * 4));
  // class patterns depend only on the class index, so train and test sets share them
  const pattern = (k: number, c: number) => {
    const r = new Rng(0x5eed, k, c);
    return { fx: 1 + r.int(3), fy: 1 + r.int(3), phase: r.next() * 2 * Math.PI, amp: 60 + 40 * r.next(), base: 70 + 110 * r.next() };
  };
  const pats = Array.from({ length: opts.classes }, (_, k) => Array.from({ length: C }, (_, c) => pattern(k, c)));
  const rng = new Rng(opts.seed, 0x5417);
  for (let i = 0; i < opts.n; i++) {
    const k = i % opts.classes;
    labels[i] = k;
    const shift = rng.next() * 2 * Math.PI;
    for (let c = 0; c < C; c++) {
      const p = pats[k]![c]!;
      for (let y = 0; y < S; y++) {
        for (let x = 0; x < S; x++) {
          const v = p.base + p.amp * Math.sin((2 * Math.PI * (p.fx * x + p.fy * y)) / S + p.phase + 0.3 * shift) + (rng.next() - 0.5) * 20;
          data[i * size + (c * S + y) * S + x] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
  }
  return { kind: 'array', name: opts.name ?? 'synthetic', length: opts.n, sampleShape: [C, S, S], layout: 'CHW', dtype: 'uint8', data, labels, classes: Array.from({ length: opts.classes }, (_, k) => `class${k}`) };
}

/**
 * Synthetic labelled texts: a document of class k is 8..20 words, mostly drawn from the class's own
 * 12 words ("k<k>w<j>") with some shared filler words, with punctuation the tokenizer splits off.
 */
export function syntheticTexts(opts: { classes: number; n: number; seed: number }): { texts: string[]; labels: Int32Array; classes: string[] } {
  const rng = new Rng(opts.seed, 0x7e47);
  const filler = ['the', 'a', 'of', 'and', 'to', 'in'];
  const texts: string[] = [];
  const labels = new Int32Array(new SharedArrayBuffer(opts.n * 4));
  for (let i = 0; i < opts.n; i++) {
    const k = i % opts.classes;
    labels[i] = k;
    const len = 8 + rng.int(13);
    const words: string[] = [];
    for (let j = 0; j < len; j++) words.push(rng.next() < 0.75 ? `K${k}w${rng.int(12)}` : filler[rng.int(filler.length)]!);
    texts.push(`${words.join(' ')}.`);
  }
  return { texts, labels, classes: Array.from({ length: opts.classes }, (_, k) => `topic${k}`) };
}
