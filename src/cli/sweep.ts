/**
 * `goe sweep`: one experiment over a grid of one parameter (sigma^2, T, the outlier count or
 * lambda) and seeds, every point a normal run folder fine-tuned from a base trained once; points
 * in this process, as child processes (--jobs), or printed as commands for a scheduler
 * (--emit-commands), and joined by --collect (src/goe/sweep).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXPERIMENTS, experimentConfig } from '../goe/experiments/index.ts';
import {
  PLAN_FILE, RECIPES, SWEEP_PARAMS, SweepError, defaultVariants, pointsOf, readPlan, runSweep, shellQuote, writeSweep,
  type ExperimentExec, type SweepParam, type SweepPlan, type SweepPoint,
} from '../goe/sweep/index.ts';
import { parseExperimentArgs, runExperimentCli } from './experiment.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

/** This program, for child processes and emitted commands. */
export const GOE_SCRIPT = fileURLToPath(new URL('./goe.ts', import.meta.url));

export const SWEEP_USAGE = `Usage: goe sweep <experiment> --param NAME=V1,V2,... [--seeds N] [--jobs N] [--emit-commands] [--out DIR] [experiment options]
       goe sweep --recipe NAME [--out DIR] [options]
       goe sweep --collect DIR
       goe sweep --run-point DIR --point NAME=V --seed S

Runs an experiment at every value of one parameter and seed. The base (DIR/base: the generator,
trained there unless --generator, and the baseline with its evaluation) is trained once; every
point (DIR/points/NAME=V/seed-S) is a normal run folder fine-tuned from it. A finished point is
skipped, an interrupted one resumed. Then sweep.json / sweep.csv / sweep.md (mean and 95%
t-interval over seeds per point, variant, detector, OOD set and metric, with each seed's value)
and sweep-AUROC / sweep-FPR95TPR (.svg, .png) are written into DIR.

Parameters (--param):
  sigma2       the BigGAN outliers' latent scale (image experiments; --sigma2)
  temperature  the LM outliers' sampling temperature (text experiments; --temperature)
  count        outliers per variant (--count)
  lambda       the OE weight (--lambda)

Options:
  --param NAME=V1,V2,...  the grid (e.g. sigma2=0,0.5,1,2,5,10,50)
  --seeds N               seeds 0..N-1 of outlier sampling and fine-tuning per point (default 1)
  --variants A,B          outlier variants every point fine-tunes (default: the generated one)
  --jobs N                run N points at a time as child processes (logs in DIR/logs)
  --emit-commands         print one self-contained shell command per point (absolute paths; each
                          trains the base first if no one has, under DIR/base.lock) and exit; run
                          them anywhere that shares DIR (Slurm array, CI matrix, GNU parallel),
                          then goe sweep --collect DIR
  --collect DIR           join DIR's finished points into sweep.json/.csv/.md and the plots
  --recipe NAME           a named paper figure: ${Object.keys(RECIPES).join(', ')}
  --out DIR               the sweep folder (default runs/sweep-<experiment>-<param>-<date>)
  --pretrained FILE       baseline weights for the base (skips baseline training)
  --generator FILE        generator weights (skips generator training)
  --run-point DIR         run one point of DIR's plan (what --emit-commands prints), with
  --point NAME=V --seed S
  experiment options      given to the base and every point: --limit, --max-steps, --epochs,
                          --data-dir, --no-download, --full, --detectors, --workers, --ood,
                          --latent-scale, --sample-mode, --eval-every-epoch, --sigma2 (count/lambda
                          sweeps), ... (goe experiment --help)
  -h, --help              show this help
`;

const OWN_VALUE = new Set(['param', 'seeds', 'jobs', 'out', 'collect', 'recipe', 'variants', 'pretrained', 'generator', 'run-point', 'point', 'seed']);
const OWN_FLAG = new Set(['emit-commands', 'help']);

/** The sweep's own options apart from the experiment options it passes on. */
export function splitSweepArgs(args: string[]): { own: Record<string, string | true>; rest: string[] } {
  const own: Record<string, string | true> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
    const name = a === '-h' ? 'help' : m?.[1];
    if (name !== undefined && OWN_FLAG.has(name)) {
      own[name] = true;
    } else if (name !== undefined && OWN_VALUE.has(name)) {
      const v = m?.[2] ?? args[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      if (own[name] !== undefined) throw new UsageError(`--${name} is given twice`);
      own[name] = v;
    } else {
      rest.push(a);
    }
  }
  return { own, rest };
}

