/**
 * Keeps Dawn's adapter-enumeration warnings off the user's screen.
 *
 * On drivers that report a huge dynamic-buffer limit (lavapipe: 1000000, AMD's RADV: 500000) Dawn
 * clamps it to its own 16 while enumerating adapters and prints, from native code with fprintf to
 * the process's stderr, for every GPU instance:
 *
 *   Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 ...
 *   Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 ...
 *
 * The clamp is harmless (the engine binds no dynamic buffers) and no request can avoid it: it
 * happens before requestDevice, on the adapter's own limits, with no Dawn toggle to silence it
 * (Dawn's src/dawn/native/Limits.cpp, NormalizeLimits). JavaScript cannot intercept a native
 * fprintf, and Node has no dup2 to point stderr elsewhere for the call; so the `goe` binary runs
 * its command in a child process whose stderr passes through `DawnWarningFilter`, which drops
 * exactly these lines and forwards everything else as it arrives. GOE_DAWN_WARNINGS=1 shows them.
 */
import { spawn } from 'node:child_process';

/** A line Dawn prints while clamping an adapter limit (NormalizeLimits). */
export const DAWN_LIMIT_WARNING = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const PREFIX = 'Warning: maxDynamic';

/**
 * Drops Dawn's limit warnings from a text stream. Text is forwarded as soon as it cannot be the
 * start of such a line (progress bars and prompts are not held back); a line that could be one is
 * held until its newline decides.
 */
export class DawnWarningFilter {
  private held = '';
  private readonly write: (text: string) => void;
  constructor(write: (text: string) => void) {
    this.write = write;
  }

  push(chunk: string): void {
    let text = this.held + chunk;
    this.held = '';
    let out = '';
    while (text.length > 0) {
      const nl = text.indexOf('\n');
      const line = nl < 0 ? text : text.slice(0, nl);
      if (nl < 0) {
        // An unfinished line: hold it only while it may still become a Dawn warning.
        if (PREFIX.startsWith(line) || line.startsWith(PREFIX)) this.held = line;
        else out += line;
        break;
      }
      if (!DAWN_LIMIT_WARNING.test(line)) out += `${line}\n`;
      text = text.slice(nl + 1);
    }
    if (out.length > 0) this.write(out);
  }

  /** At the end of the stream: whatever is held was not a complete warning line. */
  end(): void {
    if (this.held.length > 0) this.write(this.held);
    this.held = '';
  }
}

/** Set in the child so it runs the command itself. */
export const CHILD_MARK = 'GOE_CLI_FILTERED_CHILD';

/** Whether this process should run the command itself instead of through a filtering child. */
export function runsInProcess(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[CHILD_MARK] === '1' || env.GOE_DAWN_WARNINGS === '1';
}

/**
 * Runs `script args` in a child Node process (same flags) with stdin and stdout inherited and
 * stderr filtered; resolves to the child's exit code. Signals sent to this process reach the
 * child (a terminal's Ctrl-C reaches both; the child decides what it means), and a child killed
 * by a signal kills this process the same way.
 */
export function runFiltered(script: string, args: readonly string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, [CHILD_MARK]: '1' },
  });
  const filter = new DawnWarningFilter((t) => process.stderr.write(t));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (t: string) => filter.push(t));
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      filter.end();
      for (const [s, h] of handlers) process.off(s, h);
      if (signal !== null) process.kill(process.pid, signal);
      resolve(code ?? 1);
    });
  });
}
