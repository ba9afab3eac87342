// The `goe` dispatcher and `goe run`, run as a child process exactly as the package.json bin is.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, topLevelUsage } from '../src/cli/dispatch.ts';
import type { CliIo, Subcommand } from '../src/cli/subcommand.ts';
import { UsageError } from '../src/cli/subcommand.ts';

const GOE = join(import.meta.dirname, '..', 'src', 'cli', 'goe.ts');

function runGoe(args: string[], env: Record<string, string> = {}, timeout = 60_000) {
  const result = spawnSync(process.execPath, [GOE, ...args], { encoding: 'utf8', timeout, env: { ...process.env, ...env } });
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
      expect(r.stdout).toMatch(/\n {2}metrics +AUROC, AUPR-IN, AUPR-OUT, FPR95TPR/);
      expect(r.stdout).toMatch(/\n {2}run +the main job/);
      expect(r.stdout).toMatch(/\n {2}experiment +run a GOE experiment end to end/);
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

  it('`goe run` without Fashion-MNIST runs the smoke experiment end to end, says so and how to get the data', () => {
    const data = mkdtempSync(join(tmpdir(), 'goe-cli-data-'));
    const out = mkdtempSync(join(tmpdir(), 'goe-cli-run-'));
    try {
      // a machine without Debian's dataset-fashion-mnist package and without the network
      const r = runGoe(['run', '--out', out, '--data-dir', data, '--no-download'], { GOE_SYSTEM_DATASETS: 'none' }, 120_000);
      expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Warning')).join('\n')).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^goe run: the main job is the fmnist experiment, but Fashion-MNIST could not be found or downloaded here \(no fashion-mnist test files/);
      expect(r.stdout).toContain("Install Debian's dataset-fashion-mnist package");
      expect(r.stdout).toContain('train-images-idx3-ubyte.gz -> <data-dir>/fashion-mnist/train-images-idx3-ubyte.gz');
      expect(r.stdout).toContain('Running the SMOKE experiment instead');
      expect(r.stdout).toMatch(/\nadapter: .+ \| (software|hardware) \|/);
      expect(r.stdout).toMatch(/\[oe-noise\] epoch 2\/2 step 8\/8 loss \d/);
      expect(r.stdout).toContain(`goe run: ran the smoke experiment (not the fmnist main job); results in ${out}`);
      const md = readFileSync(join(out, 'results.md'), 'utf8');
      expect(md).toMatch(/^# smoke: OOD detection results/);
      expect(md).toMatch(/\| MSP \| noise \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|/);
      expect(md).toMatch(/\| Energy \| generated \| \d+\.\d\d \|/);
    } finally {
      rmSync(data, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('`goe experiment` with a missing dataset names the file, folder and URL and exits 2 without a stack trace', () => {
    const data = mkdtempSync(join(tmpdir(), 'goe-cli-data-'));
    const out = mkdtempSync(join(tmpdir(), 'goe-cli-run-'));
    try {
      const r = runGoe(['experiment', 'cifar10', '--no-download', '--data-dir', data, '--out', out]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('goe experiment cifar10: ');
      expect(r.stderr).toContain('https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz');
      expect(r.stderr).toContain(join(data, 'cifar10', 'cifar-10-binary.tar.gz'));
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const bad = runGoe(['experiment', 'nope']);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/unknown experiment "nope" \(known: fmnist, images, cifar10, cifar100, newsgroups, smoke, smoke-text\)/);
    } finally {
      rmSync(data, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
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
