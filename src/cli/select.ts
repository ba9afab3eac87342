/**
 * `goe select <experiment>`: chooses sigma^2 (BigGAN outliers) or T (LM outliers) without OOD
 * data (src/goe/select), prints the evidence and writes select.json / select.md; and the
 * `--sigma2 auto` / `--temperature auto` path of `goe experiment`, which selects first and then
 * runs the experiment at the chosen value from the same baseline and generator.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EXPERIMENTS, experimentConfig, isInputError, type RunOptions } from '../goe/experiments/index.ts';
import { CRITERIA, SelectInputError, selectMarkdown, selectParameter, writeSelect, type CriterionName, type SelectResult } from '../goe/select/index.ts';
import { RECIPES } from '../goe/sweep/index.ts';
import { parseExperimentArgs, runExperimentCli } from './experiment.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

/** The default grids: the reference sweep's sigma^2 values; temperatures around the paper's T = 2. */
export const DEFAULT_GRID = { sigma2: RECIPES['fig2-cifar100']!.values, temperature: RECIPES['fig2-newsgroups']!.values };

export const SELECT_USAGE = `Usage: goe select <experiment> [--criterion NAME,...|all] [--grid V1,V2,...] [--out DIR]
                  [--pretrained FILE --generator FILE | --base DIR] [experiment options]

Chooses the generated outliers' sampling parameter without looking at OOD data: sigma^2 for a
BigGAN (image experiments), the temperature T for a word LM (text). The baseline classifier scores
held-out inliers (a seeded subset of the in-distribution test set) and samples drawn at every
value of the grid; each criterion picks a value and shows why. Writes DIR/select.json and
DIR/select.md. \`goe experiment NAME --sigma2 auto\` (or --temperature auto) runs this first
(its --select-criterion, default as here) and then the experiment at the chosen value.

Criteria:
  msp-quantile   the smallest value at which at least --fraction (0.5) of the samples have a
                 baseline MSP below the --quantile (0.05) quantile of its MSP on the inliers
  feature-band   (images) the smallest value whose samples' median distance to the nearest inlier
                 class mean (pooled WRN features) lies in [tau, 2 tau], tau the 0.95-quantile of
                 the inliers' distances
  proxy-ood      (needs --sweep DIR) the value whose OE model best separates the inliers from the
                 next value's generated samples, a proxy OOD set (MSP AUROC)

Options:
  --criterion C       msp-quantile, feature-band, proxy-ood, or all (proxy-ood with --sweep);
                      default feature-band for images, msp-quantile for text (bench/NOTES.md,
                      "The full-size sweep": the one that chose a helpful sigma^2 at both budgets)
  --sweep DIR         a goe sweep folder over this parameter: its values are the grid, its base the
                      baseline and generator, its point models what proxy-ood reads
  --grid V1,V2,...    values to consider (default sigma^2 ${DEFAULT_GRID.sigma2.join(',')};
                      T ${DEFAULT_GRID.temperature.join(',')})
  --out DIR           where select.json / select.md (and base/, when trained here) go
                      (default runs/select-<experiment>-<date>)
  --pretrained FILE   the baseline's weights; --generator FILE the generator's
  --base DIR          a run or sweep base folder holding baseline/model.safetensors and
                      generator/G.safetensors (or lm.safetensors); without these, DIR/base is
                      trained (goe experiment --base-only)
  --samples N         samples per grid value (default 512)
  --holdout N         held-out inliers (default 1000)
  --quantile Q        msp-quantile's q (default 0.05); --fraction F its fraction (default 0.5)
  experiment options  --data-dir, --no-download, --limit, --max-steps (base training), --full,
                      --latent-scale, --sample-mode, ... (goe experiment --help)
  -h, --help          show this help
`;

const OWN = new Set(['criterion', 'grid', 'out', 'pretrained', 'generator', 'base', 'sweep', 'samples', 'holdout', 'quantile', 'fraction', 'help']);

