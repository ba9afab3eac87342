/**
 * Fuzzing the array readers (issue 20): .npy headers (a Python-literal parser now), .npz through
 * src/data/zip.ts (on disk, and in memory for score files), IDX plain and gzipped, the user's arrays, safetensors
 * and text/JSON score files. Inputs: mutated real files, generated headers with negative, huge
 * and overflowing dimensions, duplicated keys and nesting, and decompression bombs (gzip and zip
 * members that declare or inflate to hundreds of megabytes from a few hundred kilobytes).
 */
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseIdx, readIdx } from '../../src/data/idx.ts';
import { decodeNpyData, NpzFile, openNpyImages, parseNpyHeader, readNpy } from '../../src/data/npy.ts';
import { openImageSet } from '../../src/data/user-data.ts';
import { parseSafetensors, serializeSafetensors } from '../../src/engine/io/safetensors.ts';
import { parseNpyScores } from '../../src/goe/metrics/npy.ts';
import { npzMember } from '../../src/goe/metrics/npz-member.ts';
import { parseScoreJson, parseScoreLines } from '../../src/goe/metrics/score-text.ts';
import { bytes, npy, zip } from '../data/helpers.ts';
import { fuzz, mutated, outcome, scratch } from './harness.ts';

const DTYPES = ['|u1', '|i1', '|b1', '<u2', '>i2', '<u4', '<i4', '>f4', '<f4', '<f8', '>f8', '<i8', '<u8'];

/** A well-formed array: its .npy bytes and the C-order element bytes a correct reader returns (native LE). */
interface ValidNpy {
  file: Uint8Array;
  shape: number[];
  descr: string;
  cOrderLE: Uint8Array;
}

function validNpy(descr: string, shape: number[], fortran: boolean, seed: number): ValidNpy {
  const size = Number(descr.slice(2));
  const count = shape.reduce((a, b) => a * b, 1);
  const cOrderLE = bytes(count * size, seed + 1);
  if (descr === '|b1') for (let i = 0; i < cOrderLE.length; i++) cOrderLE[i]! &= 1;
  // the file's bytes: element order (C or Fortran) and byte order as declared
  const raw = new Uint8Array(cOrderLE.length);
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  for (let c = 0; c < count; c++) {
    let f = c;
    if (fortran) {
      let rest = c;
      f = 0;
      let fs = 1;
      for (let d = 0; d < shape.length; d++) {
        const i = Math.floor(rest / strides[d]!) % shape[d]!;
        f += i * fs;
        fs *= shape[d]!;
      }
      rest = 0;
    }
    for (let k = 0; k < size; k++) raw[f * size + k] = cOrderLE[c * size + (descr[0] === '>' ? size - 1 - k : k)]!;
  }
  return { file: new Uint8Array(npy(descr, shape, raw, fortran)), shape, descr, cOrderLE };
}

const validNpyArb = fc
  .tuple(fc.constantFrom(...DTYPES), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }), fc.boolean(), fc.nat())
  .map(([d, s, f, seed]) => validNpy(d, s, f, seed));

const npySeeds = [validNpy('|u1', [2, 3, 4, 4], false, 1), validNpy('<f4', [3, 4, 4], false, 2), validNpy('>f8', [2, 1, 4, 4], true, 3), validNpy('<i8', [6], false, 4)].map((v) => v.file);

/** Header dicts from a grammar: wrong and duplicated keys, 'shape' inside strings, negative/huge dims, deep tuples. */
const literal: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('True', 'False', 'None', "'<f4'", "'|u1'", '"<f8"', "'shape': (1,)", "\"'shape': (3,)\"", '[("a", "<f4")]', '1.5', '0x10', '3L'),
  fc.integer({ min: -5, max: 2 ** 40 }).map(String),
  fc.constantFrom('99999999999999999999', '-1', '18446744073709551615', '4294967296'),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 10 }).map(String), fc.constantFrom('4294967295', '2147483648', '0', '1L')), { maxLength: 70 }).map((xs) => `(${xs.join(', ')}${xs.length === 1 ? ',' : ''})`),
  fc.integer({ min: 1, max: 5000 }).map((d) => `${'('.repeat(d)}1,${')'.repeat(d)}`),
);
const headerText = fc
  .array(fc.tuple(fc.constantFrom("'descr'", "'fortran_order'", "'shape'", "'shape'", "'extra'", '"descr"', 'shape', "'shape '"), literal), { maxLength: 5 })
  .chain((entries) =>
    fc.tuple(fc.constant(entries), fc.boolean(), fc.constantFrom('', ' ', '\n', ' x', '}')).map(([es, trailing, after]) => `{${es.map(([k, v]) => `${k}: ${v}`).join(', ')}${trailing ? ', ' : ''}}${after}`),
  );
