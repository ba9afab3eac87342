/**
 * Environment variables `goe` reads (src/cli/env-check.ts): a bad value ends the command with
 * exit 2 and one line naming the variable and what to set, before any work (no run folder made);
 * good values, empty values and unset variables pass.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envProblem } from '../src/cli/env-check.ts';

const GOE = new URL('../src/cli/goe.ts', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'goe-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const aFile = join(dir, 'a-file');
writeFileSync(aFile, 'x');
const aFolder = join(dir, 'a-folder');
mkdirSync(aFolder);

describe('envProblem', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ GOE_GPU_WAIT: 'fast' }, /^GOE_GPU_WAIT=fast is not a way to wait for the GPU: set it to auto \(the default\), nap or spin, or unset it$/],
    [{ GOE_GPU_WAIT: 'NAP' }, /^GOE_GPU_WAIT=NAP /],
    [{ GOE_DAWN_WARNINGS: 'yes' }, /^GOE_DAWN_WARNINGS=yes: set it to 1 .* or to 0 \(or unset it\) to hide them$/],
    [{ GOE_DAWN_FLAGS: 'backend=vulkan,oops' }, /^GOE_DAWN_FLAGS holds "oops", not a key=value Dawn flag: .* or unset it$/],
    [{ GOE_DATA_DIR: aFile }, /^GOE_DATA_DIR=.*a-file is a file, not a folder: .* or unset it$/],
    [{ GOE_SYSTEM_DATASETS: join(dir, 'missing') }, /^GOE_SYSTEM_DATASETS=.*missing is no folder that exists: .*to none \(ignore system datasets\), or unset it$/],
    [{ GOE_SYSTEM_DATASETS: aFile }, /^GOE_SYSTEM_DATASETS=.*a-file is a file, not a folder/],
  ];
  for (const [env, message] of bad) {
    it(`${JSON.stringify(env)} is refused in one line`, () => {
      const problem = envProblem(env);
      expect(problem).toMatch(message);
      expect(problem).not.toContain('\n');
    });
  }

  it('good, empty and unset values pass', () => {
    expect(envProblem({})).toBeNull();
    for (const mode of ['auto', 'nap', 'spin', '']) expect(envProblem({ GOE_GPU_WAIT: mode })).toBeNull();
    for (const v of ['0', '1', '']) expect(envProblem({ GOE_DAWN_WARNINGS: v })).toBeNull();
    expect(envProblem({ GOE_DAWN_FLAGS: 'enable-dawn-features=allow_unsafe_apis,backend=vulkan,' })).toBeNull();
    expect(envProblem({ GOE_DATA_DIR: join(dir, 'made-later') })).toBeNull();
    expect(envProblem({ GOE_DATA_DIR: aFolder, GOE_SYSTEM_DATASETS: aFolder })).toBeNull();
    expect(envProblem({ GOE_SYSTEM_DATASETS: 'none', GOE_ADAPTER: 'anything', GOE_DEBUG: 'x' })).toBeNull();
  });
});

describe('goe with a bad environment variable', () => {
  const goe = (env: Record<string, string>, ...args: string[]) => {
    const r = spawnSync(process.execPath, [GOE, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, err: r.stderr, out: r.stdout };
  };

  it('GOE_GPU_WAIT=fast: `goe experiment` exits 2 with one line before any work (no run folder)', () => {
    const out = join(dir, 'run');
    const r = goe({ GOE_GPU_WAIT: 'fast' }, 'experiment', 'smoke', '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^goe: GOE_GPU_WAIT=fast is not a way to wait for the GPU: set it to auto \(the default\), nap or spin, or unset it\n$/);
    expect(existsSync(out)).toBe(false);
  });

  it('GOE_DATA_DIR pointing at a file: `goe metrics` exits 2 with one line; --help and --version still answer', () => {
    const r = goe({ GOE_DATA_DIR: aFile }, 'metrics', '--in', aFile, '--out', aFile);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^goe: GOE_DATA_DIR=.*a-file is a file, not a folder: [^\n]*\n$/);
    expect(goe({ GOE_DATA_DIR: aFile }, 'metrics', '--help').code).toBe(0);
    expect(goe({ GOE_GPU_WAIT: 'fast' }, '--version').code).toBe(0);
  });
});
