#!/usr/bin/env node
/**
 * The `goe` command (package.json "bin"). Runs natively with Node >= 22.18 type stripping:
 * `node src/cli/goe.ts --help`; the package runs the built dist/src/cli/goe.js. All logic lives in
 * dispatch.ts and the subcommand files. The command runs in a child process whose stderr is
 * filtered of Dawn's adapter warnings (dawn-stderr.ts); GOE_DAWN_WARNINGS=1 runs it here instead.
 */
import { fileURLToPath } from 'node:url';
import { runFiltered, runsInProcess } from './dawn-stderr.ts';

const args = process.argv.slice(2);
if (runsInProcess()) {
  const { main } = await import('./dispatch.ts');
  process.exitCode = await main(args);
} else {
  process.exitCode = await runFiltered(fileURLToPath(import.meta.url), args);
}
