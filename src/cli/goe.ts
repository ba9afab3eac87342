#!/usr/bin/env node
/**
 * The `goe` command (package.json "bin"). Runs natively with Node >= 22.18 type stripping:
 * `node src/cli/goe.ts --help`; the package runs the built dist/src/cli/goe.js. All logic lives in
 * dispatch.ts and the subcommand files. A command that may open the GPU runs in a child process
 * whose stderr is filtered of Dawn's adapter warnings (dawn-stderr.ts); GOE_DAWN_WARNINGS=1 runs
 * it here instead. `--version` is answered before anything else is loaded; then the environment
 * variables are checked (env-check.ts): a bad one ends every command but help with exit 2.
 */
import { fileURLToPath } from 'node:url';
import { runFiltered, runsInProcess } from './dawn-stderr.ts';
import { envProblem } from './env-check.ts';
import { packageVersion } from './version.ts';

/** First arguments whose command never creates a GPU device: no warnings to filter, no child. */
const WITHOUT_GPU = new Set([undefined, '--help', '-h', 'help', 'metrics']);
const HELP = new Set(['--help', '-h', 'help']);

const args = process.argv.slice(2);
if (args[0] === '--version' || args[0] === '-V' || args[0] === 'version') {
  process.stdout.write(`${packageVersion()}\n`);
} else if (!HELP.has(args[0]!) && !args.includes('--help') && envProblem() !== null) {
  process.stderr.write(`goe: ${envProblem()}\n`);
  process.exitCode = 2;
} else if (runsInProcess() || WITHOUT_GPU.has(args[0])) {
  const { main } = await import('./dispatch.ts');
  process.exitCode = await main(args);
} else {
  process.exitCode = await runFiltered(fileURLToPath(import.meta.url), args);
}
