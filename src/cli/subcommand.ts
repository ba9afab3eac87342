/**
 * What every `goe` subcommand provides, and the exit codes they share. A subcommand lives in its
 * own file and is listed once in subcommands.ts; the dispatcher (dispatch.ts) needs no change.
 */

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

/** Thrown for a bad invocation; the dispatcher prints the message and the usage, then exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
