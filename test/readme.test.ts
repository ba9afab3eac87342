/** The README's engine example runs as written (in a child process, as a user would run it). */
import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('README', () => {
  it('the engine example runs as written and prints a loss and a gradient', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(readme);
    expect(block, 'a ```ts block in README.md').not.toBeNull();
    // The example imports from './src/engine/index.ts' as a user in the project root would.
    const code = block![1].replaceAll("'./src/", `'${ROOT}/src/`);
    const dir = mkdtempSync(join(tmpdir(), 'goe-readme-'));
    try {
      const file = join(dir, 'example.ts');
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Warning')).join('\n')).toBe('');
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
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