const generatedNpy = fc.tuple(headerText, fc.integer({ min: 0, max: 300 }), fc.constantFrom(1, 2, 3)).map(([h, n, major]) => {
  const head = Buffer.from(`${h}\n`, 'latin1');
  const pre = Buffer.alloc(major === 1 ? 10 : 12);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(pre);
  if (major === 1) pre.writeUInt16LE(head.length, 8);
  else pre.writeUInt32LE(head.length, 8);
  return new Uint8Array(Buffer.concat([pre, head, bytes(n, n + 7)]));
});

/** Multi-member gzip: a header member, then `mb` members of 1 MiB of zeros (about 1 KB each): cheap to make, huge to inflate. */
function gzipBomb(header: Uint8Array, mb: number): Uint8Array {
  const zeros = gzipSync(new Uint8Array(1 << 20), { level: 9 });
  return new Uint8Array(Buffer.concat([gzipSync(header), ...new Array<Buffer>(mb).fill(zeros)]));
}
function idxHeader(type: number, dims: number[]): Uint8Array {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE((type << 8) | dims.length, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d >>> 0, 4 + 4 * i));
  return b;
}
/** A raw-deflate stream of `mb` MiB of zeros, by concatenating sync-flushed blocks (never holding the output). */
function deflateBomb(mb: number): Uint8Array {
  const block = deflateRawSync(new Uint8Array(1 << 20), { level: 9, finishFlush: 2 /* Z_SYNC_FLUSH */ });
  return new Uint8Array(Buffer.concat([...new Array<Buffer>(mb).fill(block), deflateRawSync(new Uint8Array(0))]));
}
/** A zip with one deflated member whose central directory declares `declared` bytes (crc of the real content unknown: 0). */
function zipWithMember(name: string, body: Uint8Array, declared: number, crc = 0): Uint8Array {
  const z = zip([{ name, data: new Uint8Array(0), deflate: true }]);
  // rebuild with the bomb body: local header (30 + name) + body + central (46 + name) + end (22)
  const n = Buffer.from(name);
  const lh = Buffer.from(z.subarray(0, 30 + n.length));
  lh.writeUInt32LE(crc, 14);
  lh.writeUInt32LE(body.length, 18);
  lh.writeUInt32LE(declared >>> 0, 22);
  const cdStart = z.length - 22 - 46 - n.length;
  const ch = Buffer.from(z.subarray(cdStart, cdStart + 46 + n.length));
  ch.writeUInt32LE(crc, 16);
  ch.writeUInt32LE(body.length, 20);
  ch.writeUInt32LE(declared >>> 0, 24);
  const end = Buffer.from(z.subarray(z.length - 22));
  end.writeUInt32LE(30 + n.length + body.length, 16);
  return new Uint8Array(Buffer.concat([lh, body, ch, end]));
}

const stats: Record<string, unknown> = {};
afterAll(() => console.log(JSON.stringify(stats)));
const tmp = scratch('goe-fuzz-arrays-');
afterAll(tmp.cleanup);

function expectValid(a: { data: ArrayLike<number | bigint>; shape: number[] }, v: ValidNpy): void {
  expect(a.shape).toEqual(v.shape);
  const got = new Uint8Array((a.data as Uint8Array).buffer, (a.data as Uint8Array).byteOffset, v.cOrderLE.length);
  expect(Buffer.from(got).equals(Buffer.from(v.cOrderLE))).toBe(true);
}

