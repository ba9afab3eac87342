/**
 * The readers' fuzz harness: every case must end in a typed error (DataError, ScoreFileError,
 * SafetensorsError) or a value the caller checks, within MAX_MS, and a reader's cases together
 * may not raise the process's peak memory by MAX_GROWTH_BYTES. Seeded (GOE_FUZZ_SEED, default
 * 20); GOE_FUZZ_RUNS multiplies every case count (e.g. 10 for the issue's acceptance run).
 * Each reader's worst time, total time and peak-memory growth are printed.
 */
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DataError } from '../../src/data/errors.ts';
import { SafetensorsError } from '../../src/engine/io/safetensors.ts';
import { ScoreFileError } from '../../src/goe/metrics/score-file-error.ts';

export const SCALE = Number(process.env.GOE_FUZZ_RUNS ?? '1');
export const SEED = Number(process.env.GOE_FUZZ_SEED ?? '20');
export const MAX_MS = 5000;
export const MAX_GROWTH_BYTES = 300 * 1024 * 1024;
const TYPED = [DataError, ScoreFileError, SafetensorsError];

// Collecting between large cases keeps one case's garbage out of the next one's peak.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));

export interface Outcome<T> {
  value?: T;
  error?: Error;
}

export interface Stats {
  cases: number;
  errors: number;
  /** Cases with inputs over 64 KiB (every 8th, and every one over 256 KiB, is followed by a full collection). */
  large: number;
  worstMs: number;
  worstBytes: number;
  totalMs: number;
  /** The largest peak-RSS growth of one case (Linux), and of the whole run over its start. */
  worstCaseMB: number;
  peakGrowthMB: number;
}

/**
 * Linux resets a process's peak RSS (VmHWM) when 5 is written to /proc/self/clear_refs: reading
 * it after a case gives that case's own peak. Elsewhere only the run's overall peak is checked.
 */
const perCasePeak = ((): boolean => {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
})();
function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Run `read`; a generic exception (TypeError, RangeError, ...) or a slow case fails the property. */
export async function outcome<T>(read: () => T | Promise<T>, stats: Stats, inputBytes: number): Promise<Outcome<T>> {
  let rssBefore = 0;
  if (perCasePeak) {
    writeFileSync('/proc/self/clear_refs', '5');
    rssBefore = process.memoryUsage.rss();
  }
  const t0 = performance.now();
  let out: Outcome<T>;
  try {
    out = { value: await read() };
  } catch (e) {
    if (!TYPED.some((c) => e instanceof c)) {
      const err = e as Error;
      throw new Error(`generic exception ${err?.name}: ${String(err?.message).slice(0, 300)}\n${String(err?.stack).split('\n').slice(1, 6).join('\n')}`);
    }
    out = { error: e as Error };
  }
  const ms = performance.now() - t0;
  const grewBy = perCasePeak ? Math.max(0, peakRssBytes() - rssBefore) : 0;
  stats.worstCaseMB = Math.max(stats.worstCaseMB, grewBy / 2 ** 20);
  if (grewBy > MAX_GROWTH_BYTES) throw new Error(`case raised the peak RSS by ${(grewBy / 2 ** 20).toFixed(0)} MB (limit ${MAX_GROWTH_BYTES >> 20}) on ${inputBytes} input bytes`);
  if (inputBytes > 65536 && (stats.large++ % 8 === 0 || inputBytes > 262144)) gc();
  stats.cases++;
  if (out.error) stats.errors++;
  stats.totalMs += ms;
  if (ms > stats.worstMs) {
    stats.worstMs = ms;
    stats.worstBytes = inputBytes;
  }
  if (ms > MAX_MS) throw new Error(`case took ${ms.toFixed(0)} ms (limit ${MAX_MS}) on ${inputBytes} input bytes`);
  return out;
}

