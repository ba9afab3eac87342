/**
 * Zip archives whose records point outside the file: yauzl hands such offsets to fs.read, which
 * threw out of a callback (an uncaught exception that ended the process) for one past 2^53. Every
 * reader of src/data/zip.ts must answer with a DataError naming the file instead.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.ts';
import { extractZip, listZip, readZipMember } from '../../src/data/zip.ts';
import { saveNpz } from '../../src/engine/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'goe-zip-'));

/** An end-of-central-directory record preceded by a zip64 locator whose record offset is `offset`. */
function zip64Pointing(offset: bigint): Buffer {
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(offset, 8);
  loc.writeUInt32LE(1, 16);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0xffff, 8);
  eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12);
  eocd.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([Buffer.alloc(64), loc, eocd]);
}

describe('zip records pointing outside the file', () => {
  for (const [what, offset] of [['past 2^53', 1n << 60n], ['past the end', 1n << 20n], ['at the last byte', 100n]] as const) {
    it(`a zip64 record offset ${what} is a DataError from every reader`, async () => {
      const path = join(dir, `zip64-${offset}.zip`);
      writeFileSync(path, zip64Pointing(offset));
      for (const read of [() => listZip(path), () => readZipMember(path, 'x.npy'), () => extractZip(path, join(dir, 'out'))]) {
        const err = await read().then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(DataError);
        expect((err as Error).message).toContain(path);
      }
    });
  }

  it('a local header offset past the file is a DataError, and a good archive still reads', async () => {
    const good = join(dir, 'good.npz');
    await saveNpz(good, { a: { data: new Float32Array([1, 2, 3]), shape: [3] } });
    const members = await listZip(good);
    expect(members.map((m) => m.name)).toEqual(['a.npy']);
    expect((await readZipMember(good, 'a.npy')).length).toBe(members[0]!.size);
    // the central directory entry's local-header offset (at +42) pointed far past the end
    const bytes = Buffer.from((await import('node:fs')).readFileSync(good));
    const cd = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes.writeUInt32LE(0x7fffff00, cd + 42);
    const bad = join(dir, 'bad-local.npz');
    writeFileSync(bad, bytes);
    const err = await listZip(bad).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
  });
});

describe('fuzz: byte flips in a zip on disk', () => {
  it('listZip / readZipMember / extractZip give a DataError or read the archive, never another exception', async () => {
    const fc = (await import('fast-check')).default;
    const { runs, SEED } = await import('../fuzz/harness.ts');
    const { readFileSync } = await import('node:fs');
    const good = join(dir, 'fuzz-good.npz');
    await saveNpz(good, { x: { data: new Uint8Array(300).map((_, i) => i * 7), shape: [3, 10, 10] }, y: { data: new Int32Array([1, 2, 3]), shape: [3] } });
    const base = readFileSync(good);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), async (flips) => {
        const bytes = Buffer.from(base);
        for (const [at, xor] of flips) bytes[at]! ^= xor;
        const path = join(dir, `fuzz-${n++}.npz`);
        writeFileSync(path, bytes);
        for (const read of [() => listZip(path), () => readZipMember(path, 'x.npy'), () => extractZip(path, join(dir, `fuzz-out-${n}`))]) {
          const err = await read().then(() => null, (e: unknown) => e);
          if (err !== null && !(err instanceof DataError)) throw err;
        }
      }),
      { numRuns: runs(300), seed: SEED },
    );
  });
});
