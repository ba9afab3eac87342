/**
 * Fuzzing the safe unpickler and the CIFAR readers (issue 20): mutated real pickles, random opcode
 * programs, and the hostile shapes the issue found (10^5-deep nesting, self-containing lists and
 * dicts, a memo-shared [prev, prev] tower, an out-of-range \U escape, a short _frombuffer).
 */
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.ts';
import { readCifarBinary, readCifarPython } from '../../src/data/cifar.ts';
import { NDArray, PyTuple, unpickle } from '../../src/data/pickle.ts';
import { bytes, cifarBinary, cifarPickle } from '../data/helpers.ts';
import { chainDepth, fuzz, mutated, outcome, scratch } from './harness.ts';

const fixtures = join(import.meta.dirname, '../data/fixtures');
const seeds: Uint8Array[] = [
  cifarPickle(bytes(2 * 3072, 3), [3, 9], 'cifar10'),
  cifarPickle(bytes(3072, 4), [42], 'cifar100', [7]),
  ...[0, 1, 2, 4, 5].map((p) => new Uint8Array(readFileSync(join(fixtures, `cifar-py3-proto${p}.pkl`)))),
];

const op = (...b: number[]): number[] => b;
const u32 = (n: number): number[] => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const put = (i: number): number[] => op(0x72, ...u32(i)); // LONG_BINPUT
const get = (i: number): number[] => op(0x6a, ...u32(i)); // LONG_BINGET
const text = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** The hostile families, each with what a correct reader returns (a checker) or null for "must be refused". */
type Hostile = { bytes: Uint8Array; check: ((v: unknown) => void) | null };

function nested(kind: 'list' | 'tuple' | 'dict', depth: number): Hostile {
  const b: number[] = [0x80, 2];
  if (kind === 'list') {
    for (let i = 0; i < depth; i++) b.push(0x5d);
    for (let i = 1; i < depth; i++) b.push(0x61);
  } else if (kind === 'tuple') {
    b.push(0x29);
    for (let i = 1; i < depth; i++) b.push(0x85);
  } else {
    for (let i = 1; i < depth; i++) b.push(0x7d, 0x4b, 0);
    b.push(0x7d);
    for (let i = 1; i < depth; i++) b.push(0x73);
  }
  b.push(0x2e);
  const next = (x: unknown): unknown => (kind === 'list' ? (x as unknown[])[0] : kind === 'tuple' ? (x as PyTuple).items[0] : (x as Map<number, unknown>).get(0));
  return { bytes: new Uint8Array(b), check: (v) => expect(chainDepth(v, next)).toBe(depth) };
}

function cycle(kind: 'list' | 'dict' | 'via-tuple'): Hostile {
  const b =
    kind === 'list'
      ? [0x5d, ...put(0), ...get(0), 0x61, 0x2e]
      : kind === 'dict'
        ? [0x7d, ...put(0), 0x4b, 1, ...get(0), 0x73, 0x2e]
        : [0x5d, ...put(0), ...get(0), 0x85, 0x61, 0x2e]; // l = []; l.append((l,))
  return {
    bytes: new Uint8Array(b),
    check: (v) => {
      if (kind === 'list') expect((v as unknown[])[0]).toBe(v);
      else if (kind === 'dict') expect((v as Map<number, unknown>).get(1)).toBe(v);
      else expect(((v as unknown[])[0] as PyTuple).items[0]).toBe(v);
    },
  };
}

/** A [prev, prev] tower: 2^levels paths, levels + 1 objects. */
function laughs(levels: number): Hostile {
  const b: number[] = [0x80, 2, 0x4e, ...put(0), 0x30];
  for (let i = 1; i <= levels; i++) b.push(0x28, ...get(i - 1), ...get(i - 1), 0x6c, ...put(i), 0x30);
  b.push(...get(levels), 0x2e);
  return {
    bytes: new Uint8Array(b),
    check: (v) => {
      expect((v as unknown[])[0]).toBe((v as unknown[])[1]);
      expect(chainDepth(v, (x) => (Array.isArray(x) ? x[0] : undefined))).toBe(levels + 1);
    },
  };
}

const numpyGlobal = (name: string): number[] => [0x63, ...text(`numpy.core.numeric\n${name}\n`)];
const hostile: fc.Arbitrary<Hostile> = fc.oneof(
  fc.tuple(fc.constantFrom('list' as const, 'tuple' as const, 'dict' as const), fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constantFrom(100_000, 150_000))).map(([k, d]) => nested(k, d)),
  fc.constantFrom('list' as const, 'dict' as const, 'via-tuple' as const).map(cycle),
  fc.integer({ min: 1, max: 200 }).map(laughs),
  fc.constantFrom('\\U00110000', '\\Uffffffff', '\\ud800', '\\U0010ffff').map((esc) => ({
    bytes: new Uint8Array([0x56, ...text(`a${esc}b\n`), 0x2e]),
    check: esc === '\\U0010ffff' || esc === '\\ud800' ? (v: unknown) => expect(typeof v).toBe('string') : null,
  })),
  // numpy.core.numeric._frombuffer(bytes, dtype('u1'), shape, 'C') with fewer or more bytes than the shape needs
  fc.tuple(fc.integer({ min: 0, max: 40 }), fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 })).map(([n, shape]) => {
    const need = shape.reduce((a, b) => a * b, 1);
    const b = [
      0x80, 2, ...numpyGlobal('_frombuffer'), 0x28, 0x43, n, ...new Array<number>(n).fill(7),
      0x63, ...text('numpy\ndtype\n'), 0x8c, 2, ...text('u1'), 0x85, 0x52,
      0x28, ...shape.flatMap((d) => [0x4b, d]), 0x74, 0x8c, 1, ...text('C'), 0x74, 0x52, 0x2e,
    ];
    return { bytes: new Uint8Array(b), check: n === need ? (v: unknown) => expect((v as NDArray).data.length).toBe(need) : null };
  }),
);

