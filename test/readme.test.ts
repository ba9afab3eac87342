/**
 * The README's examples run as written (in a child process, as a user would run them): every ```ts
 * block under a "Using ..." section, with its 'goe-webgpu' imports pointed at the sources.
 * test/package/pack-install.test.ts runs the same blocks against the installed package.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { importsFromSources, readmeBlocks } from './helpers/readme-blocks.ts';
import { DAWN_LIMIT_WARNING } from '../src/cli/dawn-stderr.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const blocks = readmeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));

/** Runs a README block from the sources; stdout, and stderr without Dawn's adapter warnings. */
function runBlock(section: string): { stdout: string; stderr: string; status: number | null } {
  const block = blocks.find((b) => b.section === section);
  expect(block, `a \`\`\`ts block under "## ${section}" in README.md`).toBeDefined();
  const dir = mkdtempSync(join(tmpdir(), 'goe-readme-'));
  try {
    const file = join(dir, 'example.ts');
    writeFileSync(file, importsFromSources(block!.code, ROOT));
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000 });
    const stderr = r.stderr.split('\n').filter((l) => l && !DAWN_LIMIT_WARNING.test(l)).join('\n');
    return { stdout: r.stdout, stderr, status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('README', () => {
  it('has the two sections of examples, importing only what package.json exports', () => {
    expect(blocks.map((b) => b.section)).toEqual(['Using the engine', 'Using GOE from code']);
    for (const b of blocks) expect(() => importsFromSources(b.code, ROOT)).not.toThrow();
  });

  it('the engine example runs as written and prints a loss and a gradient', () => {
    const r = runBlock('Using the engine');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // loss = mean(relu(x @ w)) for the README's x and w, and its gradient
    const x = [[1, 2, 3], [4, 5, 6]];
    const w = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]];
    const h = x.map((row) => [0, 1].map((j) => row.reduce((s, v, k) => s + v * w[k][j], 0)));
    const loss = h.flat().reduce((s, v) => s + Math.max(v, 0), 0) / 4;
    const grad = w.map((_, k) => [0, 1].map((j) => x.reduce((s, row, i) => s + (h[i][j] > 0 ? row[k] / 4 : 0), 0)));
    const nums = (r.stdout.match(/-?\d+(\.\d+)?(e-?\d+)?/g) ?? []).map(Number);
    expect(nums[0]).toBeCloseTo(loss, 5);
    const got = nums.slice(-6);
    grad.flat().forEach((g, i) => expect(got[i]).toBeCloseTo(g, 5));
  });

  it('the GOE example trains with Outlier Exposure and separates the outliers it never saw', () => {
    const r = runBlock('Using GOE from code');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const [msp, energy] = lines.map((l) => /^(\w+): AUROC (\d\.\d{3}), FPR95TPR (\d\.\d{3})$/.exec(l));
    expect(msp?.[1]).toBe('MSP');
    expect(energy?.[1]).toBe('Energy');
    // the test outliers sit where the training outliers were: MSP after OE ranks them all above
    expect(Number(msp![2])).toBeGreaterThanOrEqual(0.95);
    expect(Number(energy![2])).toBeGreaterThan(0.5);
  });
});
