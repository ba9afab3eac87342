/**
 * `goe run`: the main job. Until the end-to-end GOE pipeline exists (train or load a generator,
 * sample outliers from its low-density region, fine-tune a classifier with outlier exposure,
 * evaluate OOD detection), it checks the engine on this machine (adapter line, one kernel round
 * trip) and says what exists today and what is coming. Exit 0 when the engine works, 3 when no
 * adapter is available, 1 on any other engine failure.
 */
import { EXIT_OK, EXIT_FAILURE, type CliIo, type Subcommand } from './subcommand.ts';
import { init, tensor, add, NoAdapterError } from '../engine/index.ts';

const RUN_USAGE = 'Usage: goe run\n\nChecks the engine on this machine and says what the GOE pipeline will run.\n';

export async function runMain(_args: string[], io: CliIo): Promise<number> {
  try {
    const { device } = await init();
    io.stdout(`${device.describe()}\n`);
    const sum = await add(tensor([1, 2, 3]), tensor([10, 20, 30])).data();
    if (Array.from(sum).join(',') !== '11,22,33') throw new Error(`engine self-check returned ${Array.from(sum)} instead of 11,22,33`);
    io.stdout('engine self-check: ok\n');
  } catch (e) {
    io.stderr(`goe run: ${(e as Error).message}\n`);
    return e instanceof NoAdapterError ? 3 : EXIT_FAILURE;
  }
  io.stdout(
    [
      '',
      'The end-to-end GOE pipeline (generator -> low-density outlier samples -> OE fine-tuning ->',
      'MSP/Energy OOD evaluation) is not wired into `goe run` yet. What exists today:',
      '  goe metrics --in IN_SCORES --out OOD_SCORES   AUROC, AUPR-IN, AUPR-OUT, FPR95TPR from score files',
      '  the engine (src/engine): tensors, autograd, WGSL kernels, nn modules, optimizers, checkpoints',
      '  OOD detectors and OE / energy losses (src/goe), dataset readers and batching (src/data)',
      '  kernel benchmarks: node bench/matmul.ts (validated, then timed; --json)',
      'See `goe --help` and README.md.',
      '',
    ].join('\n'),
  );
  return EXIT_OK;
}

export const runCommand: Subcommand = {
  name: 'run',
  summary: 'the main job: checks the engine here and says what the GOE pipeline will run',
  usage: RUN_USAGE,
  run: runMain,
};