function num(name: string, v: string | true | undefined, ok: (x: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v === true || String(v).trim() === '' || !Number.isFinite(x) || !ok(x)) throw new UsageError(`--${name} takes ${what}, got "${String(v)}"`);
  return x;
}

/**
 * The criterion used unless one is named (goe select, --sigma2 / --temperature auto): feature-band
 * for images, the only one that chose a sigma^2 that helps at both fmnist budgets measured
 * (msp-quantile chose 0.5, which hurts Energy, at full size: bench/NOTES.md, "The full-size
 * sweep"); msp-quantile for text, where feature-band has no WRN features to read.
 */
export function defaultCriterion(image: boolean): CriterionName {
  return image ? 'feature-band' : 'msp-quantile';
}

/** --criterion: one name, several comma-separated, or all (those that apply). */
function parseCriteria(v: string | true | undefined, sweep: boolean, image: boolean): CriterionName[] {
  if (v === undefined) return [defaultCriterion(image)];
  // all: those that apply (feature-band on images, proxy-ood with a sweep)
  if (v === 'all') return CRITERIA.filter((c) => (sweep || c !== 'proxy-ood') && (image || c !== 'feature-band'));
  const names = String(v).split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = names.filter((n) => !(CRITERIA as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) throw new UsageError(`--criterion takes ${CRITERIA.join(', ')} or all (comma-separated), got "${String(v)}"`);
  return names as CriterionName[];
}

function parseGrid(v: string | true | undefined, param: 'sigma2' | 'temperature'): number[] {
  if (v === undefined) return [...DEFAULT_GRID[param]];
  const xs = String(v).split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x < 0 || (param === 'temperature' && x === 0))) throw new UsageError(`--grid takes comma-separated numbers ${param === 'temperature' ? '> 0' : '>= 0'}, got "${String(v)}"`);
  return [...new Set(xs)].sort((a, b) => a - b);
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** The parameter an experiment's generated outliers take: sigma2 (BigGAN) or temperature (LM). */
function paramOf(name: string): 'sigma2' | 'temperature' {
  const c = EXPERIMENTS[name]!;
  if (c.outliers.some((o) => o.kind === 'biggan')) return 'sigma2';
  if (c.outliers.some((o) => o.kind === 'lm')) return 'temperature';
  throw new UsageError(`${name} has no generated outliers (BigGAN or LM): nothing to select`);
}

/** The baseline and generator files: given, in --base DIR, or trained into OUT/base (--base-only). */
async function baseFiles(name: string, param: 'sigma2' | 'temperature', own: { pretrained?: string; generator?: string; base?: string }, out: string, rest: string[], io: CliIo): Promise<{ baseline: string; generator: string } | number> {
  const gName = param === 'sigma2' ? 'G.safetensors' : 'lm.safetensors';
  if (own.pretrained !== undefined && own.generator !== undefined) return { baseline: resolve(own.pretrained), generator: resolve(own.generator) };
  const dir = own.base !== undefined ? resolve(own.base) : join(resolve(out), 'base');
  const baseline = own.pretrained !== undefined ? resolve(own.pretrained) : join(dir, 'baseline', 'model.safetensors');
  const generator = own.generator !== undefined ? resolve(own.generator) : join(dir, 'generator', gName);
  if (existsSync(baseline) && existsSync(generator)) return { baseline, generator };
  if (own.base !== undefined) throw new UsageError(`--base ${own.base} lacks ${existsSync(baseline) ? generator : baseline}: name a run or sweep base folder with baseline/model.safetensors and generator/${gName}`);
  const variant = EXPERIMENTS[name]!.outliers.find((o) => o.kind === (param === 'sigma2' ? 'biggan' : 'lm'))!.name;
  const args = [name, ...rest, '--out', dir, '--resume', '--base-only', '--variants', `none,${variant}`];
  if (own.pretrained !== undefined) args.push('--pretrained', resolve(own.pretrained));
  if (own.generator !== undefined) args.push('--generator', resolve(own.generator));
  io.stdout(`select: training the baseline and generator first -> ${dir}\n`);
  const parsed = parseExperimentArgs(args);
  const { code } = await runExperimentCli(name, parsed.opts, io);
  if (code !== EXIT_OK) return code;
  return { baseline, generator };
}

