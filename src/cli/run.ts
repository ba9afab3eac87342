/**
 * `goe run`: placeholder for the end-to-end GOE pipeline. It says what is coming and what works
 * today, and exits 1 so that no script mistakes it for a finished run.
 */
import { EXIT_FAILURE, type CliIo, type Subcommand } from './subcommand.ts';

const RUN_USAGE = 'Usage: goe run\n\nRuns the Generative Outlier Exposure pipeline (not implemented yet).\n';

export function runMain(_args: string[], io: CliIo): number {
  io.stderr(
    [
      'goe run: the GOE pipeline (train a generator, sample outliers from it, fine-tune a classifier with',
      'outlier exposure, evaluate OOD detection) is coming but not implemented yet.',
      'What exists today:',
      '  goe metrics --in IN_SCORES --out OOD_SCORES   AUROC, AUPR-IN, AUPR-OUT, FPR95TPR from score files',
      'See `goe --help`.',
      '',
    ].join('\n'),
  );
  return EXIT_FAILURE;
}

export const runCommand: Subcommand = {
  name: 'run',
  summary: 'run the GOE pipeline (coming; prints what exists today)',
  usage: RUN_USAGE,
  run: runMain,
};
