/**
 * `goe experiment <name>`: runs one of the paper's experiments (cifar10, cifar100, newsgroups) or
 * the synthetic `smoke` run end to end into a run folder (see src/goe/experiments/runner.ts).
 * A missing dataset or generator is reported with what to fetch and where to put it, exit 2.
 */
import { parseArgs } from 'node:util';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EXPERIMENTS, experimentConfig, isInputError, runExperiment, type ExperimentResult, type RunOptions } from '../goe/experiments/index.ts';
import { DivergenceError, NoAdapterError } from '../engine/index.ts';
import { terminalProgress } from '../goe/train/progress.ts';
import { IMAGENET_TITLE, imagenetExperimentMain, isImageNetInvocation } from './experiment-imagenet.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

export const EXPERIMENT_USAGE = `Usage: goe experiment <name> [options]

Runs a GOE experiment end to end: baseline training, outlier sampling, Outlier Exposure
fine-tuning per outlier variant, MSP/Energy evaluation; writes checkpoints, train.log and
results.md / results.csv / results.json into the run folder.

Experiments:
${Object.values(EXPERIMENTS).map((c) => `  ${c.name.padEnd(11)} ${c.title}`).join('\n')}
  ${'imagenet'.padEnd(11)} ${IMAGENET_TITLE} (goe experiment imagenet --help)

Options:
  --out DIR             run folder (default: runs/<name>-<date>)
  --resume              continue from the checkpoints in --out (bit-identical to an uninterrupted run;
                        a corrupt newest checkpoint is said and the previous one used)
  --epochs N            OE fine-tuning epochs (overrides the config)
  --pretrain-epochs N   baseline training epochs (overrides the config)
  --oe-repo             fine-tune with the OE repo's recipe (10 epochs, cosine lr 0.001 stepped per
                        batch before the update, Nesterov, wd 5e-4, 128 inliers + 256 outliers, both
                        cropped and flipped, separate means) instead of the paper's
  --pretrained FILE     baseline weights (safetensors state dict): skip baseline training
  --generator FILE      generator weights for the "generated" outliers (BigGAN G / word LM, safetensors)
  --outliers-file FILE  precomputed "generated" outliers (.npz with "x", or .npy)
  --variants A,B        only these outlier variants (e.g. none,noise)
  --detectors A,B       detectors to evaluate (default MSP,Energy; also MaxLogit, Entropy)
  --data-dir DIR        data folder (default: GOE_DATA_DIR or ~/.cache/goe-webgpu/data)
  --no-download         never download; a missing dataset is an error naming the file and URL
  --limit N             cap every dataset at N samples (quick runs)
  --max-steps N         stop every training phase after N steps (then evaluate)
  --workers N           data-loader worker threads
  --full                the usual recipes where the experiment's default is cut to a time budget
                        (fmnist: WRN-40-2 100 epochs, the CIFAR BigGAN script, 25-epoch OE fine-tuning)
  --ood NAME=PATH       also test against your images (repeatable; image experiments): an IDX file
                        (plain or .gz), .npy/.npz (uint8 0-255 or float 0-1; NHW, NCHW or NHWC) or a
                        folder of PNG/JPEG files; converted to the inliers' channels and size
                        (src/data/README.md) and reported with the other OOD sets
  --train PATH          (images) your labelled training images: a folder of class folders, an IDX
                        images file (its labels file beside it) or an .npz with x and y
  --test PATH           (images) your labelled test images, in the same form
  --model wrn-D-K       the classifier: WideResNet depth D (6n + 4), widen factor K
  --sigma2 X            the BigGAN outliers' latent scale (the paper's sigma^2; default 50 on CIFAR
                        and fmnist, read as --latent-scale says); auto: chosen first without OOD
                        data (goe select with --select-criterion; evidence in OUT/select/)
  --latent-scale S      std (z ~ N(0, X^2 I): BigGAN-PyTorch's z_var, the reference; default) or
                        variance (z ~ N(0, X I): the paper's notation read literally)
  --sample-mode M       train (BatchNorm on each sampling batch, sample.py's default) or eval
  --seed N              seed of the outlier sampling and OE fine-tuning (default: the experiment's;
                        the baseline, data subsets and test sets keep the experiment's seed)
  --count N             outliers per variant (overrides the config)
  --lambda X            weight of the OE term (paper: 0.5)
  --temperature T       the LM outliers' sampling temperature (text; paper: 2); auto as --sigma2
  --select-samples N    samples per grid value when --sigma2 / --temperature is auto (default 512)
  --select-criterion C  the criterion of auto: feature-band (images' default), msp-quantile (text's
                        default) or proxy-ood needs a sweep (goe select --help)
  --eval-every-epoch    OOD metrics on the test sets after step 0 and every fine-tuning epoch:
                        results.json variants[].curve, convergence-AUROC/-FPR95TPR.svg/.png
  --eval-every N        also every N fine-tuning steps (implies --eval-every-epoch)
  --base-only           stop after the generator and the baseline's evaluation (a sweep's base)
  -h, --help            show this help
`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got "${v}"`);
  return n;
}

/** A count of training that must do something (0 epochs or steps would leave every variant untrained). */
function positive(name: string, v: string | undefined): number | undefined {
  const n = int(name, v);
  if (n === 0) throw new UsageError(`--${name} must be at least 1 (0 would train nothing)`);
  return n;
}

/** --variants A,B: at least one name. */
function parseVariants(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError(`--variants takes a comma-separated list of outlier variants (e.g. none,noise), got "${v}"`);
  return names;
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  const n = int(name, v);
  if (n === 0) throw new UsageError(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

function nonNegative(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < 0) throw new UsageError(`--${name} takes a finite number >= 0, got "${v}"`);
  return x;
}

function positiveNumber(name: string, v: string | undefined): number | undefined {
  const x = nonNegative(name, v);
  if (x === 0) throw new UsageError(`--${name} takes a number > 0, got "${v}"`);
  return x;
}

/** Experiment options as parsed; `auto`: --sigma2 auto / --temperature auto (select first). */
export type ExperimentCliOptions = Omit<RunOptions, 'out'> & { out?: string; auto?: 'sigma2' | 'temperature'; selectSamples?: number; selectCriterion?: 'feature-band' | 'msp-quantile' };

export function parseExperimentArgs(args: string[]): { help: boolean; name?: string; opts: ExperimentCliOptions } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        resume: { type: 'boolean' },
        epochs: { type: 'string' },
        'pretrain-epochs': { type: 'string' },
        'oe-repo': { type: 'boolean' },
        pretrained: { type: 'string' },
        generator: { type: 'string' },
        'outliers-file': { type: 'string' },
        variants: { type: 'string' },
        detectors: { type: 'string' },
        'data-dir': { type: 'string' },
        'no-download': { type: 'boolean' },
        limit: { type: 'string' },
        'max-steps': { type: 'string' },
        workers: { type: 'string' },
        full: { type: 'boolean' },
        ood: { type: 'string', multiple: true },
        train: { type: 'string' },
        test: { type: 'string' },
        model: { type: 'string' },
        sigma2: { type: 'string' },
        'latent-scale': { type: 'string' },
        'sample-mode': { type: 'string' },
        seed: { type: 'string' },
        count: { type: 'string' },
        lambda: { type: 'string' },
        temperature: { type: 'string' },
        'eval-every-epoch': { type: 'boolean' },
        'eval-every': { type: 'string' },
        'base-only': { type: 'boolean' },
        'select-samples': { type: 'string' },
        'select-criterion': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (parsed.positionals.length > 1) throw new UsageError(`one experiment at a time, got ${parsed.positionals.join(', ')}`);
  const limit = int('limit', v.limit);
  if (v.resume === true && v.out === undefined) throw new UsageError('--resume needs --out DIR (the run folder to continue)');
  return {
    help: v.help === true,
    name: parsed.positionals[0],
    opts: {
      out: v.out,
      resume: v.resume === true,
      epochs: positive('epochs', v.epochs),
      pretrainEpochs: positive('pretrain-epochs', v['pretrain-epochs']),
      oeRepo: v['oe-repo'] === true,
      pretrained: v.pretrained,
      generator: v.generator,
      outliersFile: v['outliers-file'],
      variants: parseVariants(v.variants),
      detectors: parseDetectors(v.detectors),
      dataDir: v['data-dir'],
      download: v['no-download'] !== true,
      limit: limit === 0 ? undefined : limit,
      maxSteps: positive('max-steps', v['max-steps']),
      workers: int('workers', v.workers),
      full: v.full === true,
      ood: parseOod(v.ood),
      train: v.train,
      test: v.test,
      model: parseModel(v.model),
      latent: parseLatent(v.sigma2 === 'auto' ? undefined : v.sigma2, v['latent-scale'], v['sample-mode']),
      auto: v.sigma2 === 'auto' ? 'sigma2' : v.temperature === 'auto' ? 'temperature' : undefined,
      selectSamples: positiveInt('select-samples', v['select-samples']),
      selectCriterion: parseSelectCriterion(v['select-criterion'], v.sigma2 === 'auto' ? 'sigma2' : v.temperature === 'auto' ? 'temperature' : undefined),
      seed: int('seed', v.seed),
      count: positiveInt('count', v.count),
      lambda: nonNegative('lambda', v.lambda),
      temperature: v.temperature === 'auto' ? undefined : positiveNumber('temperature', v.temperature),
      evalEveryEpoch: v['eval-every-epoch'] === true || v['eval-every'] !== undefined,
      evalEvery: positiveInt('eval-every', v['eval-every']),
      baseOnly: v['base-only'] === true,
    },
  };
}

/** --select-criterion: the criterion of --sigma2 auto / --temperature auto (goe select's without a sweep). */
function parseSelectCriterion(v: string | undefined, auto: 'sigma2' | 'temperature' | undefined): 'feature-band' | 'msp-quantile' | undefined {
  if (v === undefined) return undefined;
  if (auto === undefined) throw new UsageError('--select-criterion applies to --sigma2 auto or --temperature auto');
  if (v !== 'feature-band' && v !== 'msp-quantile') throw new UsageError(`--select-criterion takes feature-band or msp-quantile (proxy-ood needs a sweep: goe select --sweep), got "${v}"`);
  if (v === 'feature-band' && auto !== 'sigma2') throw new UsageError('--select-criterion feature-band is for image experiments (WRN features); text: msp-quantile');
  return v;
}

/** --sigma2, --latent-scale, --sample-mode: how the BigGAN outliers are sampled. */
function parseLatent(sigma2: string | undefined, scale: string | undefined, mode: string | undefined): RunOptions['latent'] {
  if (sigma2 === undefined && scale === undefined && mode === undefined) return undefined;
  const out: NonNullable<RunOptions['latent']> = {};
  if (sigma2 !== undefined) {
    const x = Number(sigma2);
    if (sigma2.trim() === '' || !Number.isFinite(x) || x < 0) throw new UsageError(`--sigma2 takes a finite number >= 0 (e.g. 50), got "${sigma2}"`);
    out.sigma2 = x;
  }
  if (scale !== undefined) {
    if (scale !== 'std' && scale !== 'variance') throw new UsageError(`--latent-scale takes std or variance, got "${scale}"`);
    out.scale = scale;
  }
  if (mode !== undefined) {
    if (mode !== 'train' && mode !== 'eval') throw new UsageError(`--sample-mode takes train or eval, got "${mode}"`);
    out.mode = mode;
  }
  return out;
}

/** --ood NAME=PATH, repeatable; names are unique. */
function parseOod(v: string[] | undefined): RunOptions['ood'] {
  if (v === undefined) return undefined;
  const out: { name: string; path: string }[] = [];
  for (const item of v) {
    const at = item.indexOf('=');
    const name = at > 0 ? item.slice(0, at).trim() : '';
    const path = at > 0 ? item.slice(at + 1) : '';
    if (name === '' || path === '') throw new UsageError(`--ood takes NAME=PATH (e.g. --ood mnist=t10k-images-idx3-ubyte.gz), got "${item}"`);
    if (out.some((o) => o.name === name)) throw new UsageError(`--ood ${name} is given twice: each OOD set needs its own name`);
    out.push({ name, path });
  }
  return out;
}

/** --model wrn-D-K: D = 6n + 4, K >= 1. */
function parseModel(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const m = /^wrn-(\d+)-(\d+)$/.exec(v);
  if (m === null || (Number(m[1]) - 4) % 6 !== 0 || Number(m[1]) < 10 || Number(m[2]) < 1) {
    throw new UsageError(`--model takes wrn-D-K with depth D = 6n + 4 >= 10 and widen factor K >= 1 (e.g. wrn-16-2, wrn-40-2), got "${v}"`);
  }
  return v;
}

const DETECTOR_NAMES = ['MSP', 'Energy', 'MaxLogit', 'Entropy'] as const;

function parseDetectors(v: string | undefined): RunOptions['detectors'] {
  if (v === undefined) return undefined;
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = names.filter((n) => !(DETECTOR_NAMES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) throw new UsageError(`--detectors takes a comma-separated list of ${DETECTOR_NAMES.join(', ')}; got "${v}"`);
  return names as RunOptions['detectors'];
}

export function defaultRunDir(name: string): string {
  const d = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `${name}-${d}`);
}

/** Runs an experiment for the CLI: input errors -> message + exit 2, no adapter -> 3. */
export async function runExperimentCli(name: string, opts: Omit<RunOptions, 'out'> & { out?: string }, io: CliIo): Promise<{ code: number; result?: ExperimentResult }> {
  const config = experimentConfig(name);
  const out = opts.out ?? defaultRunDir(name);
  const outIsNew = !existsSync(out);
  const progress = io.terminal !== undefined ? terminalProgress(io.terminal) : undefined;
  try {
    const result = await runExperiment(config, { ...opts, out, log: progress?.log ?? ((l) => io.stdout(`${l}\n`)), progress });
    progress?.stop();
    io.stdout(`done: ${result.files.markdown}, ${result.files.csv}, ${result.files.json}\n`);
    return { code: EXIT_OK, result };
  } catch (e) {
    progress?.stop();
    if (isInputError(e)) {
      io.stderr(`goe experiment ${name}: ${(e as Error).message}\n`);
      return { code: EXIT_USAGE };
    }
    if (e instanceof NoAdapterError) {
      // no device, so nothing ran: a run folder this call made holds no work, and is removed
      if (outIsNew) rmSync(out, { recursive: true, force: true });
      io.stderr(`goe experiment ${name}: ${e.message}\n`);
      return { code: 3 };
    }
    if (e instanceof DivergenceError) {
      // the run failed, not the program: one line naming the phase, the step and the last good checkpoint
      io.stderr(`goe experiment ${name}: ${e.message}\n`);
      return { code: EXIT_FAILURE };
    }
    io.stderr(`goe experiment ${name}: failed: ${(e as Error).stack ?? String(e)}\n`);
    return { code: EXIT_FAILURE };
  }
}

export async function experimentMain(args: string[], io: CliIo): Promise<number> {
  if (isImageNetInvocation(args)) return imagenetExperimentMain(args, io);
  const { help, name, opts } = parseExperimentArgs(args);
  if (help) {
    io.stdout(EXPERIMENT_USAGE);
    return EXIT_OK;
  }
  if (name === undefined) throw new UsageError('missing the experiment name');
  if (EXPERIMENTS[name] === undefined) throw new UsageError(`unknown experiment "${name}" (known: ${Object.keys(EXPERIMENTS).join(', ')})`);
  if (opts.auto !== undefined) {
    if (opts.resume) throw new UsageError(`--${opts.auto} auto starts a new run folder; --resume a finished selection's run with --${opts.auto} set to the chosen value`);
    const { experimentWithAutoParameter } = await import('./select.ts');
    const { auto, selectSamples, selectCriterion, ...rest } = opts;
    return experimentWithAutoParameter(name, rest, auto, opts.out ?? defaultRunDir(name), io, selectSamples, selectCriterion);
  }
  return (await runExperimentCli(name, opts, io)).code;
}

export const experimentCommand: Subcommand = {
  name: 'experiment',
  summary: 'run a GOE experiment end to end (fmnist, images, cifar10, cifar100, newsgroups, imagenet, smoke, smoke-text)',
  usage: EXPERIMENT_USAGE,
  run: experimentMain,
};
