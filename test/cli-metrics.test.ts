// `goe metrics`, run as a child process on temp score files: the JSON line, the human table,
// conventions, and exit code 2 with file + line for bad input.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const GOE = join(import.meta.dirname, '..', 'src', 'cli', 'goe.ts');
const NPY_FIXTURES = join(import.meta.dirname, 'fixtures', 'metrics', 'npy');
const dir = mkdtempSync(join(tmpdir(), 'goe-cli-metrics-'));

function runGoe(args: string[]) {
  const result = spawnSync(process.execPath, [GOE, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  return result;
}

/** Writes a temp file and returns its path. */
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

// The hand-worked case of test/goe/metrics.test.ts:
// AUROC 0.75, AUPR-IN 5/6, AUPR-OUT 0.7, FPR95 0.5 (in-positive: 2/3; trapezoid AUPR-OUT 23/30).
const IN = file('in.txt', '0.2\n0.5\n\n0.5\n0.1\n');
const OUT = file('out.txt', '0.5\n0.9\n0.3');

describe('goe metrics --json', () => {
  it('prints exactly one JSON line with the six keys and nothing else', () => {
    const r = runGoe(['metrics', '--in', IN, '--out', OUT, '--json']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const line = JSON.parse(r.stdout);
    expect(Object.keys(line)).toEqual(['AUROC', 'AUPR-IN', 'AUPR-OUT', 'FPR95TPR', 'n_in', 'n_out']);
    expect(line.AUROC).toBeCloseTo(0.75, 15);
    expect(line['AUPR-IN']).toBeCloseTo(5 / 6, 15);
    expect(line['AUPR-OUT']).toBeCloseTo(0.7, 15);
    expect(line.FPR95TPR).toBe(0.5);
    expect(line).toMatchObject({ n_in: 4, n_out: 3 });
  });

  it('adds convention and pr_rule keys only for non-default options', () => {
    const inPositive = JSON.parse(runGoe(['metrics', '--in', IN, '--out', OUT, '--json', '--convention', 'in-positive']).stdout);
    expect(inPositive).toMatchObject({ convention: 'in-positive', pr_rule: 'step' });
    expect(inPositive.FPR95TPR).toBeCloseTo(2 / 3, 15);
    const trapezoid = JSON.parse(runGoe(['metrics', '--json', '--pr-rule', 'trapezoid', '--in', IN, '--out', OUT]).stdout);
    expect(trapezoid).toMatchObject({ convention: 'ood-positive', pr_rule: 'trapezoid' });
    expect(trapezoid['AUPR-OUT']).toBeCloseTo(23 / 30, 15);
    const explicitDefaults = JSON.parse(
      runGoe(['metrics', '--in', IN, '--out', OUT, '--json', '--convention', 'ood-positive', '--pr-rule', 'step']).stdout,
    );
    expect(Object.keys(explicitDefaults)).toHaveLength(6);
  });

  it('reads .json arrays and .npy files', () => {
    const inJson = file('in.json', '[0.2, 0.5, 0.5, 0.1]');
    const r = JSON.parse(runGoe(['metrics', '--in', inJson, '--out', OUT, '--json']).stdout);
    expect(r.AUROC).toBeCloseTo(0.75, 15);
    // scores_f8.npy holds [0.5, -1.25, 3e-7, 12345.678, 0, -0.1]: above all of 0.2,0.5,0.5,0.1
    // only 12345.678; ties 0.5 with two in-dist scores.
    const npy = join(dir, 'ood.npy');
    copyFileSync(join(NPY_FIXTURES, 'scores_f8.npy'), npy);
    const n = JSON.parse(runGoe(['metrics', '--in', IN, '--out', npy, '--json']).stdout);
    expect(n).toMatchObject({ n_in: 4, n_out: 6 });
    // pairs: 0.5 -> beats 0.2, 0.1 and ties two 0.5s (3); 12345.678 -> 4; the rest beat nothing
    expect(n.AUROC).toBeCloseTo(7 / 24, 15);
  });
});

describe('goe metrics human output', () => {
  it('prints the table in percent and states the convention', () => {
    const r = runGoe(['metrics', '--in', IN, '--out', OUT]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/4 in-distribution scores .* vs 3 OOD scores/);
    expect(r.stdout).toMatch(/\| AUROC \| AUPR-IN \| AUPR-OUT \| FPR95TPR \|/);
    expect(r.stdout).toMatch(/\| 75\.00 \| 83\.33 \| 70\.00 \| 50\.00 \|/);
    expect(r.stdout).toMatch(/Convention ood-positive \(pytorch-ood\)/);
    expect(r.stdout).toMatch(/step rule/);
    const t = runGoe(['metrics', '--in', IN, '--out', OUT, '--pr-rule', 'trapezoid', '--convention', 'in-positive']);
    expect(t.stdout).toMatch(/\| 75\.00 \| 83\.33 \| 76\.67 \| 66\.67 \|/);
    expect(t.stdout).toMatch(/Convention in-positive .*trapezoid rule/s);
  });

  it('--help prints the usage and exits 0', () => {
    const r = runGoe(['metrics', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--convention C/);
    expect(r.stdout).toMatch(/--pr-rule R/);
  });
});

describe('goe metrics errors exit 2', () => {
  function expectError(args: string[], message: RegExp) {
    const r = runGoe(['metrics', ...args]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  }

  it('names the file and line of a non-numeric, NaN or infinite score', () => {
    const bad = file('bad.txt', '0.1\n\n0.2\nhello\n');
    expectError(['--in', bad, '--out', OUT, '--json'], new RegExp(`goe metrics: error: ${escape(bad)}:4: "hello" is not a number`));
    const nan = file('nan.txt', '0.1\nNaN\n');
    expectError(['--in', IN, '--out', nan, '--json'], new RegExp(`${escape(nan)}:2: score "NaN" is NaN`));
    const inf = file('inf.txt', 'inf\n');
    expectError(['--in', inf, '--out', OUT], new RegExp(`${escape(inf)}:1: score "inf" is infinite`));
  });

  it('rejects empty and missing files, naming them', () => {
    const empty = file('empty.txt', '\n\n');
    expectError(['--in', IN, '--out', empty], new RegExp(`${escape(empty)}: no scores`));
    expectError(['--in', join(dir, 'nope.txt'), '--out', OUT], /nope\.txt: cannot read file/);
    const emptyJson = file('empty.json', '[]');
    expectError(['--in', emptyJson, '--out', OUT], /empty\.json: no scores/);
  });

  it('rejects unknown options, positionals, missing arguments and bad option values with the usage', () => {
    expectError(['--in', IN, '--out', OUT, '--bogus'], /^goe metrics: unknown option --bogus\n\nUsage: goe metrics/);
    expectError(['--in', IN, '--out', OUT, 'extra'], /^goe metrics: unexpected argument "extra"\n\nUsage: goe metrics/);
    expectError(['--in', IN], /missing --out FILE\n\nUsage: goe metrics/);
    expectError([], /missing --in FILE and --out FILE/);
    expectError(['--in', IN, '--out'], /Usage: goe metrics/);
    expectError(['--in', IN, '--out', OUT, '--convention', 'ood'], /--convention must be one of ood-positive, in-positive, not "ood"/);
    expectError(['--in', IN, '--out', OUT, '--pr-rule', 'simpson'], /--pr-rule must be one of step, trapezoid/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
