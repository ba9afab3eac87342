/**
 * What every `goe` subcommand provides, and the exit codes they share. A subcommand lives in its
 * own file and is listed once in subcommands.ts; the dispatcher (dispatch.ts) needs no change.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Where a subcommand writes; tests pass a capturing implementation, the binary uses the process. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The terminal behind stdout, when it is one (progress bars are drawn there). */
  terminal?: NodeJS.WriteStream;
}

export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  ...(process.stdout.isTTY ? { terminal: process.stdout } : {}),
};

export const EXIT_OK = 0;
/** The command ran but failed, or did not do what was asked. */
export const EXIT_FAILURE = 1;
/** Bad invocation or bad input data: unknown option, missing argument, unreadable score file. */
export const EXIT_USAGE = 2;

export interface Subcommand {
  /** The word after `goe`. */
  readonly name: string;
  /** One line for `goe --help`. */
  readonly summary: string;
  /** Full usage text for `goe NAME --help` and usage errors. */
  readonly usage: string;
  /** Runs with the arguments after the subcommand name; returns the exit code. */
  run(args: string[], io: CliIo): number | Promise<number>;
}

/**
 * Thrown for a bad invocation; the dispatcher prints the message and the usage, then exits 2.
 * Node's parseArgs messages passed in are reworded (`wordParseArgsError`).
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(wordParseArgsError(message));
    this.name = 'UsageError';
  }
}

/**
 * node:util parseArgs with its errors as UsageErrors in our words ("unknown option --x",
 * "--out needs a value"), for subcommands to parse their options with.
 */
export function parseOptions<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Node's parseArgs error texts, reworded; any other message is returned unchanged. */
export function wordParseArgsError(message: string): string {
  let m = /^Unknown option '([^']+)'/.exec(message);
  if (m) return `unknown option ${m[1]}`;
  m = /^Option '(?:-\w, )?(--?[^' ]+) <value>' argument missing/.exec(message);
  if (m) return `${m[1]} needs a value`;
  m = /^Option '(?:-\w, )?(--?[^' ]+)' does not take an argument/.exec(message);
  if (m) return `${m[1]} takes no value`;
  m = /^Option '(?:-\w, )?(--?[^' ]+)' argument is ambiguous/.exec(message);
  if (m) return `${m[1]}'s value starts with "-": write ${m[1]}=VALUE`;
  m = /^Unexpected argument '([^']*)'/.exec(message);
  if (m) return `unexpected argument "${m[1]}"`;
  return message;
}
