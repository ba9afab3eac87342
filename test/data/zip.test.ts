/**
 * src/data/zip.ts, the one zip parser (npz, score files, torch.save, downloads): records pointing
 * outside the file (offsets past 2^53 once ended the process through yauzl's fs.read), the same
 * answer in memory and on disk, unsafe names, duplicates, CRCs on extraction, and byte-flip fuzzing.
 * Every failure is a DataError naming the file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.ts';
import { extractZip, listZip, readZipMember, zipDirectory, zipMemberBytes } from '../../src/data/zip.ts';
import { saveNpz } from '../../src/engine/index.ts';
import { bytes as someBytes, zip } from './helpers.ts';

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

describe('one reader in memory and on disk', () => {
  const a = someBytes(5000, 3);
  const b = new Uint8Array(4000).fill(7);
  const archive = zip([{ name: 'a.bin', data: a }, { name: 'dir/b.bin', data: b, deflate: true }]);

  it('lists the same members and reads the same bytes, stored and deflated', async () => {
    const path = join(dir, 'same.zip');
    writeFileSync(path, archive);
    const inMemory = zipDirectory(archive, 'same.zip');
    expect(await listZip(path)).toEqual(inMemory);
    expect(inMemory.map((m) => [m.name, m.method, m.size])).toEqual([['a.bin', 0, 5000], ['dir/b.bin', 8, 4000]]);
    expect(new Uint8Array(zipMemberBytes(archive, inMemory[0]!, 'same.zip'))).toEqual(a);
    expect(new Uint8Array(zipMemberBytes(archive, inMemory[1]!, 'same.zip'))).toEqual(b);
    expect(new Uint8Array(await readZipMember(path, 'dir/b.bin'))).toEqual(b);
    const out = join(dir, 'same-out');
    expect(await extractZip(path, out)).toEqual(['a.bin', 'dir/b.bin']);
    expect(new Uint8Array((await import('node:fs')).readFileSync(join(out, 'dir/b.bin')))).toEqual(b);
  });

  const refused = (bytes: Uint8Array, message: RegExp): void => {
    expect(() => zipDirectory(bytes, 'm.zip')).toThrow(DataError);
    expect(() => zipDirectory(bytes, 'm.zip')).toThrow(message);
  };

  it('refuses names that climb out, absolute names and duplicates', () => {
    refused(zip([{ name: '../evil', data: a }]), /^m\.zip: unsafe member name '\.\.\/evil': it climbs out/);
    refused(zip([{ name: '/etc/x', data: a }]), /unsafe member name '\/etc\/x': it is an absolute path/);
    refused(zip([{ name: 'C:\\x', data: a }]), /unsafe member name 'C:\/x': it is an absolute path/);
    refused(zip([{ name: 'x', data: a }, { name: 'x', data: b }]), /^m\.zip: corrupt zip archive: member 'x' appears twice/);
  });

  it('an entry count that cannot fit the central directory is refused before the walk', () => {
    const bad = Buffer.from(archive);
    bad.writeUInt16LE(0xfffe, bad.length - 22 + 10);
    refused(bad, /corrupt zip archive: 65534 entries cannot fit a \d+-byte central directory/);
  });

  it('a flipped data byte fails the CRC in memory, on read and on extraction', async () => {
    const bad = Buffer.from(archive);
    bad[30 + 'a.bin'.length + 100]! ^= 1;
    const m = zipDirectory(bad, 'crc.zip')[0]!;
    expect(() => zipMemberBytes(bad, m, 'crc.zip')).toThrow(/^crc\.zip: member 'a\.bin' fails its CRC-32 check/);
    const path = join(dir, 'crc.zip');
    writeFileSync(path, bad);
    await expect(readZipMember(path, 'a.bin')).rejects.toThrow(/member 'a\.bin' fails its CRC-32 check/);
    await expect(extractZip(path, join(dir, 'crc-out'))).rejects.toThrow(new RegExp(`^${path.replace(/[.]/g, '\\.')}: member 'a\\.bin' fails its CRC-32 check`));
  });

  it('a deflated member longer than declared is stopped at the declared size, in memory and on extraction', async () => {
    const bad = Buffer.from(archive);
    const cd = bad.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bad.writeUInt32LE(100, cd + 24); // b.bin declares 100 of its 4000 bytes
    const m = zipDirectory(bad, 'long.zip')[1]!;
    expect(() => zipMemberBytes(bad, m, 'long.zip')).toThrow(/member 'dir\/b\.bin' inflates past its declared 100 bytes/);
    const path = join(dir, 'long.zip');
    writeFileSync(path, bad);
    await expect(extractZip(path, join(dir, 'long-out'))).rejects.toThrow(/member 'dir\/b\.bin' is longer than its declared 100 bytes/);
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
