/**
 * `goe experiment imagenet [options]`: the paper's ImageNet row (src/goe/experiments/imagenet.ts).
 * Its own options (the data trees, --weights, the generator's config) beside the shared ones; an
 * input the user can fix (no ImageNet tree, a missing weights file) is one line and exit 2.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { DivergenceError, NoAdapterError } from '../engine/index.ts';
import { IMAGENET_MODELS, IMAGENET_VARIANTS, isImageNetInputError, runImageNet, type ImageNetModelName, type ImageNetOptions } from '../goe/experiments/imagenet.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo } from './subcommand.ts';

export const IMAGENET_TITLE = "paper Table 1 / Table 3, ImageNet-1K: pretrained ViT-B/16 or ResNet-101, OE with none / noise / BigGAN-deep outliers (sigma^2 = 2), ImageNet-A/-R/-O";

export const IMAGENET_USAGE = `Usage: goe experiment imagenet [options]

${IMAGENET_TITLE}.
Fine-tunes the pretrained classifier with Outlier Exposure for 1,000 batches of 64 ImageNet training
images + 64 outliers (plain SGD lr 0.001, pytorch-ood's OE loss), then tests the validation set
against ImageNet-A, -R and -O with MSP and Energy. ImageNet itself cannot be downloaded: put
ILSVRC2012's class folders (n01440764/ ...) at DATA/imagenet/train and DATA/imagenet/val.

Options:
  --out DIR                 run folder (default: runs/imagenet-<date>)
  --resume                  continue the run in --out from its checkpoints (the same options, else
                            exit 2 with the folder untouched; bit-identical to an uninterrupted run)
  --model NAME              ${Object.keys(IMAGENET_MODELS).join(' | ')} (default vit-b16: pytorch-ood's
                            'b16-im21k-224' layout, the paper's; vit-tiny and resnet-tiny are reduced
                            models for tests, random weights allowed)
  --weights FILE            the classifier's weights (safetensors; goe convert makes them from .pth)
  --generator FILE          BigGAN-deep weights (the port's checkpoint converted by goe convert)
  --generator-config NAME   biggan-deep-128 (default) | biggan-deep-256 | biggan-deep-512 | biggan-deep-tiny,
                            or the port's config.json
  --outliers-dir DIR        the "generated" outliers as a folder of images made beforehand
  --imagenet-train PATH     ImageNet's training split (class folders; default DATA/imagenet/train)
  --imagenet-val PATH       ImageNet's validation split (class folders; default DATA/imagenet/val)
  --imagenet-a PATH         an extracted ImageNet-A tree (default: the data folder's, downloaded)
  --imagenet-r PATH, --imagenet-o PATH   likewise for ImageNet-R and -O
  --data-dir DIR            data folder (default: GOE_DATA_DIR or ~/.cache/goe-webgpu/data)
  --no-download             never download ImageNet-A/-R/-O
  --variants A,B            ${IMAGENET_VARIANTS.join(',')} (default all)
  --sigma2 X                the BigGAN latent scale (default 2), read as --latent-scale says
  --latent-scale S          std (z ~ N(0, X^2 I), the reference's z_var; default) or variance
  --truncation T            the port's batch-norm statistics row, in (0, 1] (default 1: untruncated)
  --count N                 outliers per variant (default 64,000 generated, 10,000 noise images)
  --micro-batch N           samples per forward (default: what fits the device's storage binding)
  --limit N                 cap every dataset (and the outlier count) at N
  --steps N                 fine-tuning batches per variant (default the recipe's 1,000)
  --max-steps N             stop each fine-tuning phase after N batches in this call (checkpointed),
                            then evaluate (PROVISIONAL); --resume continues it
  --lr X                    the fine-tuning learning rate (default the recipe's 0.001)
  --checkpoint-every N      fine-tuning checkpoint interval in batches (default 50; the last two kept)
  --workers N               data-loader worker threads
  --seed N                  seed (default 0)
  -h, --help                show this help
`;

const OPTIONS = {
  out: { type: 'string' },
  resume: { type: 'boolean' },
  model: { type: 'string' },
  weights: { type: 'string' },
  generator: { type: 'string' },
  'generator-config': { type: 'string' },
  'outliers-dir': { type: 'string' },
  'imagenet-train': { type: 'string' },
  'imagenet-val': { type: 'string' },
  'imagenet-a': { type: 'string' },
  'imagenet-r': { type: 'string' },
  'imagenet-o': { type: 'string' },
  'data-dir': { type: 'string' },
  'no-download': { type: 'boolean' },
  variants: { type: 'string' },
  sigma2: { type: 'string' },
  'latent-scale': { type: 'string' },
  truncation: { type: 'string' },
  count: { type: 'string' },
  'micro-batch': { type: 'string' },
  limit: { type: 'string' },
  steps: { type: 'string' },
  'max-steps': { type: 'string' },
  lr: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  workers: { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Is this `goe experiment` invocation the imagenet experiment? (its name is the first positional) */
