/**
 * The kernel loader's per-dispatch lookup: (file, entry point, specialisation) to the canonical
 * cache key, without building that key.
 *
 * Ops ask for their kernel on every dispatch with a fresh `constants` object (the conv kernels
 * carry 15-20 of them). Building the canonical key (names sorted, joined into a string) cost
 * 2.9 us a dispatch on the SIMD-8 plan and 7.9 us on the portable one, 3.6 ms of a WRN-40-2
 * step's 14.7 ms recording (bench/NOTES.md, "Kernel lookups without a key string"). Here the
 * constants are hashed in place, order-free (a sum of per-name terms, so two call sites naming
 * them in another order still meet), and a hit is checked name by name against the remembered
 * specialisation: nothing is allocated and nothing sorted. A miss returns null and the loader
 * takes its canonical path, then `remember`s the result.
 */
import type { KernelSpec } from './kernels.ts';

interface Remembered {
  defines: Readonly<Record<string, string | number>> | undefined;
  constants: Readonly<Record<string, number | boolean>> | undefined;
  nConstants: number;
  /** The loader's canonical key. */
  key: string;
  next: Remembered | null;
}

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

function mix(h: number, v: number): number {
  return Math.imul(h ^ v, 0x01000193);
}

function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return h;
}

function valueHash(v: number | boolean | string): number {
  if (typeof v === 'boolean') return v ? 0x5bd1e995 : 0x1b873593;
  if (typeof v === 'string') return stringHash(v);
  F64[0] = v;
  return mix(mix(0x811c9dc5, U32[0]), U32[1]);
}

/** Order-free hash of a record: the sum of each (name, value)'s hash. */
function recordHash(r: Readonly<Record<string, number | boolean | string>> | undefined): number {
  let h = 0;
  if (r) for (const k in r) h = (h + mix(stringHash(k), valueHash(r[k]))) | 0;
  return h;
}

function countKeys(r: object | undefined): number {
  let n = 0;
  if (r) for (const _ in r) n++;
  return n;
}

/** Same names with the same values (`b` has `nb` names). */
function sameRecord<T>(a: Readonly<Record<string, T>> | undefined, b: Readonly<Record<string, T>> | undefined, nb: number): boolean {
  if (a === b) return true;
  let n = 0;
  if (a) {
    for (const k in a) {
      if (!b || !(k in b) || !Object.is(b[k], a[k])) return false;
      n++;
    }
  }
  return n === nb;
}

export class KernelLookup {
  private readonly byEntry = new Map<string, Map<string, Map<number, Remembered>>>();

  /** The canonical key of a specialisation seen before, or null. */
  find(file: string, entry: string, spec: KernelSpec): string | null {
    const table = this.byEntry.get(file)?.get(entry);
    if (!table) return null;
    const h = this.hash(spec);
    for (let r = table.get(h) ?? null; r; r = r.next) {
      if (sameDefines(r.defines, spec.defines) && sameRecord(spec.constants, r.constants, r.nConstants)) return r.key;
    }
    return null;
  }

  /** Records that `spec` of (file, entry) has the canonical `key` (copies the spec's records). */
  remember(file: string, entry: string, spec: KernelSpec, key: string): void {
    let entries = this.byEntry.get(file);
    if (!entries) this.byEntry.set(file, (entries = new Map()));
    let table = entries.get(entry);
    if (!table) entries.set(entry, (table = new Map()));
    const h = this.hash(spec);
    const constants = spec.constants ? { ...spec.constants } : undefined;
    // frozen defines (the shared subgroup and dtype objects) are kept by identity
    const defines = spec.defines && !Object.isFrozen(spec.defines) ? { ...spec.defines } : spec.defines;
    table.set(h, { defines, constants, nConstants: countKeys(constants), key, next: table.get(h) ?? null });
  }

  private hash(spec: KernelSpec): number {
    return mix(recordHash(spec.defines), recordHash(spec.constants));
  }
}

function sameDefines(a: KernelSpec['defines'], b: KernelSpec['defines']): boolean {
  return a === b || sameRecord(b, a, countKeys(a));
}
