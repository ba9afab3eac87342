/**
 * Convergence curves (--eval-every-epoch, the paper's Fig. 4): the OOD metrics of a variant's
 * model on the test sets after step 0 (the model fine-tuning starts from) and after every epoch
 * (or every N steps), kept in `<variant>/curve.json` as they are measured so a resumed run keeps
 * its earlier points, and written into results.json as `variants[].curve`.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { METRIC_COLUMNS } from '../metrics/index.ts';
import type { EvaluationResult } from '../train/evaluate.ts';

/** One evaluation during fine-tuning: mean over the OOD sets per detector, metric names as in results.json. */
export interface CurvePoint {
  step: number;
  /** Epochs completed when it was taken. */
  epoch: number;
  accuracy: number | null;
  /** detector -> metric (AUROC, AUPR-IN, AUPR-OUT, FPR95TPR) -> fraction. */
  mean: Record<string, Record<string, number>>;
}

export function curvePoint(step: number, epoch: number, e: EvaluationResult): CurvePoint {
  const mean: Record<string, Record<string, number>> = {};
  for (const [d, r] of Object.entries(e.reports)) mean[d] = Object.fromEntries(METRIC_COLUMNS.map((c) => [c.header, r.mean[c.key] as number]));
  return { step, epoch, accuracy: e.accuracy, mean };
}

/** The points of one variant's curve, saved after each one (atomically); `resume` keeps a saved file's points. */
export class ConvergenceCurve {
  readonly points: CurvePoint[] = [];
  readonly file: string;
  constructor(file: string, resume: boolean) {
    this.file = file;
    if (resume && existsSync(file)) this.points.push(...(JSON.parse(readFileSync(file, 'utf8')) as { points: CurvePoint[] }).points);
  }
  has(step: number): boolean {
    return this.points.some((p) => p.step === step);
  }
  add(p: CurvePoint): void {
    this.points.push(p);
    this.points.sort((a, b) => a.step - b.step);
    writeFileSync(`${this.file}.tmp`, JSON.stringify({ points: this.points }, null, 2) + '\n');
    renameSync(`${this.file}.tmp`, this.file);
  }
}