export function isImageNetInvocation(args: string[]): boolean {
  try {
    const { positionals } = parseArgs({ args, options: OPTIONS, strict: false, allowPositionals: true });
    return positionals[0] === 'imagenet';
  } catch {
    return false;
  }
}

function count(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

function real(name: string, v: string | undefined, ok: (x: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new UsageError(`--${name} takes ${what}, got "${v}"`);
  return x;
}

export function parseImageNetArgs(args: string[]): { help: boolean; opts: Omit<ImageNetOptions, 'out'> & { out?: string } } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (parsed.positionals.length !== 1 || parsed.positionals[0] !== 'imagenet') throw new UsageError(`one experiment at a time, got ${parsed.positionals.join(', ')}`);
  const model = v.model;
  if (model !== undefined && !(model in IMAGENET_MODELS)) throw new UsageError(`--model takes ${Object.keys(IMAGENET_MODELS).join(', ')} for the imagenet experiment, got "${model}"`);
  const scale = v['latent-scale'];
  if (scale !== undefined && scale !== 'std' && scale !== 'variance') throw new UsageError(`--latent-scale takes std or variance, got "${scale}"`);
  const variants = v.variants?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (variants !== undefined && variants.length === 0) throw new UsageError(`--variants takes a comma-separated list of ${IMAGENET_VARIANTS.join(', ')}`);
  const limit = count('limit', v.limit, 0);
  if (v.resume === true && v.out === undefined) throw new UsageError('--resume needs --out DIR (the run folder to continue)');
  return {
    help: v.help === true,
    opts: {
      out: v.out,
      resume: v.resume === true,
      model: model as ImageNetModelName | undefined,
      weights: v.weights,
      generator: v.generator,
      generatorConfig: v['generator-config'],
      outliersDir: v['outliers-dir'],
      imagenetTrain: v['imagenet-train'],
      imagenetVal: v['imagenet-val'],
      imagenetA: v['imagenet-a'],
      imagenetR: v['imagenet-r'],
      imagenetO: v['imagenet-o'],
      dataDir: v['data-dir'],
      download: v['no-download'] !== true,
      variants,
      sigma2: real('sigma2', v.sigma2, (x) => x >= 0, 'a finite number >= 0 (e.g. 2)'),
      latentScale: scale as 'std' | 'variance' | undefined,
      truncation: real('truncation', v.truncation, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
      count: count('count', v.count, 1),
      microBatch: count('micro-batch', v['micro-batch'], 1),
      limit: limit === 0 ? undefined : limit,
      steps: count('steps', v.steps, 1),
      maxSteps: count('max-steps', v['max-steps'], 1),
      lr: real('lr', v.lr, (x) => x > 0, 'a finite number > 0 (e.g. 0.001)'),
      checkpointEvery: count('checkpoint-every', v['checkpoint-every'], 1),
      workers: count('workers', v.workers, 0),
      seed: count('seed', v.seed, 0),
    },
  };
}

function defaultDir(): string {
  const d = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `imagenet-${d}`);
}

export async function imagenetExperimentMain(args: string[], io: CliIo): Promise<number> {
  const { help, opts } = parseImageNetArgs(args);
  if (help) {
    io.stdout(IMAGENET_USAGE);
    return EXIT_OK;
  }
  try {
    const result = await runImageNet({ ...opts, out: opts.out ?? defaultDir(), log: (l) => io.stdout(`${l}\n`) });
    io.stdout(`done: ${result.files.markdown}, ${result.files.csv}, ${result.files.json}\n`);
    return EXIT_OK;
  } catch (e) {
    if (isImageNetInputError(e) || e instanceof NoAdapterError) {
      io.stderr(`goe experiment imagenet: ${(e as Error).message}\n`);
      return e instanceof NoAdapterError ? 3 : EXIT_USAGE;
    }
    if (e instanceof DivergenceError) {
      // the run failed, not the program: one line naming the phase, the step and the last good checkpoint
      io.stderr(`goe experiment imagenet: ${e.message}\n`);
      return EXIT_FAILURE;
    }
    io.stderr(`goe experiment imagenet: failed: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT_FAILURE;
  }
}
