/**
 * The `goe` dispatcher: picks the subcommand from the first argument and turns usage errors into
 * a message plus usage on stderr with exit code 2. Separate from goe.ts so tests can call it
 * in-process with captured output.
 */
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, processIo, UsageError, type CliIo, type Subcommand } from './subcommand.ts';
import { SUBCOMMANDS } from './subcommands.ts';
import { packageVersion } from './version.ts';

/** The top-level help: every subcommand with its summary. */
export function topLevelUsage(subcommands: readonly Subcommand[] = SUBCOMMANDS): string {
  const width = Math.max(...subcommands.map((c) => c.name.length));
  const lines = subcommands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: goe <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `goe <command> --help` for the options of a command, `goe --version` for the version.',
    '',
  ].join('\n');
}

/** Runs `goe` with `argv` (the arguments after the program name) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo, subcommands: readonly Subcommand[] = SUBCOMMANDS): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    io.stdout(topLevelUsage(subcommands));
    return EXIT_OK;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    io.stdout(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  if (first === 'help') return main([rest[0]!, '--help'], io, subcommands);
  if (first === undefined) {
    io.stderr(`goe: missing command\n\n${topLevelUsage(subcommands)}`);
    return EXIT_USAGE;
  }
  const command = subcommands.find((c) => c.name === first);
  if (command === undefined) {
    const what = first.startsWith('-') ? `unknown option ${first}` : `unknown command "${first}"`;
    io.stderr(`goe: ${what}\n\n${topLevelUsage(subcommands)}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`goe ${command.name}: ${error.message}\n\n${command.usage}`);
      return EXIT_USAGE;
    }
    io.stderr(`goe ${command.name}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_FAILURE;
  }
}
