/**
 * Evaluation: score the in-distribution test set and every OOD test set with the logit detectors
 * (MSP, Energy, and optionally MaxLogit, Entropy: outlier scores, higher = more OOD), the model in
 * eval mode without gradients; the per-set metrics and their mean come from src/goe/metrics
 * (each metric on the full in-distribution set against one full OOD set, then the unweighted mean
 * over sets, as the paper reports them). Scores are read back once per batch and detector.
 */
import { argmax, noGrad, scope, tensor, type Tensor } from '../../engine/index.ts';
import { DataLoader, type ImageTransform, type Source } from '../../data/index.ts';
import { energyScore, entropyScore, maxLogitScore, mspScore } from '../detectors/index.ts';
import { evaluateOodSets, type OodMetricOptions, type OodSetReport } from '../metrics/index.ts';
import type { Classifier } from './loop.ts';

export type DetectorName = 'MSP' | 'Energy' | 'MaxLogit' | 'Entropy';
export const DETECTORS: Record<DetectorName, (logits: Tensor) => Tensor> = {
  MSP: (z) => mspScore(z),
  Energy: (z) => energyScore(z),
  MaxLogit: (z) => maxLogitScore(z),
  Entropy: (z) => entropyScore(z),
};

export interface ScoreOptions {
  detectors: readonly DetectorName[];
  batchSize?: number;
  transform?: ImageTransform | null;
  /** Loader worker threads (default: the loader's default). */
  workers?: number;
  /** Called after every batch with the number of images it scored (progress bars). */
  onBatch?: (images: number) => void;
}

export interface SetScores {
  /** Outlier scores per detector, in the set's order. */
  scores: Record<string, Float64Array>;
  /** Top-1 accuracy when the set is labelled. */
  accuracy: number | null;
  n: number;
}

/** Scores one set. */
export async function scoreSet(model: Classifier, source: Source, opts: ScoreOptions): Promise<SetScores> {
  const loader = new DataLoader({ source, batchSize: opts.batchSize ?? 256, shuffle: false, transform: opts.transform, workers: opts.workers });
  const parts: Record<string, Float32Array[]> = Object.fromEntries(opts.detectors.map((d) => [d, []]));
  let correct = 0;
  let n = 0;
  const labelled = source.labels !== null;
  const wasTraining = model.training;
  model.eval();
  try {
    for await (const batch of loader.epoch(0)) {
      const out = noGrad(() =>
        scope(() => {
          const logits = model.forward(tensor(batch.x, batch.shape));
          return { scores: opts.detectors.map((d) => DETECTORS[d](logits)), pred: labelled ? argmax(logits, -1) : null };
        }),
      );
      for (let i = 0; i < opts.detectors.length; i++) {
        parts[opts.detectors[i]!]!.push((await out.scores[i]!.data()) as Float32Array);
        out.scores[i]!.dispose();
      }
      if (out.pred !== null) {
        const p = (await out.pred.data()) as Int32Array;
        out.pred.dispose();
        for (let i = 0; i < p.length; i++) if (p[i] === batch.y[i]) correct++;
      }
      n += batch.nIn;
      opts.onBatch?.(batch.nIn);
    }
  } finally {
    await loader.close();
    model.train(wasTraining);
  }
  const scores: Record<string, Float64Array> = {};
  for (const d of opts.detectors) {
    const all = new Float64Array(n);
    let at = 0;
    for (const p of parts[d]!) {
      all.set(p, at);
      at += p.length;
    }
    scores[d] = all;
  }
  return { scores, accuracy: labelled ? correct / n : null, n };
}

export interface EvalSet {
  name: string;
  source: Source;
}

export interface EvaluationResult {
  /** In-distribution test accuracy. */
  accuracy: number | null;
  /** Per detector: rows per OOD set and their mean. */
  reports: Record<string, OodSetReport>;
  /** Per detector and set (the in-distribution set under its own name): the mean outlier score. */
  meanScores: Record<string, Record<string, number>>;
}

function mean(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s / a.length;
}

/** Scores the in-distribution test set and each OOD set, then computes the metrics per detector. */
export async function evaluateDetectors(model: Classifier, inSet: EvalSet, oodSets: readonly EvalSet[], opts: ScoreOptions & OodMetricOptions): Promise<EvaluationResult> {
  if (oodSets.length === 0) throw new Error('evaluateDetectors: no OOD test sets');
  const inScores = await scoreSet(model, inSet.source, opts);
  const ood = new Map<string, SetScores>();
  for (const s of oodSets) ood.set(s.name, await scoreSet(model, s.source, opts));
  const reports: Record<string, OodSetReport> = {};
  const meanScores: Record<string, Record<string, number>> = {};
  for (const d of opts.detectors) {
    const sets = new Map<string, Float64Array>([...ood].map(([k, v]) => [k, v.scores[d]!]));
    reports[d] = evaluateOodSets(inScores.scores[d]!, sets, { detector: d, convention: opts.convention, prRule: opts.prRule });
    meanScores[d] = { [inSet.name]: mean(inScores.scores[d]!), ...Object.fromEntries([...sets].map(([k, v]) => [k, mean(v)])) };
  }
  return { accuracy: inScores.accuracy, reports, meanScores };
}