function summary(r: SelectResult): string {
  return r.criteria.map((c) => `${c.criterion}: ${r.param} = ${c.chosen}${c.reached ? '' : ` (${c.note})`}`).join('\n') + '\n';
}

export async function selectMain(args: string[], io: CliIo): Promise<number> {
  const own: Record<string, string | true> = {};
  const pass: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(args[i]!);
    if (args[i] === '-h' || m?.[1] === 'help') own.help = true;
    else if (m !== null && OWN.has(m[1]!)) {
      const v = m[2] ?? args[++i];
      if (v === undefined) throw new UsageError(`--${m[1]} needs a value`);
      own[m[1]!] = v;
    } else pass.push(args[i]!);
  }
  if (own.help === true) {
    io.stdout(SELECT_USAGE);
    return EXIT_OK;
  }
  const name = pass[0] !== undefined && !pass[0].startsWith('-') ? pass.shift()! : undefined;
  if (name === undefined) throw new UsageError('missing the experiment name');
  if (EXPERIMENTS[name] === undefined) throw new UsageError(`unknown experiment "${name}" (known: ${Object.keys(EXPERIMENTS).join(', ')})`);
  for (const a of pass) if (/^--(out|resume|base-only|variants|sigma2|temperature)(=|$)/.test(a)) throw new UsageError(`${a} is not taken by goe select`);
  const parsed = parseExperimentArgs([name, ...pass]);
  const param = paramOf(name);
  const sweep = typeof own.sweep === 'string' ? own.sweep : undefined;
  const criteria = parseCriteria(own.criterion, sweep !== undefined, param === 'sigma2');
  if (criteria.includes('proxy-ood') && sweep === undefined) throw new UsageError('--criterion proxy-ood reads a sweep\'s point models: --sweep DIR');
  let sweepValues: number[] | undefined;
  if (sweep !== undefined) {
    if (!existsSync(join(sweep, 'sweep-plan.json'))) throw new UsageError(`--sweep ${sweep} is not a sweep folder (no sweep-plan.json)`);
    const plan = JSON.parse(readFileSync(join(sweep, 'sweep-plan.json'), 'utf8')) as { experiment: string; param: string; values: number[]; generator?: string };
    if (plan.experiment !== name || plan.param !== param) throw new UsageError(`--sweep ${sweep} is a ${plan.param} sweep of ${plan.experiment}, not a ${param} sweep of ${name}`);
    sweepValues = plan.values;
    if (own.base === undefined && own.pretrained === undefined) own.base = join(sweep, 'base');
    // a sweep given --generator kept it there, not in base/generator
    if (own.generator === undefined && plan.generator !== undefined) own.generator = plan.generator;
  }
  const grid = own.grid === undefined && sweepValues !== undefined ? [...sweepValues].sort((a, b) => a - b) : parseGrid(own.grid, param);
  const out = typeof own.out === 'string' ? own.out : join('runs', `select-${name}-${timestamp()}`);
  const files = await baseFiles(name, param, { pretrained: own.pretrained as string | undefined, generator: own.generator as string | undefined, base: own.base as string | undefined }, out, pass, io);
  if (typeof files === 'number') return files;
  try {
    const r = await selectParameter({
      config: experimentConfig(name), param, grid, criteria, baseline: files.baseline, generator: files.generator, run: { ...parsed.opts, out: undefined } as Partial<RunOptions>,
      samples: num('samples', own.samples, (x) => Number.isInteger(x) && x >= 2, 'an integer >= 2'),
      holdout: num('holdout', own.holdout, (x) => Number.isInteger(x) && x >= 2, 'an integer >= 2'),
      mspQuantile: num('quantile', own.quantile, (x) => x > 0 && x < 1, 'a number in (0, 1)'),
      fraction: num('fraction', own.fraction, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
      sweep,
      log: (l) => io.stdout(`${l}\n`),
    });
    const written = writeSelect(out, r);
    io.stdout(`\n${selectMarkdown(r)}\n${summary(r)}written: ${written.join(', ')}\n`);
    return EXIT_OK;
  } catch (e) {
    if (e instanceof SelectInputError || isInputError(e)) {
      io.stderr(`goe select ${name}: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

/**
 * `goe experiment NAME --sigma2 auto` (or --temperature auto): select with `criterion` (default
 * defaultCriterion's) into
 * OUT/select (training the baseline and generator there unless given), then run the experiment
 * into OUT at the chosen value from that baseline and generator.
 */
export async function experimentWithAutoParameter(name: string, opts: Omit<RunOptions, 'out'> & { out?: string }, param: 'sigma2' | 'temperature', out: string, io: CliIo, samples?: number, criterion?: CriterionName): Promise<number> {
  const c = EXPERIMENTS[name]!;
  if (paramOf(name) !== param) throw new UsageError(`--${param} auto: ${name}'s generated outliers take --${paramOf(name)}`);
  const selectDir = join(out, 'select');
  const variant = c.outliers.find((o) => o.kind === (param === 'sigma2' ? 'biggan' : 'lm'))!.name;
  const baseDir = join(resolve(selectDir), 'base');
  const gName = param === 'sigma2' ? 'G.safetensors' : 'lm.safetensors';
  let baseline = opts.pretrained !== undefined ? resolve(opts.pretrained) : join(baseDir, 'baseline', 'model.safetensors');
  let generator = opts.generator !== undefined ? resolve(opts.generator) : join(baseDir, 'generator', gName);
  if (!existsSync(baseline) || !existsSync(generator)) {
    io.stdout(`goe experiment ${name}: --${param} auto: training the baseline and generator first -> ${baseDir}\n`);
    const { code } = await runExperimentCli(name, { ...opts, out: baseDir, resume: true, baseOnly: true, variants: ['none', variant], latent: opts.latent?.sigma2 === undefined ? opts.latent : { ...opts.latent, sigma2: undefined } }, io);
    if (code !== EXIT_OK) return code;
    baseline = opts.pretrained !== undefined ? baseline : join(baseDir, 'baseline', 'model.safetensors');
    generator = opts.generator !== undefined ? generator : join(baseDir, 'generator', gName);
  }
  let r: SelectResult;
  try {
    r = await selectParameter({ config: experimentConfig(name), param, grid: [...DEFAULT_GRID[param]], criteria: [criterion ?? defaultCriterion(param === 'sigma2')], baseline, generator, samples, run: { ...opts, out: undefined } as Partial<RunOptions>, log: (l) => io.stdout(`${l}\n`) });
  } catch (e) {
    if (e instanceof SelectInputError || isInputError(e)) {
      io.stderr(`goe experiment ${name}: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  writeSelect(selectDir, r);
  const chosen = r.criteria[0]!.chosen;
  io.stdout(`\n${selectMarkdown(r)}\ngoe experiment ${name}: --${param} auto chose ${chosen} (${join(selectDir, 'select.json')}); running the experiment at ${param} = ${chosen}\n`);
  const run = { ...opts, out, pretrained: baseline, generator, ...(param === 'sigma2' ? { latent: { ...opts.latent, sigma2: chosen } } : { temperature: chosen }) };
  const { code } = await runExperimentCli(name, run, io);
  return code === EXIT_OK ? EXIT_OK : code === EXIT_USAGE ? EXIT_USAGE : EXIT_FAILURE;
}

export const selectCommand: Subcommand = {
  name: 'select',
  summary: 'choose sigma^2 (or T) for the generated outliers without OOD data, with the evidence',
  usage: SELECT_USAGE,
  run: selectMain,
};