function count(name: string, v: string | true | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} takes an integer >= ${min}, got "${String(v)}"`);
  return n;
}

/** --param NAME=V1,V2,...: a known parameter and distinct finite values in range. */
export function parseParam(v: string): { param: SweepParam; values: number[] } {
  const at = v.indexOf('=');
  const name = at > 0 ? v.slice(0, at) : v;
  if (!(SWEEP_PARAMS as readonly string[]).includes(name)) throw new UsageError(`--param takes NAME=V1,V2,... with NAME one of ${SWEEP_PARAMS.join(', ')}; got "${v}"`);
  const param = name as SweepParam;
  const items = at > 0 ? v.slice(at + 1).split(',').map((s) => s.trim()).filter((s) => s !== '') : [];
  if (items.length === 0) throw new UsageError(`--param ${param}= needs at least one value (e.g. ${param}=1,2,5)`);
  const values = items.map((s) => {
    const x = Number(s);
    const ok = Number.isFinite(x) && (param === 'count' ? Number.isInteger(x) && x >= 1 : param === 'temperature' ? x > 0 : x >= 0);
    if (!ok) throw new UsageError(`--param ${param}: "${s}" is not a valid value (${param === 'count' ? 'an integer >= 1' : param === 'temperature' ? 'a number > 0' : 'a number >= 0'})`);
    return x;
  });
  if (new Set(values).size !== values.length) throw new UsageError(`--param ${param}: a value is given twice`);
  return { param, values: values.sort((a, b) => a - b) };
}

/** Options holding paths, made absolute so emitted commands run from any folder. */
function absolutePaths(rest: string[]): string[] {
  const out = [...rest];
  for (let i = 0; i < out.length; i++) {
    const m = /^--(data-dir|train|test|outliers-file|ood)(=.*)?$/.exec(out[i]!);
    if (m === null) continue;
    const abs = (p: string): string => (m[1] === 'ood' ? p.replace(/=(.*)$/, (_, path: string) => `=${resolve(path)}`) : resolve(p));
    if (m[2] !== undefined) out[i] = `--${m[1]}=${abs(m[2].slice(1))}`;
    else if (i + 1 < out.length) out[i + 1] = abs(out[i + 1]!);
  }
  if (process.env.GOE_DATA_DIR && !out.some((a) => a.startsWith('--data-dir'))) out.push('--data-dir', resolve(process.env.GOE_DATA_DIR));
  return out;
}

const FORBIDDEN = ['out', 'resume', 'base-only', 'help'];

/** Checks the plan against the experiment before anything runs (exit 2 on what cannot work). */
function checkPlan(plan: SweepPlan): void {
  const c = experimentConfig(plan.experiment);
  const unknown = plan.variants.filter((v) => !c.outliers.some((o) => o.name === v));
  if (unknown.length > 0) throw new UsageError(`--variants: ${plan.experiment} has no variant ${unknown.join(', ')} (has: ${c.outliers.map((o) => o.name).join(', ')})`);
  if (plan.variants.includes('none')) throw new UsageError('--variants: "none" is the baseline, evaluated once in the base; sweep outlier variants');
  const chosen = c.outliers.filter((o) => plan.variants.includes(o.name));
  if (plan.param === 'sigma2') {
    if (!chosen.some((o) => o.kind === 'biggan')) throw new UsageError(`--param sigma2 sets the BigGAN outliers' latent scale; ${plan.experiment}'s variants ${plan.variants.join(', ')} have none${c.outliers.some((o) => o.kind === 'lm') ? ' (a text experiment: --param temperature=...)' : ''}`);
    if (chosen.some((o) => o.kind === 'biggan' && o.file !== undefined) && plan.generator === undefined) {
      throw new UsageError(`${plan.experiment}'s generated outliers are the paper's released samples (sigma^2 = 50 only): a sigma^2 sweep needs the BigGAN, --generator G.safetensors`);
    }
  }
  if (plan.param === 'temperature' && !chosen.some((o) => o.kind === 'lm')) throw new UsageError(`--param temperature sets the LM outliers' temperature; ${plan.experiment}'s variants ${plan.variants.join(', ')} have none (image experiments: --param sigma2=...)`);
  if (plan.param === 'count' && !chosen.some((o) => 'count' in o)) throw new UsageError(`--param count: the variants ${plan.variants.join(', ')} have no outlier count`);
  for (const f of [plan.pretrained, plan.generator]) if (f !== undefined && !existsSync(f)) throw new UsageError(`${f} does not exist`);
}

/** The plan of `goe sweep EXPERIMENT ...` or `--recipe`. */
export function planFromArgs(own: Record<string, string | true>, rest: string[]): SweepPlan {
  const recipe = typeof own.recipe === 'string' ? RECIPES[own.recipe] : undefined;
  if (own.recipe !== undefined && recipe === undefined) throw new UsageError(`unknown recipe "${String(own.recipe)}" (known: ${Object.keys(RECIPES).join(', ')})`);
  let experiment = recipe?.experiment;
  if (rest[0] !== undefined && !rest[0].startsWith('-')) {
    if (recipe !== undefined && rest[0] !== recipe.experiment) throw new UsageError(`--recipe ${recipe.name} runs the ${recipe.experiment} experiment, not ${rest[0]}`);
    experiment = rest.shift();
  }
  if (experiment === undefined) throw new UsageError('missing the experiment name (goe sweep EXPERIMENT --param NAME=V1,V2,...)');
  const grid = typeof own.param === 'string' ? parseParam(own.param) : recipe !== undefined ? { param: recipe.param, values: recipe.values } : undefined;
  if (experiment === 'imagenet') {
    // imagenet has its own runner (goe experiment imagenet: micro-batches, its own phases), which the sweep's base/point plan does not drive
    const g = grid ?? { param: 'sigma2', values: [0, 2, 20] };
    throw new UsageError(`the imagenet experiment is not swept by goe sweep; run its points one by one: for v in ${g.values.join(' ')}; do goe experiment imagenet --${g.param} $v --out runs/imagenet-${g.param}=$v; done`);
  }
  if (EXPERIMENTS[experiment] === undefined) throw new UsageError(`unknown experiment "${experiment}" (known: ${Object.keys(EXPERIMENTS).join(', ')})`);
  if (grid === undefined) throw new UsageError('missing --param NAME=V1,V2,... (or --recipe NAME)');
  const args = [...(recipe?.args ?? []), ...rest];
  for (const a of args) {
    const m = /^--([a-z0-9-]+)/.exec(a);
    if (m !== null && (FORBIDDEN.includes(m[1]!) || m[1] === grid.param)) {
      throw new UsageError(`--${m[1]} is set by the sweep${m[1] === grid.param ? ' (it is the swept parameter)' : ''}; leave it out`);
    }
  }
  const parsed = parseExperimentArgs([experiment, ...args]); // every experiment option checked now
  if (parsed.name !== experiment) throw new UsageError(`unexpected argument "${String(parsed.name)}"`);
  if (parsed.opts.auto !== undefined) throw new UsageError(`--${parsed.opts.auto} auto belongs to goe experiment; a sweep sets values itself (goe select chooses one)`);
  const c = experimentConfig(experiment);
  const variants = typeof own.variants === 'string' ? own.variants.split(',').map((s) => s.trim()).filter((s) => s !== '') : recipe?.variants ?? defaultVariants(c, grid.param);
  const seeds = count('seeds', own.seeds, 1) ?? recipe?.seeds ?? 1;
  const plan: SweepPlan = {
    experiment, param: grid.param, values: grid.values, seeds: Array.from({ length: seeds }, (_, k) => c.seed + k), variants, experimentArgs: absolutePaths(args),
    ...(typeof own.pretrained === 'string' ? { pretrained: resolve(own.pretrained) } : {}),
    ...(typeof own.generator === 'string' ? { generator: resolve(own.generator) } : {}),
    ...(recipe !== undefined ? { recipe: recipe.name } : {}),
  };
  checkPlan(plan);
  return plan;
}

/** Writes DIR/sweep-plan.json, refusing a folder that holds another sweep. */
function savePlan(dir: string, plan: SweepPlan): void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, PLAN_FILE);
  if (existsSync(file)) {
    const old = readPlan(dir);
    const same = (k: keyof SweepPlan): boolean => JSON.stringify(old[k]) === JSON.stringify(plan[k]);
    const differ = (['experiment', 'param', 'variants', 'experimentArgs', 'pretrained', 'generator'] as const).filter((k) => !same(k));
    if (differ.length > 0) throw new UsageError(`${dir} holds a sweep made with other settings (${differ.join(', ')} differ); use another --out, or the same options to continue it`);
  }
  writeFileSync(file, JSON.stringify(plan, null, 2) + '\n');
}

function defaultSweepDir(plan: SweepPlan): string {
  const d = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `sweep-${plan.experiment}-${plan.param}-${d}`);
}

/** `goe experiment ARGS` in this process. */
function inProcessExec(io: CliIo): ExperimentExec {
  return async (args) => {
    const { name, opts } = parseExperimentArgs(args);
    return (await runExperimentCli(name!, opts, io)).code;
  };
}

/** `goe experiment ARGS` as a child process, its output in `log`. */
export const childExec: ExperimentExec = (args, log) =>
  new Promise((resolvePromise, reject) => {
    const fd = log !== undefined ? openSync(log, 'a') : 'ignore';
    const child = spawn(process.execPath, [GOE_SCRIPT, 'experiment', ...args], { stdio: ['ignore', fd, fd] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (typeof fd === 'number') closeSync(fd);
      resolvePromise(code ?? (signal !== null ? 128 : 1));
    });
  });

/** The command --emit-commands prints for one point. */
export function pointCommand(dir: string, plan: SweepPlan, p: SweepPoint): string {
  return [process.execPath, GOE_SCRIPT, 'sweep', '--run-point', resolve(dir), '--point', `${plan.param}=${p.value}`, '--seed', String(p.seed)].map(shellQuote).join(' ');
}

async function collect(dir: string, io: CliIo): Promise<number> {
  const { sweep, files } = await writeSweep(dir);
  io.stdout(`collected ${sweep.rows.filter((r) => r.metric === 'AUROC' && r.outlier_set === 'mean').length} point/variant/detector means over ${sweep.values.length} values x ${sweep.seeds.length} seed(s) -> ${files.map((f) => join(dir, f)).join(', ')}\n`);
  for (const b of sweep.best) io.stdout(`best mean AUROC: ${b.variant} / ${b.detector} at ${sweep.param} = ${b.value} (${(b.AUROC * 100).toFixed(2)})\n`);
  if (sweep.unfinished.length > 0) io.stdout(`unfinished points (left out): ${sweep.unfinished.join(', ')}\n`);
  return EXIT_OK;
}

export async function sweepMain(args: string[], io: CliIo): Promise<number> {
  const { own, rest } = splitSweepArgs(args);
  if (own.help === true) {
    io.stdout(SWEEP_USAGE);
    return EXIT_OK;
  }
  try {
    if (typeof own.collect === 'string') {
      if (rest.length > 0 || Object.keys(own).length > 1) throw new UsageError('--collect DIR takes no other options');
      return await collect(own.collect, io);
    }
    if (typeof own['run-point'] === 'string') {
      const dir = own['run-point'];
      const plan = readPlan(dir);
      const p = typeof own.point === 'string' ? own.point : '';
      const m = new RegExp(`^${plan.param}=(.+)$`).exec(p);
      const seed = count('seed', own.seed, 0);
      if (m === null || seed === undefined) throw new UsageError(`--run-point ${dir} needs --point ${plan.param}=V and --seed S`);
      const point = pointsOf(dir, plan).find((x) => x.value === Number(m[1]) && x.seed === seed);
      if (point === undefined) throw new UsageError(`${p} seed ${seed} is not a point of the sweep in ${dir} (values ${plan.values.join(', ')}, seeds ${plan.seeds.join(', ')})`);
      const r = await runSweep({ dir, plan, config: experimentConfig(plan.experiment), inProcess: inProcessExec(io), child: childExec, jobs: 1, say: (l) => io.stdout(`sweep: ${l}\n`), only: [point] });
      return r.failed.length > 0 ? r.failed[0]!.code : EXIT_OK;
    }
    const plan = planFromArgs(own, rest);
    const dir = typeof own.out === 'string' ? own.out : defaultSweepDir(plan);
    const jobs = count('jobs', own.jobs, 1) ?? 1;
    savePlan(dir, plan);
    if (own['emit-commands'] === true) {
      for (const p of pointsOf(dir, plan)) io.stdout(`${pointCommand(dir, plan, p)}\n`);
      io.stderr(`goe sweep: ${plan.values.length * plan.seeds.length} point command(s) for ${resolve(dir)}; when they are done: goe sweep --collect ${resolve(dir)}\n`);
      return EXIT_OK;
    }
    const t0 = performance.now();
    const r = await runSweep({ dir, plan, config: experimentConfig(plan.experiment), inProcess: inProcessExec(io), child: childExec, jobs, say: (l) => io.stdout(`sweep: ${l}\n`) });
    io.stdout(`sweep: ${r.ran.length} point(s) run, ${r.skipped.length} skipped (finished), ${r.failed.length} failed in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    await collect(dir, io);
    return r.failed.length > 0 ? EXIT_FAILURE : EXIT_OK;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof SweepError) {
      io.stderr(`goe sweep: ${e.message}\n`);
      return e.code === EXIT_USAGE ? EXIT_USAGE : EXIT_FAILURE;
    }
    if (e instanceof Error && /is not a sweep folder|no finished point/.test(e.message)) {
      io.stderr(`goe sweep: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

export const sweepCommand: Subcommand = {
  name: 'sweep',
  summary: 'an experiment over a grid of sigma^2, T, outlier count or lambda, with seeds, CIs and plots (paper Fig. 2, 3, 5)',
  usage: SWEEP_USAGE,
  run: sweepMain,
};