describe('fuzz: .npy', () => {
  it('in memory: valid arrays read exactly; mutated and generated headers give a DataError or a consistent array', async () => {
    const arb = fc.oneof(validNpyArb.map((v) => ({ v, b: v.file })), fc.oneof(mutated(npySeeds), generatedNpy).map((b) => ({ v: null, b })));
    stats.npy = await fuzz('npy', 3000, arb, async ({ v, b }, s) => {
      const o = await outcome(() => {
        const h = parseNpyHeader(b, 'a.npy');
        return decodeNpyData(h, b.subarray(h.headerLength), 'a.npy');
      }, s, b.length);
      if (v !== null) {
        if (o.error) throw o.error;
        expectValid(o.value!, v);
      } else if (o.value) expect(o.value.data.length).toBe(o.value.shape.reduce((x, y) => x * y, 1));
      else expect(o.error!.message).toMatch(/^a\.npy: /);
    });
  });

  it('files: readNpy, openNpyImages and openImageSet on mutated files', async () => {
    const f = tmp.file('x.npy');
    stats.npyFiles = await fuzz('npy files', 300, fc.tuple(fc.oneof(mutated(npySeeds), generatedNpy), fc.nat({ max: 2 })), async ([b, which], s) => {
      writeFileSync(f, b);
      const readers = [() => readNpy(f), () => openNpyImages(f), () => openImageSet(f, { channels: 1, height: 4, width: 4 })];
      const o = await outcome<unknown>(readers[which]!, s, b.length);
      if (o.error) expect(o.error.message).toContain(f);
    });
  });
});

describe('fuzz: .npz', () => {
  const seedArrays = [validNpy('|u1', [2, 1, 4, 4], false, 5), validNpy('<f4', [5], false, 6)];
  const members = (deflate: boolean) => zip([{ name: 'x.npy', data: seedArrays[0]!.file, deflate }, { name: 'y.npy', data: seedArrays[1]!.file, deflate }]);
  const seeds = [members(false), members(true)].map((b) => new Uint8Array(b));
  const bombBody = deflateBomb(400); // about 400 KB inflating to 400 MiB
  const bombs = fc.constantFrom(
    zipWithMember('x.npy', bombBody, 400 << 20), // declares its true 400 MiB: refused by the ratio
    zipWithMember('x.npy', bombBody, 1 << 20), // declares 1 MiB, inflates to 400 MiB: stopped at the declared size
    zipWithMember('x.npy', bombBody, 0xffffffff),
  );
  const arb = fc.oneof({ arbitrary: mutated(seeds), weight: 12 }, { arbitrary: bombs, weight: 1 }, { arbitrary: fc.constantFrom(...seeds), weight: 2 });

  it('NpzFile (zip.ts on disk): array() and the lazy images() both check sizes, ratios and CRCs', async () => {
    const f = tmp.file('x.npz');
    stats.npz = await fuzz('npz files', 500, fc.tuple(arb, fc.nat({ max: 2 })), async ([b, which], s) => {
      writeFileSync(f, b);
      const read = async () => {
        const z = await NpzFile.open(f);
        return which === 0 ? (await z.array('x')).data : which === 1 ? await z.images('x') : await openImageSet(f, { channels: 1, height: 4, width: 4 });
      };
      const o = await outcome(read, s, b.length);
      if (o.error) expect(o.error.message).toContain(f);
      else if (which === 0) expect(Buffer.from(o.value as Uint8Array).equals(Buffer.from(seedArrays[0]!.cOrderLE))).toBe(true);
    });
  });

  it('score files (in memory): npzMember + parseNpyScores', async () => {
    const scoreSeeds = [validNpy('<f8', [7], false, 8), validNpy('<f4', [9], false, 9)].map((v) => new Uint8Array(zip([{ name: 'in__MSP.npy', data: v.file, deflate: true }])));
    const arbS = fc.oneof({ arbitrary: mutated([...scoreSeeds, ...seeds]), weight: 15 }, { arbitrary: bombs, weight: 1 });
    stats.scoreNpz = await fuzz('score npz', 3000, fc.tuple(arbS, fc.constantFrom('in__MSP', 'x')), async ([b, key], s) => {
      const o = await outcome(() => parseNpyScores(npzMember(b, key, 's.npz'), `s.npz:${key}`), s, b.length);
      if (o.error) expect(o.error.message).toMatch(/^s\.npz/);
      else expect(o.value!.every(Number.isFinite)).toBe(true);
    });
  });
});

