import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeFolder } from '../../src/goe/experiments/runner.ts';

const root = mkdtempSync(join(tmpdir(), 'goe-run-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('makeFolder (the run folder of a sweep point started beside others)', () => {
  it('creates every missing level', () => {
    const dir = join(root, 'a', 'b', 'c');
    makeFolder(dir);
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  it('a level another process made between the check and the mkdir is not an error', () => {
    const dir = join(root, 'points', 'count=4', 'seed-0');
    // the other process wins the race on every level: each mkdir finds the folder already there
    makeFolder(dir, (d) => { mkdirSync(d); mkdirSync(d); });
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  it('a file where a folder should be is still an error', () => {
    const file = join(root, 'taken');
    expect(() => makeFolder(join(file, 'x'), (d) => { writeFileSync(d, ''); mkdirSync(d); })).toThrow(/EEXIST/);
  });
});
