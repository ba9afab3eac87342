/**
 * Regression test for the Dawn crash (bench/NOTES.md, "The crash", 2026-11-27 subsection):
 * Dawn's Node binding frees its instance when the JavaScript GPU object from `create()` is
 * garbage-collected, while a device made from it still polls that instance for pending promises
 * (abort "std::system_error: Invalid argument", futex / pthread_mutex assertions, segfault or
 * hang). The engine keeps every GPU object it creates referenced (src/engine/platform-node.ts).
 * Each case runs bench/crash/engine-gc-pending.ts in a child process: long dispatches, a forced
 * full GC while each is in flight, then a wait (sync or read). Before the fix the 'named' case
 * (a GPU object made with Dawn's adapter= flag) died 3 of 3 runs on lavapipe.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = `${ROOT}bench/crash/engine-gc-pending.ts`;

function runChild(adapter: string, rounds: number) {
  const r = spawnSync(process.execPath, ['--expose-gc', SCRIPT, adapter, String(rounds)], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { status: r.status, signal: r.signal, out: `${r.stdout}\n${r.stderr}` };
}

describe('Dawn instance lifetime (GC while GPU work is pending)', () => {
  it('an adapter chosen by name survives forced GCs during waits and exits cleanly', () => {
    const r = runChild('named', 8);
    expect(r.signal, r.out).toBeNull();
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/8 rounds OK \(checksum -?\d+\.\d+\)/);
    expect(r.out).not.toMatch(/system_error|futex|Assertion/);
  }, 120_000);

  it('the default adapter survives forced GCs during waits and exits cleanly', () => {
    const r = runChild('auto', 8);
    expect(r.signal, r.out).toBeNull();
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/auto: 8 rounds OK/);
  }, 120_000);
});
