#!/usr/bin/env node
/**
 * The `goe` command (package.json "bin"). Runs natively with Node >= 22.18 type stripping:
 * `node src/cli/goe.ts --help`. All logic lives in dispatch.ts and the subcommand files.
 */
import { main } from './dispatch.ts';

process.exitCode = await main(process.argv.slice(2));
