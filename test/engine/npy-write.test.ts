// The one numpy writer (src/engine/io/npy-write.ts): every dtype round-trips through the data
// layer's readers (header parser, NpzFile, the zip reader with its CRC check), the header is what
// numpy writes, and bad input is refused before anything is written.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { npyBytes, npzBytes, type NpyData } from '../../src/engine/io/npy-write.ts';
import { saveNpz } from '../../src/engine/io/node-files.ts';
import { NpzFile, decodeNpyData, parseNpyHeader } from '../../src/data/npy.ts';
import { listZip, readZipMember } from '../../src/data/zip.ts';
import { crc32 } from 'node:zlib';

const dir = mkdtempSync(join(tmpdir(), 'goe-npy-write-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ARRAYS: [string, NpyData][] = [
  ['|u1', Uint8Array.from({ length: 24 }, (_, i) => (i * 37) % 256)],
  ['|i1', Int8Array.from({ length: 24 }, (_, i) => i - 12)],
  ['<u2', Uint16Array.from({ length: 24 }, (_, i) => i * 2731)],
  ['<i2', Int16Array.from({ length: 24 }, (_, i) => (i - 12) * 2000)],
  ['<u4', Uint32Array.from({ length: 24 }, (_, i) => i * 178956970)],
  ['<i4', Int32Array.from({ length: 24 }, (_, i) => (i - 12) * 123456789)],
  ['<f4', Float32Array.from({ length: 24 }, (_, i) => Math.fround(Math.sin(i) * 1e3))],
  ['<f8', Float64Array.from({ length: 24 }, (_, i) => Math.cos(i) / 7)],
];

describe('npyBytes', () => {
  it('writes numpy format 1.0 with the data on a 64-byte boundary, for every dtype and rank', () => {
    for (const [descr, data] of ARRAYS) {
      for (const shape of [[24], [2, 3, 4], [4, 6], [1, 2, 3, 4]]) {
        const npy = npyBytes({ data, shape });
        expect(Array.from(npy.slice(0, 8))).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
        const hlen = npy[8]! | (npy[9]! << 8);
        expect((10 + hlen) % 64).toBe(0);
        const text = new TextDecoder().decode(npy.slice(10, 10 + hlen));
        const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
        expect(text).toMatch(new RegExp(`^\\{'descr': '${descr.replace('|', '\\|')}', 'fortran_order': False, 'shape': ${shp.replace(/[()]/g, '\\$&')}, \\} *\\n$`));
        const h = parseNpyHeader(npy);
        expect(h.shape).toEqual(shape);
        expect(h.descr).toBe(descr);
        const back = decodeNpyData(h, npy.slice(h.headerLength)).data;
        expect(Array.from(back as ArrayLike<number>)).toEqual(Array.from(data));
      }
    }
  });

  it('writes empty arrays and views into a larger buffer', () => {
    const empty = npyBytes({ data: new Float32Array(0), shape: [0, 3] });
    expect(parseNpyHeader(empty).shape).toEqual([0, 3]);
    const big = Float64Array.from({ length: 10 }, (_, i) => i);
    const view = big.subarray(3, 7);
    const h = parseNpyHeader(npyBytes({ data: view, shape: [4] }));
    expect(Array.from(decodeNpyData(h, npyBytes({ data: view, shape: [4] }).slice(h.headerLength)).data as Float64Array)).toEqual([3, 4, 5, 6]);
  });

  it('refuses a shape that does not fit the data, negative or fractional sizes, and other arrays', () => {
    expect(() => npyBytes({ data: new Uint8Array(5), shape: [2, 3] })).toThrow(/shape \(2, 3\) needs 6 values, got 5/);
    expect(() => npyBytes({ data: new Uint8Array(0), shape: [-1, 0] })).toThrow(/non-negative integers/);
    expect(() => npyBytes({ data: new Uint8Array(2), shape: [1.5, 1] })).toThrow(/non-negative integers/);
    expect(() => npyBytes({ data: [1, 2] as unknown as Uint8Array, shape: [2] })).toThrow(/must be a Uint8/);
  });
});

describe('npzBytes and saveNpz', () => {
  it('a stored zip of <key>.npy members with correct CRCs, read back by NpzFile and the zip reader', async () => {
    const arrays = Object.fromEntries(ARRAYS.map(([descr, data], i) => [`a${i}_${descr.slice(1)}`, { data, shape: [4, 6] }]));
    const path = join(dir, 'all.npz');
    writeFileSync(path, npzBytes(arrays));
    const members = await listZip(path);
    expect(members.map((m) => m.name)).toEqual(Object.keys(arrays).map((k) => `${k}.npy`));
    for (const m of members) {
      const bytes = await readZipMember(path, m.name); // checks the CRC
      expect(crc32(bytes) >>> 0).toBe(m.crc32);
      expect(Array.from(bytes)).toEqual(Array.from(npyBytes(arrays[m.name.slice(0, -4)]!)));
    }
    const npz = await NpzFile.open(path);
    for (const [key, a] of Object.entries(arrays)) expect(Array.from((await npz.array(key)).data as ArrayLike<number>)).toEqual(Array.from(a.data));
  });

  it('takes a Map too, and saveNpz writes atomically into a folder it makes', async () => {
    const x = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const y = Int32Array.from([3, 1]);
    const fromMap = npzBytes(new Map([['x', { data: x, shape: [2, 3] }], ['y', { data: y, shape: [2] }]]));
    expect(Array.from(fromMap)).toEqual(Array.from(npzBytes({ x: { data: x, shape: [2, 3] }, y: { data: y, shape: [2] } })));
    const path = join(dir, 'made', 'deeper', 'samples.npz');
    await saveNpz(path, { x: { data: x, shape: [2, 3] }, y: { data: y, shape: [2] } });
    expect(Array.from(readFileSync(path))).toEqual(Array.from(fromMap));
    await expect(saveNpz(join(dir, 'bad.npz'), { x: { data: x, shape: [7] } })).rejects.toThrow(/needs 7 values/);
  });
});
