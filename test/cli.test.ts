// The `goe` dispatcher and `goe run`, run as a child process exactly as the package.json bin is.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, topLevelUsage } from '../src/cli/dispatch.ts';
import type { CliIo, Subcommand } from '../src/cli/subcommand.ts';
import { UsageError } from '../src/cli/subcommand.ts';

const GOE = join(import.meta.dirname, '..', 'src', 'cli', 'goe.ts');

function runGoe(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [GOE, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  if (result.error) throw result.error;
  return result;
}

describe('goe entry point', () => {
  it('is an executable node script', () => {
    expect(readFileSync(GOE, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(GOE).mode & 0o111).not.toBe(0);
  });

  it('--help lists the subcommands on stdout and exits 0', () => {
    for (const flag of ['--help', '-h', 'help']) {
      const r = runGoe([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^Usage: goe <command>/);
      expect(r.stdout).toMatch(/\n {2}metrics {2}AUROC, AUPR-IN, AUPR-OUT, FPR95TPR/);
      expect(r.stdout).toMatch(/\n {2}run {6}the main job/);
      expect(r.stderr).toBe('');
    }
  });

  it('`help metrics` shows the metrics usage', () => {
    const r = runGoe(['help', 'metrics']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: goe metrics --in FILE --out FILE/);
  });

  it('a missing or unknown command prints the usage on stderr and exits 2', () => {
    const none = runGoe([]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^goe: missing command\n\nUsage: goe <command>/);
    expect(none.stdout).toBe('');
    const unknown = runGoe(['train']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^goe: unknown command "train"/);
  });

  it('`goe run` checks the engine, prints the adapter line, says what exists today, exits 0', () => {
    const r = runGoe(['run']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^adapter: .+ \| (software|hardware) \|/);
    expect(r.stdout).toContain('engine self-check: ok');
    expect(r.stdout).toMatch(/goe metrics --in IN_SCORES --out OOD_SCORES/);
  });

  it('`goe run` without any adapter says what to install and exits 3', () => {
    const r = runGoe(['run'], { VK_ICD_FILENAMES: '/nonexistent/none.json', VK_DRIVER_FILES: '/nonexistent/none.json' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('no WebGPU adapter available');
    expect(r.stderr).toContain('lavapipe');
  });
});

describe('dispatcher in-process', () => {
  /** An output sink that remembers what was written. */
  function captureIo(): CliIo & { out: string; err: string } {
    const io = { out: '', err: '', stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
    return io;
  }
  const echo: Subcommand = {
    name: 'echo',
    summary: 'print the arguments',
    usage: 'Usage: goe echo ARGS\n',
    run: async (args, io) => {
      if (args[0] === '--bad') throw new UsageError('bad option');
      if (args[0] === '--crash') throw new Error('boom');
      io.stdout(args.join(' '));
      return 0;
    },
  };

  it('dispatches to a subcommand from the table, so adding one needs no dispatcher change', async () => {
    const io = captureIo();
    expect(await main(['echo', 'a', 'b'], io, [echo])).toBe(0);
    expect(io.out).toBe('a b');
    expect(topLevelUsage([echo])).toMatch(/ {2}echo {2}print the arguments/);
  });

  it('turns a UsageError into message + command usage and exit 2, other errors into exit 1', async () => {
    const io = captureIo();
    expect(await main(['echo', '--bad'], io, [echo])).toBe(2);
    expect(io.err).toBe('goe echo: bad option\n\nUsage: goe echo ARGS\n');
    const crash = captureIo();
    expect(await main(['echo', '--crash'], crash, [echo])).toBe(1);
    expect(crash.err).toMatch(/^goe echo: unexpected error: Error: boom/);
  });
});
