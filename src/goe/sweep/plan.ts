/**
 * A sweep's plan and its points. A sweep folder holds
 *
 *   sweep-plan.json                 what was asked (experiment, parameter, values, seeds, variants, the experiment's options)
 *   base/                           a normal run folder: the generator (trained here unless --generator) and the baseline,
 *                                   with the baseline's evaluation ("none"); trained once, shared by every point
 *   points/<param>=<value>/seed-<s>/  one normal run folder per point (same results.json schema), fine-tuned from base/
 *   logs/                           the child processes' output (--jobs)
 *   sweep.json / sweep.csv / sweep.md, sweep-AUROC.svg/.png, sweep-FPR95TPR.svg/.png   what --collect joins
 *
 * Every step is a `goe experiment` command line (pointArgs, baseArgs), so a point run in this
 * process, in a child process (--jobs) or by a scheduler (--emit-commands) is the same run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ExperimentConfig } from '../experiments/config.ts';

export const SWEEP_PARAMS = ['sigma2', 'temperature', 'count', 'lambda'] as const;
export type SweepParam = (typeof SWEEP_PARAMS)[number];

export interface SweepPlan {
  experiment: string;
  param: SweepParam;
  values: number[];
  /** Seeds of the outlier sampling and OE fine-tuning (--seed of each point). */
  seeds: number[];
  /** The outlier variants every point fine-tunes. */
  variants: string[];
  /** Further `goe experiment` options given to the base and every point (--limit, --max-steps, --data-dir, ...). */
  experimentArgs: string[];
  /** The user's baseline / generator weights (absolute), else the base trains them. */
  pretrained?: string;
  generator?: string;
  /** The recipe it came from, if any. */
  recipe?: string;
}

export interface SweepPoint {
  value: number;
  seed: number;
  /** The point's run folder (absolute). */
  dir: string;
}

export const PLAN_FILE = 'sweep-plan.json';

/** "sigma2=0.5" */
export function pointName(param: string, value: number): string {
  return `${param}=${value}`;
}

export function pointDir(sweepDir: string, param: string, value: number, seed: number): string {
  return join(resolve(sweepDir), 'points', pointName(param, value), `seed-${seed}`);
}

export function pointsOf(sweepDir: string, plan: SweepPlan): SweepPoint[] {
  return plan.values.flatMap((value) => plan.seeds.map((seed) => ({ value, seed, dir: pointDir(sweepDir, plan.param, value, seed) })));
}

/** A finished run folder: results.json with every wanted variant in it. */
export function runFinished(dir: string, variants: readonly string[]): boolean {
  const file = join(dir, 'results.json');
  if (!existsSync(file)) return false;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as { variants: { outliers: string }[] };
    return variants.every((v) => r.variants.some((x) => x.outliers === v));
  } catch {
    return false;
  }
}

/** The option that sets the swept parameter on `goe experiment`. */
export function paramFlag(param: SweepParam): string {
  return `--${param}`;
}

/** The variants a parameter acts on, by default: the generated ones for sigma^2 and T, else those with a count. */
export function defaultVariants(c: ExperimentConfig, param: SweepParam): string[] {
  const generated = c.outliers.filter((o) => o.kind === 'biggan' || o.kind === 'lm').map((o) => o.name);
  return generated.length > 0 ? generated : c.outliers.filter((o) => o.kind !== 'none').map((o) => o.name).slice(0, 1);
}

/** The generator the points sample from: the user's, else the one the base trained. */
export function generatorFile(sweepDir: string, plan: SweepPlan, c: ExperimentConfig): string | undefined {
  if (plan.generator !== undefined) return plan.generator;
  const kinds = new Set(c.outliers.filter((o) => plan.variants.includes(o.name)).map((o) => o.kind));
  if (kinds.has('biggan')) return join(resolve(sweepDir), 'base', 'generator', 'G.safetensors');
  if (kinds.has('lm')) return join(resolve(sweepDir), 'base', 'generator', 'lm.safetensors');
  return undefined;
}

/** `goe experiment` arguments of the base: the generator (if the variants need one) and the baseline with its evaluation. */
export function baseArgs(sweepDir: string, plan: SweepPlan): string[] {
  const base = join(resolve(sweepDir), 'base');
  const args = [plan.experiment, ...plan.experimentArgs, '--out', base, '--resume', '--base-only', '--variants', ['none', ...plan.variants].join(',')];
  if (plan.pretrained !== undefined) args.push('--pretrained', plan.pretrained);
  if (plan.generator !== undefined) args.push('--generator', plan.generator);
  return args;
}

/** `goe experiment` arguments of one point: fine-tuning from the base's baseline with the base's generator. */
export function pointArgs(sweepDir: string, plan: SweepPlan, c: ExperimentConfig, p: SweepPoint): string[] {
  const args = [plan.experiment, ...plan.experimentArgs, '--out', p.dir, '--resume', '--variants', plan.variants.join(','),
    '--pretrained', join(resolve(sweepDir), 'base', 'baseline', 'model.safetensors'), '--seed', String(p.seed), paramFlag(plan.param), String(p.value)];
  const g = generatorFile(sweepDir, plan, c);
  if (g !== undefined) args.push('--generator', g);
  return args;
}

/** A POSIX shell word. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
