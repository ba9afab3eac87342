/**
 * `goe run`: the main job on its embedded default, the `fmnist` experiment (GOE on Fashion-MNIST
 * with real OOD sets, 19.6 minutes measured on a 2-core software adapter). Fashion-MNIST comes from the
 * data folder, else Debian's dataset-fashion-mnist package, else the official download (md5
 * checked); only when all of these fail does it run the `smoke` experiment (synthetic data made in
 * memory, same code path) instead, say so, and say how to get the data.
 * Exit 0 on success, 2 on bad options, 3 without a WebGPU adapter, 1 on any other failure.
 */
import { parseArgs } from 'node:util';
import { init, NoAdapterError } from '../engine/index.ts';
import { loadMnist, locate, registryEntry } from '../data/index.ts';
import { EXPERIMENTS } from '../goe/experiments/index.ts';
import { runExperimentCli } from './experiment.ts';
import { EXIT_FAILURE, EXIT_OK, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

const RUN_USAGE = `Usage: goe run [--out DIR] [--data-dir DIR] [--resume] [--full] [--no-download]

Runs the main job: the fmnist GOE experiment (goe experiment fmnist): a WideResNet on
Fashion-MNIST, fine-tuned with Outlier Exposure on no outliers, uniform noise and BigGAN samples,
tested with MSP and Energy against real OOD images (font glyphs, icons, and MNIST, KMNIST,
notMNIST, CIFAR-10 grey when in the data folder). Fashion-MNIST is read from the data folder,
Debian's dataset-fashion-mnist package, or downloaded; without it, the synthetic smoke
experiment runs instead, with a note on how to get the data.

  --out DIR        run folder (default: runs/<experiment>-<date>)
  --data-dir DIR   data folder (default: GOE_DATA_DIR or ~/.cache/goe-webgpu/data)
  --resume         continue from the checkpoints in --out
  --full           the usual recipes instead of the 20-minute budget (hours on a CPU)
  --no-download    never download Fashion-MNIST (the data folder or Debian's package only)
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

/** Fashion-MNIST from the data folder or Debian's package, else downloaded; the reason when neither works. */
async function fashionMnistReason(dir: string | undefined, download: boolean): Promise<string | null> {
  try {
    await loadMnist('fashion-mnist', 'test', { dir, download: false });
    return null;
  } catch (e) {
    if (!download) return (e as Error).message;
  }
  try {
    await loadMnist('fashion-mnist', 'train', { dir, download: true });
    await loadMnist('fashion-mnist', 'test', { dir, download: true });
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

export async function runMain(args: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { out: { type: 'string' }, 'data-dir': { type: 'string' }, resume: { type: 'boolean' }, full: { type: 'boolean' }, 'no-download': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
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
  const common = { out: values.out, dataDir, resume: values.resume === true };
  const reason = await fashionMnistReason(dataDir, values['no-download'] !== true);
  if (reason === null) {
    io.stdout(`goe run: the main job, experiment fmnist${values.full === true ? ' --full' : ''} (${EXPERIMENTS.fmnist!.title})\n`);
    return (await runExperimentCli('fmnist', { ...common, full: values.full === true, download: false }, io)).code;
  }
  const e = registryEntry('fashion-mnist');
  io.stdout(
    [
      `goe run: the main job is the fmnist experiment, but Fashion-MNIST could not be found or downloaded here (${reason}).`,
      "Install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist), or put these files in the data folder:",
      ...e.files.map((f) => `  ${f.url} -> <data-dir>/${e.folder ?? e.name}/${f.name}`),
      'Running the SMOKE experiment instead (synthetic in-memory data, WRN-10-1, same pipeline end to end);',
      'its numbers say nothing about real data.',
      '',
    ].join('\n'),
  );
  const { code, result } = await runExperimentCli('smoke', { ...common, download: false }, io);
  if (result !== undefined) io.stdout(`goe run: ran the smoke experiment (not the fmnist main job); results in ${result.dir}\n`);
  return code;
}

export const runCommand: Subcommand = {
  name: 'run',
  summary: 'the main job: the fmnist GOE experiment (the smoke experiment when Fashion-MNIST cannot be had)',
  usage: RUN_USAGE,
  run: runMain,
};
