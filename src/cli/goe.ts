#!/usr/bin/env node
/**
 * The `goe` command (package.json "bin"). Runs natively with Node >= 22.18 type stripping:
 * `node src/cli/goe.ts --help`; the package runs the built dist/src/cli/goe.js. All logic lives in
 * dispatch.ts and the subcommand files. A command that may open the GPU runs in a child process
 * whose stderr is filtered of Dawn's adapter warnings (dawn-stderr.ts); GOE_DAWN_WARNINGS=1 runs
 * it here instead. `--version` is answered before anything else is loaded.
 */
import { fileURLToPath } from 'node:url';
import { runFiltered, runsInProcess } from './dawn-stderr.ts';
import { packageVersion } from './version.ts';

/** First arguments whose command never creates a GPU device: no warnings to filter, no child. */
const WITHOUT_GPU = new Set([undefined, '--help', '-h', 'help', 'metrics']);

const args = process.argv.slice(2);
if (args[0] === '--version' || args[0] === '-V' || args[0] === 'version') {
  process.stdout.write(`${packageVersion()}\n`);
} else if (runsInProcess() || WITHOUT_GPU.has(args[0])) {
  const { main } = await import('./dispatch.ts');
  process.exitCode = await main(args);
} else {
  process.exitCode = await runFiltered(fileURLToPath(import.meta.url), args);
}