describe('fuzz: IDX', () => {
  const u8 = new Uint8Array(Buffer.concat([idxHeader(0x08, [3, 4, 4]), bytes(48, 11)]));
  const i32 = new Uint8Array(Buffer.concat([idxHeader(0x0c, [5]), bytes(20, 12)]));
  const seeds = [u8, i32, new Uint8Array(gzipSync(u8)), new Uint8Array(gzipSync(i32))];
  const generated = fc
    .tuple(
      fc.constantFrom(0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x07, 0xff),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(0xffffffff, 0x80000000, 0x10000)), { maxLength: 6 }),
      fc.integer({ min: 0, max: 200 }),
      fc.boolean(),
    )
    .map(([t, dims, n, gz]) => {
      const b = new Uint8Array(Buffer.concat([idxHeader(t, dims), bytes(n, n + 3)]));
      return gz ? new Uint8Array(gzipSync(b)) : b;
    });
  const bombs = fc.constantFrom(
    gzipBomb(idxHeader(0x08, [400 * 1024 * 1024]), 400), // consistent header, 400 MiB from about 400 KB
    gzipBomb(idxHeader(0x08, [10]), 300), // header says 10 bytes, stream has 300 MiB
  );
  const arb = fc.oneof({ arbitrary: mutated(seeds), weight: 15 }, { arbitrary: generated, weight: 14 }, { arbitrary: bombs, weight: 1 });

  it('parseIdx in memory: a DataError or an array whose size matches its shape', async () => {
    stats.idx = await fuzz('idx', 3000, arb, async (b, s) => {
      const o = await outcome(() => parseIdx(b, 'a-idx3-ubyte'), s, b.length);
      if (o.error) expect(o.error.message).toMatch(/^a-idx3-ubyte: /);
      else expect(o.value!.data.length).toBe(o.value!.shape.reduce((x, y) => x * y, 1));
    });
  });

  it('files: readIdx and openImageSet', async () => {
    const f = tmp.file('a-idx3-ubyte.gz');
    stats.idxFiles = await fuzz('idx files', 300, fc.tuple(arb, fc.boolean()), async ([b, user], s) => {
      writeFileSync(f, b);
      const o = await outcome<unknown>(() => (user ? openImageSet(f, { channels: 1, height: 4, width: 4 }) : readIdx(f)), s, b.length);
      if (o.error) expect(o.error.message).toContain(f);
    });
  });
});

describe('fuzz: safetensors', () => {
  const seed = serializeSafetensors({ w: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }, b: { shape: [3], data: new Int32Array([7, 8, 9]) } }, { k: 'v' });
  // header values as JSON text (a value nested 10^5 deep cannot go through JSON.stringify)
  const headerValue: fc.Arbitrary<string> = fc.oneof(
    fc
      .record({ dtype: fc.constantFrom('F32', 'U8', 'I64', 'toString', '__proto__', 'X'), shape: fc.array(fc.oneof(fc.integer({ min: -2, max: 9 }), fc.constantFrom(2 ** 53, 1e300, 0.5)), { maxLength: 4 }), data_offsets: fc.array(fc.integer({ min: -1, max: 64 }), { maxLength: 3 }) })
      .map((v) => JSON.stringify(v)),
    fc.integer({ min: 1, max: 100_000 }).map((d) => `{"dtype": "F32", "shape": ${'['.repeat(d)}${']'.repeat(d)}, "data_offsets": [0, 0]}`),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  );
  const generated = fc.dictionary(fc.constantFrom('a', 'b', '__metadata__', 'constructor'), headerValue, { maxKeys: 3 }).chain((h) =>
    fc.integer({ min: 0, max: 64 }).map((n) => {
      const json = Buffer.from(`{${Object.entries(h).map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')}}`);
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(BigInt(json.length));
      return new Uint8Array(Buffer.concat([head, json, bytes(n, n)]));
    }),
  );
  it('parseSafetensors: a SafetensorsError or tensors that tile the data', async () => {
    stats.safetensors = await fuzz('safetensors', 3000, fc.oneof(mutated([seed]), generated), async (b, s) => {
      const o = await outcome(() => parseSafetensors(b, { source: 'm.safetensors' }), s, b.length);
      for (const t of o.value?.tensors.values() ?? []) expect(t.data.length).toBe(t.shape.reduce((x, y) => x * y, 1));
    });
  });
});

