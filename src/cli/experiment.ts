/**
 * `goe experiment <name>`: runs one of the paper's experiments (cifar10, cifar100, newsgroups) or
 * the synthetic `smoke` run end to end into a run folder (see src/goe/experiments/runner.ts).
 * A missing dataset or generator is reported with what to fetch and where to put it, exit 2.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { EXPERIMENTS, experimentConfig, isInputError, runExperiment, type ExperimentResult, type RunOptions } from '../goe/experiments/index.ts';
import { NoAdapterError } from '../engine/index.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

export const EXPERIMENT_USAGE = `Usage: goe experiment <name> [options]

Runs a GOE experiment end to end: baseline training, outlier sampling, Outlier Exposure
fine-tuning per outlier variant, MSP/Energy evaluation; writes checkpoints, train.log and
results.md / results.csv / results.json into the run folder.

Experiments:
${Object.values(EXPERIMENTS).map((c) => `  ${c.name.padEnd(11)} ${c.title}`).join('\n')}

Options:
  --out DIR             run folder (default: runs/<name>-<date>)
  --resume              continue from the checkpoints in --out (bit-identical to an uninterrupted run)
  --epochs N            OE fine-tuning epochs (overrides the config)
  --pretrain-epochs N   baseline training epochs (overrides the config)
  --oe-repo             fine-tune with the OE repo's recipe (10 epochs, cosine lr 0.001, Nesterov,
                        wd 5e-4, 128 inliers + 256 outliers, separate means) instead of the paper's
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
  -h, --help            show this help
`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got "${v}"`);
  return n;
}

export function parseExperimentArgs(args: string[]): { help: boolean; name?: string; opts: Omit<RunOptions, 'out'> & { out?: string } } {
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
      epochs: int('epochs', v.epochs),
      pretrainEpochs: int('pretrain-epochs', v['pretrain-epochs']),
      oeRepo: v['oe-repo'] === true,
      pretrained: v.pretrained,
      generator: v.generator,
      outliersFile: v['outliers-file'],
      variants: v.variants?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
      detectors: parseDetectors(v.detectors),
      dataDir: v['data-dir'],
      download: v['no-download'] !== true,
      limit: limit === 0 ? undefined : limit,
      maxSteps: int('max-steps', v['max-steps']),
      workers: int('workers', v.workers),
    },
  };
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
  try {
    const result = await runExperiment(config, { ...opts, out, log: (l) => io.stdout(`${l}\n`) });
    io.stdout(`done: ${result.files.markdown}, ${result.files.csv}, ${result.files.json}\n`);
    return { code: EXIT_OK, result };
  } catch (e) {
    if (isInputError(e)) {
      io.stderr(`goe experiment ${name}: ${(e as Error).message}\n`);
      return { code: EXIT_USAGE };
    }
    if (e instanceof NoAdapterError) {
      io.stderr(`goe experiment ${name}: ${e.message}\n`);
      return { code: 3 };
    }
    io.stderr(`goe experiment ${name}: failed: ${(e as Error).stack ?? String(e)}\n`);
    return { code: EXIT_FAILURE };
  }
}

export async function experimentMain(args: string[], io: CliIo): Promise<number> {
  const { help, name, opts } = parseExperimentArgs(args);
  if (help) {
    io.stdout(EXPERIMENT_USAGE);
    return EXIT_OK;
  }
  if (name === undefined) throw new UsageError('missing the experiment name');
  if (EXPERIMENTS[name] === undefined) throw new UsageError(`unknown experiment "${name}" (known: ${Object.keys(EXPERIMENTS).join(', ')})`);
  return (await runExperimentCli(name, opts, io)).code;
}

export const experimentCommand: Subcommand = {
  name: 'experiment',
  summary: 'run a GOE experiment end to end (cifar10, cifar100, newsgroups, smoke, smoke-text)',
  usage: EXPERIMENT_USAGE,
  run: experimentMain,
};
