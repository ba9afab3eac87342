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
  /** Per sample: the label and the argmax class, when the set is labelled. */
  labels?: Int32Array;
  predictions?: Int32Array;
}

/** Scores one set. */
export async function scoreSet(model: Classifier, source: Source, opts: ScoreOptions): Promise<SetScores> {
  const loader = new DataLoader({ source, batchSize: opts.batchSize ?? 256, shuffle: false, transform: opts.transform, workers: opts.workers });
  const parts: Record<string, Float32Array[]> = Object.fromEntries(opts.detectors.map((d) => [d, []]));
  const labelParts: Int32Array[] = [];
  const predictionParts: Int32Array[] = [];
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
        predictionParts.push((await out.pred.data()) as Int32Array);
        out.pred.dispose();
        labelParts.push(batch.y.slice(0, batch.nIn));
      }
      n += batch.nIn;
      opts.onBatch?.(batch.nIn);
    }
  } finally {
    await loader.close();
    model.train(wasTraining);
  }
  const scores: Record<string, Float64Array> = {};
  for (const d of opts.detectors) scores[d] = concat(parts[d]!, new Float64Array(n));
  if (!labelled) return { scores, accuracy: null, n };
  const labels = concat(labelParts, new Int32Array(n));
  const predictions = concat(predictionParts, new Int32Array(n));
  let correct = 0;
  for (let i = 0; i < n; i++) if (predictions[i] === labels[i]) correct++;
  return { scores, accuracy: correct / n, n, labels, predictions };
}

function concat<T extends Float64Array | Int32Array>(parts: readonly ArrayLike<number>[], out: T): T {
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
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

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
}

/** One scored set: outlier scores per detector (and, when labelled, labels and predictions). */
export interface NamedScores {
  name: string;
  scores: Record<string, ArrayLike<number>>;
  labels?: Int32Array;
  predictions?: Int32Array;
}

/** Every per-sample score of one evaluated model: what the metrics, figures and scores.npz are made from. */
export interface RunScores {
  detectors: readonly string[];
  in: NamedScores;
  ood: NamedScores[];
}

/** Scores the in-distribution test set and each OOD set with every detector of `opts`. */
export async function scoreRun(model: Classifier, inSet: EvalSet, oodSets: readonly EvalSet[], opts: ScoreOptions): Promise<RunScores> {
  if (oodSets.length === 0) throw new Error('scoreRun: no OOD test sets');
  const named = (name: string, s: SetScores): NamedScores => ({ name, scores: s.scores, ...(s.labels ? { labels: s.labels, predictions: s.predictions! } : {}) });
  const inScores = named(inSet.name, await scoreSet(model, inSet.source, opts));
  const ood: NamedScores[] = [];
  for (const s of oodSets) ood.push(named(s.name, await scoreSet(model, s.source, opts)));
  return { detectors: [...opts.detectors], in: inScores, ood };
}

/** The metrics per detector (per OOD set and their mean) of saved or fresh per-sample scores. */
export function evaluateScores(run: RunScores, opts: OodMetricOptions = {}): EvaluationResult {
  if (run.ood.length === 0) throw new Error('evaluateScores: no OOD test sets');
  const reports: Record<string, OodSetReport> = {};
  const meanScores: Record<string, Record<string, number>> = {};
  for (const d of run.detectors) {
    const sets = new Map<string, ArrayLike<number>>(run.ood.map((s) => [s.name, s.scores[d]!]));
    reports[d] = evaluateOodSets(run.in.scores[d]!, sets, { detector: d, convention: opts.convention, prRule: opts.prRule });
    meanScores[d] = { [run.in.name]: mean(run.in.scores[d]!), ...Object.fromEntries([...sets].map(([k, v]) => [k, mean(v)])) };
  }
  const { labels, predictions } = run.in;
  let accuracy: number | null = null;
  if (labels !== undefined && predictions !== undefined) {
    let correct = 0;
    for (let i = 0; i < labels.length; i++) if (labels[i] === predictions[i]) correct++;
    accuracy = correct / labels.length;
  }
  return { accuracy, reports, meanScores };
}

/** Scores the in-distribution test set and each OOD set, then computes the metrics per detector. */
export async function evaluateDetectors(model: Classifier, inSet: EvalSet, oodSets: readonly EvalSet[], opts: ScoreOptions & OodMetricOptions): Promise<EvaluationResult> {
  if (oodSets.length === 0) throw new Error('evaluateDetectors: no OOD test sets');
  return evaluateScores(await scoreRun(model, inSet, oodSets, opts), opts);
}