describe('fuzz: text and JSON score files', () => {
  const deep = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(100_000, 200_000)).map((d) => `[1, ${'['.repeat(d)}${']'.repeat(d)}]`);
  const json = fc.oneof({ arbitrary: deep, weight: 1 }, { arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)), weight: 4 }, fc.string({ maxLength: 40 }), fc.array(fc.double(), { maxLength: 20 }).map((a) => JSON.stringify(a)));
  it('parseScoreJson and parseScoreLines: a ScoreFileError or finite scores', async () => {
    stats.scoreText = await fuzz('score text', 3000, fc.tuple(json, fc.boolean()), async ([t, asJson], s) => {
      const o = await outcome(() => (asJson ? parseScoreJson(t, 's.json') : parseScoreLines(t, 's.txt')), s, t.length);
      if (o.value) expect(o.value.every(Number.isFinite)).toBe(true);
    });
  });
});

it('bombs are refused by size, not by running out of memory (a crc-valid 400 MiB deflate)', () => {
  const body = deflateBomb(400);
  const b = zipWithMember('in__MSP.npy', body, 400 << 20, crc32(new Uint8Array(0)));
  expect(() => npzMember(b, 'in__MSP', 'b.npz')).toThrow(/b\.npz: .*would inflate to 419430400 \(over 100:1/);
  expect(() => parseIdx(gzipBomb(idxHeader(0x08, [400 << 20]), 400), 'bomb.gz')).toThrow(/bomb\.gz: gzip stream of \d+ bytes inflates past/);
});

describe('the issue-20 findings, one by one', () => {
  const header = (h: string): Uint8Array => {
    const text = Buffer.from(`${h}\n`, 'latin1');
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length & 255, text.length >> 8]);
    return new Uint8Array(Buffer.concat([pre, text, Buffer.alloc(16)]));
  };
  it.each([
    ["{'descr': '|u1', 'fortran_order': False, 'shape': (4,), 'shape': (16,)}", /duplicated key 'shape'/],
    ["{'descr': '|u1', 'fortran_order': False, 'x': \"'shape': (16,)\", 'shape': (16,)}", /keys are \(descr, fortran_order, shape, x\)/],
    ["{'descr': '|u1', 'fortran_order': False, 'shape': (-16,)}", /shape entry -16 is not a non-negative integer/],
    ["{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", /more than any file holds/],
    [`{'descr': '|u1', 'fortran_order': False, 'shape': ${'('.repeat(100)}16,${')'.repeat(100)}}`, /nested deeper than 32/],
  ])('.npy header %s is refused like numpy does', (h, why) => {
    expect(() => parseNpyHeader(header(h), 'h.npy')).toThrow(why);
  });

  it('the lazy .npz path checks the CRC of a stored member', async () => {
    const v = validNpy('|u1', [1, 1, 4, 4], false, 3);
    const z = zip([{ name: 'x.npy', data: v.file }]);
    z[z.indexOf(Buffer.from(v.cOrderLE.subarray(0, 8))) + 3]! ^= 0xff; // one pixel changed after the CRC was written
    const f = tmp.file('crc.npz');
    writeFileSync(f, z);
    await expect((await NpzFile.open(f)).images('x')).rejects.toThrow(/crc\.npz: member 'x\.npy' fails its CRC-32 check/);
    await expect(openImageSet(f, { channels: 1, height: 4, width: 4 })).rejects.toThrow(/CRC-32/);
  });

  it('a JSON score file nested 10^5 deep names the element instead of overflowing the stack', () => {
    expect(() => parseScoreJson(`[1, ${'['.repeat(100_000)}${']'.repeat(100_000)}]`, 's.json')).toThrow(/s\.json: element 1 is an array of 1, not a number/);
  });
});