/** Random opcode programs over the allowed opcodes (plus a few refused ones). */
const token = fc.oneof(
  fc.constantFrom(
    [0x5d], [0x7d], [0x29], [0x28], [0x61], [0x65], [0x73], [0x75], [0x74], [0x85], [0x86], [0x87], [0x6c], [0x64],
    [0x30], [0x31], [0x32], [0x4e], [0x88], [0x89], [0x94], [0x52], [0x62], [0x93], [0x2e],
    [0x63, ...text('numpy.core.multiarray\n_reconstruct\n')], [0x63, ...text('numpy\nndarray\n')], [0x63, ...text('numpy\ndtype\n')],
    [0x63, ...text('_codecs\nencode\n')], [0x63, ...text('os\nsystem\n')], [0x69], [0x81],
  ),
  fc.integer({ min: 0, max: 8 }).map((i) => [0x71, i]),
  fc.integer({ min: 0, max: 8 }).map((i) => [0x68, i]),
  fc.integer({ min: 0, max: 255 }).map((i) => [0x4b, i]),
  fc.integer().map((i) => [0x4a, ...u32(i)]),
  fc.uint8Array({ maxLength: 12 }).map((s) => [0x43, s.length, ...s]),
  fc.string({ maxLength: 12 }).map((s) => [0x56, ...text(s.replace(/\n/g, '')), 0x0a]),
  fc.stringMatching(/^-?[0-9]{0,30}L?$/).map((s) => [0x4c, ...text(s), 0x0a]),
  fc.uint8Array({ maxLength: 20 }).map((s) => [0x8a, s.length, ...s]),
);
const program = fc.array(token, { maxLength: 60 }).map((ts) => new Uint8Array([0x80, 2, ...ts.flat(), 0x2e]));

const stats: Record<string, unknown> = {};
afterAll(() => console.log(JSON.stringify(stats)));

describe('fuzz: pickle', () => {
  it('hostile structures: a correct value or a DataError, in bounded time', async () => {
    stats.pickleHostile = await fuzz('pickle hostile', 400, hostile, async (h, s) => {
      const o = await outcome(() => unpickle(h.bytes, 'h.pkl'), s, h.bytes.length);
      if (h.check === null) expect(o.error).toBeInstanceOf(DataError);
      else if (o.error) throw new Error(`refused a valid pickle: ${o.error.message.slice(0, 200)}`);
      else h.check(o.value);
    });
  });

  it('mutated real pickles and random opcode programs', async () => {
    stats.pickleRandom = await fuzz('pickle mutated/random', 3000, fc.oneof(mutated(seeds), program), async (b, s) => {
      const o = await outcome(() => unpickle(b, 'm.pkl'), s, b.length);
      if (o.error) expect(o.error.message).toMatch(/^m\.pkl: /);
      for (const v of o.value instanceof Map ? o.value.values() : []) {
        if (v instanceof NDArray && /^u1$/.test(v.dtype)) expect(v.data.length).toBe(v.shape.reduce((a, b) => a * b, 1));
      }
    });
  });
});

describe('fuzz: CIFAR files', () => {
  const tmp = scratch('goe-fuzz-cifar-');
  afterAll(tmp.cleanup);

  it('python batches: mutated files give a DataError naming the file, or consistent images and labels', async () => {
    const f = tmp.file('data_batch_1');
    stats.cifarPython = await fuzz('cifar python', 400, mutated(seeds.slice(0, 2)), async (b, s) => {
      writeFileSync(f, b);
      const o = await outcome(() => readCifarPython([f], 'cifar10'), s, b.length);
      if (o.error) expect(o.error.message).toContain(f);
      else expect(o.value!.data!.length).toBe(o.value!.length * 3072);
    });
  });

  it('binary batches: any size and label bytes give a DataError naming the file, or the records', async () => {
    const f = tmp.file('data_batch_1.bin');
    const arb = fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: -3, max: 3 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.constantFrom('cifar10' as const, 'cifar100' as const));
    stats.cifarBinary = await fuzz('cifar binary', 300, arb, async ([n, extra, labelBytes, variant], s) => {
      const record = variant === 'cifar10' ? 3073 : 3074;
      const b = new Uint8Array(Math.max(0, n * record + extra)).fill(1);
      for (let i = 0; i < n && i * record < b.length; i++) b[i * record] = labelBytes[i]! % 24;
      writeFileSync(f, b);
      const o = await outcome(() => readCifarBinary([f], variant), s, b.length);
      if (o.error) expect(o.error.message).toContain(f);
      else {
        expect(o.value!.length).toBe(n);
        if (variant === 'cifar10') expect(Array.from(o.value!.labels!)).toEqual(Array.from({ length: n }, (_, i) => labelBytes[i]! % 24));
      }
    });
  });

  it('a binary batch over 2 GiB is read in chunks and its errors name the file (sparse file, nothing resident)', async () => {
    const f = tmp.file('huge.bin');
    const records = Math.ceil(2 ** 31 / 3073) + 1;
    const { truncateSync, openSync, writeSync, closeSync } = await import('node:fs');
    writeFileSync(f, new Uint8Array([200]));
    truncateSync(f, records * 3073);
    const fd = openSync(f, 'r+');
    writeSync(fd, new Uint8Array([0]), 0, 1, 0);
    writeSync(fd, new Uint8Array([250]), 0, 1, 1000 * 3073); // record 1000 has a bad label
    closeSync(fd);
    await expect(readCifarBinary([f], 'cifar10')).rejects.toThrow(new RegExp(`${f}: (record 1000: label 250|cannot hold)`));
  });
});
