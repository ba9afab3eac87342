/**
 * `goe run`: the main job, on its embedded default: the paper's headline setting, the `cifar100`
 * experiment (WRN-40-2, OE fine-tuning with no outliers / uniform noise / the paper's generated
 * samples at sigma^2 = 50, MSP and Energy on the five OOD sets), when its data is in the data
 * folder. When it is not (an offline machine), it runs the `smoke` experiment end to end instead
 * (synthetic data made in memory, same code path), says so, and says how to get the real data.
 * Exit 0 on success, 2 on bad options, 3 without a WebGPU adapter, 1 on any other failure.
 */
import { parseArgs } from 'node:util';
import { init, NoAdapterError } from '../engine/index.ts';
import { locate, registryEntry } from '../data/index.ts';
import { EXPERIMENTS } from '../goe/experiments/index.ts';
import { runExperimentCli } from './experiment.ts';
import { EXIT_FAILURE, EXIT_OK, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

const RUN_USAGE = `Usage: goe run [--out DIR] [--data-dir DIR] [--resume]

Runs the main job: the cifar100 GOE experiment (goe experiment cifar100) when CIFAR-100, the
five OOD test sets and the paper's generated samples are in the data folder; otherwise the
synthetic smoke experiment end to end, with a note on how to get the real data.

  --out DIR        run folder (default: runs/<experiment>-<date>)
  --data-dir DIR   data folder (default: GOE_DATA_DIR or ~/.cache/goe-webgpu/data)
  --resume         continue from the checkpoints in --out
  -h, --help       show this help
`;

/** The datasets the cifar100 experiment reads, by registry name. */
export const CIFAR100_DATASETS = ['cifar100', 'textures', 'lsun-crop', 'lsun-resize', 'tinyimagenet-crop', 'tinyimagenet-resize', 'goe-cifar100-samples'];

/** Which of `names` are missing from the data folder (no network). */
export async function missingDatasets(names: readonly string[], dir?: string): Promise<string[]> {
  const missing: string[] = [];
  for (const n of names) {
    try {
      await locate(n, { dir });
    } catch (e) {
      // CIFAR-100 may also be there as torchvision's python copy
      if (n === 'cifar100') {
        try {
          await locate('cifar100-python', { dir });
          continue;
        } catch {
          // missing in both formats
        }
      }
      if (!(e instanceof Error) || e.name !== 'DatasetUnavailableError') throw e;
      missing.push(n);
    }
  }
  return missing;
}

export async function runMain(args: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { out: { type: 'string' }, 'data-dir': { type: 'string' }, resume: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    io.stdout(RUN_USAGE);
    return EXIT_OK;
  }
  if (values.resume === true && values.out === undefined) throw new UsageError('--resume needs --out DIR (the run folder to continue)');
  try {
    await init();
  } catch (e) {
    io.stderr(`goe run: ${(e as Error).message}\n`);
    return e instanceof NoAdapterError ? 3 : EXIT_FAILURE;
  }
  const dataDir = values['data-dir'];
  const missing = await missingDatasets(CIFAR100_DATASETS, dataDir);
  const common = { out: values.out, dataDir, resume: values.resume === true };
  if (missing.length === 0) {
    io.stdout(`goe run: the main job, experiment cifar100 (${EXPERIMENTS.cifar100!.title})\n`);
    return (await runExperimentCli('cifar100', { ...common, download: false }, io)).code;
  }
  const lines = missing.map((n) => {
    const e = registryEntry(n);
    return `  ${n}: ${e.files.map((f) => `${f.url} -> <data-dir>/${e.folder ?? e.name}/${f.name}`).join(', ')}`;
  });
  io.stdout(
    [
      'goe run: the main job is the cifar100 experiment, but its data is not in the data folder here:',
      ...lines,
      'Running the SMOKE experiment instead (synthetic in-memory data, WRN-10-1, same pipeline end to end);',
      'its numbers say nothing about the paper. To run the real job: `goe experiment cifar100` on a connected',
      'machine downloads the data (or put the files above in GOE_DATA_DIR), then `goe run` again.',
      '',
    ].join('\n'),
  );
  const { code, result } = await runExperimentCli('smoke', { ...common, download: false }, io);
  if (result !== undefined) io.stdout(`goe run: ran the smoke experiment (not the paper's cifar100 run); results in ${result.dir}\n`);
  return code;
}

export const runCommand: Subcommand = {
  name: 'run',
  summary: 'the main job: the cifar100 GOE experiment (the smoke experiment when its data is missing)',
  usage: RUN_USAGE,
  run: runMain,
};
