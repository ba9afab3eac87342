/**
 * The table of `goe` subcommands. To add one, write `src/cli/NAME.ts` exporting a `Subcommand`
 * and list it here; `goe --help` and the dispatcher pick it up.
 */
import { metricsCommand } from './metrics.ts';
import { runCommand } from './run.ts';
import { experimentCommand } from './experiment.ts';
import { convertCommand } from './convert.ts';
import { sweepCommand } from './sweep.ts';
import { selectCommand } from './select.ts';
import type { Subcommand } from './subcommand.ts';

export const SUBCOMMANDS: readonly Subcommand[] = [runCommand, metricsCommand, experimentCommand, sweepCommand, selectCommand, convertCommand];