/** fc.assert over `arb` with the suite's seed, returning the reader's statistics. */
export async function fuzz<T>(name: string, numRuns: number, arb: fc.Arbitrary<T>, check: (input: T, stats: Stats) => Promise<void>): Promise<Stats> {
  const stats: Stats = { cases: 0, errors: 0, large: 0, worstMs: 0, worstBytes: 0, totalMs: 0, worstCaseMB: 0, peakGrowthMB: 0 };
  gc();
  const rss0 = process.memoryUsage.rss();
  await fc.assert(
    fc.asyncProperty(arb, (input) => check(input, stats)),
    { seed: SEED, numRuns: runs(numRuns), endOnFailure: true },
  );
  const peak = process.resourceUsage().maxRSS * 1024;
  stats.peakGrowthMB = Math.max(0, peak - rss0) / 2 ** 20;
  console.log(
    `fuzz ${name}: ${stats.cases} cases (${stats.errors} typed errors), total ${(stats.totalMs / 1000).toFixed(2)} s, ` +
      `worst ${stats.worstMs.toFixed(1)} ms (${stats.worstBytes} bytes), worst case +${stats.worstCaseMB.toFixed(0)} MB RSS, run peak +${stats.peakGrowthMB.toFixed(0)} MB`,
  );
  // Without per-case peaks, the run's peak bounds every case (with garbage from earlier cases: an over-estimate).
  if (!perCasePeak && peak - rss0 > MAX_GROWTH_BYTES) throw new Error(`${name}: peak RSS grew by ${stats.peakGrowthMB.toFixed(0)} MB (limit ${MAX_GROWTH_BYTES >> 20})`);
  return stats;
}

// ---------------------------------------------------------------- byte mutations

export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; edits: [number, number][] }
  | { kind: 'word'; at: number; width: 2 | 4 | 8; value: bigint; littleEndian: boolean }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number };

/** Positions biased to the first 256 bytes, where headers live. */
const position = fc.oneof(fc.nat({ max: 255 }), fc.nat());
const HUGE = [0n, 1n, 0x7fn, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0xffffffffffffffffn];

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('flip' as const), edits: fc.array(fc.tuple(position, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }) }),
  fc.record({
    kind: fc.constant('word' as const),
    at: position,
    width: fc.constantFrom(2 as const, 4 as const, 8 as const),
    value: fc.oneof(fc.constantFrom(...HUGE), fc.bigInt({ min: 0n, max: 0xffffffffffffffffn })),
    littleEndian: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: position, n: fc.integer({ min: 1, max: 64 }) }),
);

export function mutate(seed: Uint8Array, muts: Mutation[]): Uint8Array {
  let b = new Uint8Array(seed);
  for (const m of muts) {
    if (b.length === 0) break;
    switch (m.kind) {
      case 'truncate':
        b = b.slice(0, m.at % (b.length + 1));
        break;
      case 'flip':
        for (const [p, v] of m.edits) b[p % b.length] = v;
        break;
      case 'word': {
        const p = m.at % b.length;
        if (p + m.width > b.length) break;
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (m.width === 2) dv.setUint16(p, Number(m.value & 0xffffn), m.littleEndian);
        else if (m.width === 4) dv.setUint32(p, Number(m.value & 0xffffffffn), m.littleEndian);
        else dv.setBigUint64(p, m.value, m.littleEndian);
        break;
      }
      case 'insert': {
        const p = m.at % (b.length + 1);
        const out = new Uint8Array(b.length + m.bytes.length);
        out.set(b.subarray(0, p));
        out.set(m.bytes, p);
        out.set(b.subarray(p), p + m.bytes.length);
        b = out;
        break;
      }
      case 'delete': {
        const p = m.at % b.length;
        const out = new Uint8Array(b.length - Math.min(m.n, b.length - p));
        out.set(b.subarray(0, p));
        out.set(b.subarray(p + m.n), p);
        b = out;
        break;
      }
    }
  }
  return b;
}

/** One of `seeds`, mutated 1 to 4 times. */
export function mutated(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([i, m]) => mutate(seeds[i]!, m));
}

/** A scratch folder for file-based readers. */
export function scratch(prefix: string): { dir: string; file: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, file: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Iterative depth of a nested first-element chain (no recursion: inputs nest 10^5 deep). */
export function chainDepth(v: unknown, next: (x: unknown) => unknown): number {
  let d = 0;
  for (let x = v; x !== undefined; x = next(x)) d++;
  return d;
}
