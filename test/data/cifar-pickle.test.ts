import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, NDArray, readCifar, readCifarBinary, readCifarPython, readCifarPythonMeta, unpickle } from '../../src/data/index.ts';
import { bytes, cifarBinary, cifarPickle, PickleWriter, tempDir } from './helpers.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const tmp = tempDir();
afterAll(tmp.cleanup);

describe('safe unpickler', () => {
  it('reads a Python 2 style protocol-2 CIFAR batch (BINSTRING pixel data, latin-1 keys)', () => {
    const data = bytes(2 * 3072, 7);
    const d = unpickle(cifarPickle(data, [3, 9], 'cifar10'), 'batch');
    expect(d).toBeInstanceOf(Map);
    const m = d as Map<unknown, unknown>;
    const a = m.get('data') as NDArray;
    expect(a).toBeInstanceOf(NDArray);
    expect(a.dtype).toBe('u1');
    expect(a.shape).toEqual([2, 3072]);
    expect(Buffer.from(a.data).equals(Buffer.from(data))).toBe(true);
    expect(m.get('labels')).toEqual([3, 9]);
    expect(m.get('batch_label')).toBe('training batch 1 of 1');
    expect(m.get('filenames')).toEqual(['img_0.png', 'img_1.png']);
  });

  it.each([0, 1, 2, 4, 5])('reads a CIFAR-style batch pickled by Python 3 + numpy with protocol %i', (proto) => {
    const d = unpickle(readFileSync(join(fixtures, `cifar-py3-proto${proto}.pkl`)), 'fixture') as Map<string, unknown>;
    const a = d.get('data') as NDArray;
    expect(a.shape).toEqual([2, 3072]);
    expect(a.data.length).toBe(6144);
    expect(d.get('labels')).toEqual([3, 7]);
    expect(d.get('filenames')).toEqual(['a_01.png', 'b_02.png']);
    // all three protocols carry the same pixels
    const ref = (unpickle(readFileSync(join(fixtures, 'cifar-py3-proto4.pkl'))) as Map<string, NDArray>).get('data')!;
    expect(Buffer.from(a.data).equals(Buffer.from(ref.data))).toBe(true);
  });

  it('refuses globals outside the allow-list, naming them', () => {
    const evil = new Uint8Array([0x80, 0x02, 0x63, ...Buffer.from('os\nsystem\n'), 0x55, 2, 0x6c, 0x73, 0x85, 0x52, 0x2e]);
    expect(() => unpickle(evil, 'evil.pkl')).toThrow(/evil\.pkl: .*global 'os\.system' is not allowed/);
    const builtins = new Uint8Array([0x80, 0x02, 0x63, ...Buffer.from('builtins\neval\n'), 0x2e]);
    expect(() => unpickle(builtins, 'b.pkl')).toThrow(/builtins\.eval/);
  });

  it('refuses object-constructing opcodes (INST, OBJ, NEWOBJ, persistent ids)', () => {
    expect(() => unpickle(new Uint8Array([0x28, 0x69, ...Buffer.from('os\nsystem\n'), 0x2e]))).toThrow(/INST is refused/);
    expect(() => unpickle(new Uint8Array([0x28, 0x6f, 0x2e]))).toThrow(/OBJ is refused/);
    expect(() => unpickle(new Uint8Array([0x80, 2, 0x4e, 0x29, 0x81, 0x2e]))).toThrow(/NEWOBJ is refused/);
    expect(() => unpickle(new Uint8Array([0x4e, 0x51, 0x2e]))).toThrow(/BINPERSID is refused/);
  });

  it('refuses REDUCE on data and _codecs.encode with other encodings', () => {
    const w = PickleWriter.dump({ raw: [0x63, ...Buffer.from('_codecs\nencode\n'), 0x8c, 1, 0x41, 0x8c, 5, ...Buffer.from('utf-8'), 0x86, 0x52] });
    expect(() => unpickle(w)).toThrow(/latin1/);
  });

  it('reports truncation with the offset', () => {
    const full = cifarPickle(bytes(3072), [1], 'cifar10');
    expect(() => unpickle(full.subarray(0, full.length - 100), 'cut.pkl')).toThrow(/cut\.pkl: .*truncated/);
    expect(() => unpickle(full.subarray(0, 10), 'cut.pkl')).toThrow(DataError);
  });
});

describe('CIFAR readers', () => {
  const imgs = bytes(5 * 3072, 3);
  const labels = [0, 9, 4, 4, 1];

  it('binary CIFAR-10: CHW pixels and labels as written', async () => {
    const f = join(tmp.dir, 'c10.bin');
    writeFileSync(f, cifarBinary(imgs, labels));
    const s = await readCifarBinary([f, f], 'cifar10');
    expect(s.length).toBe(10);
    expect(s.sampleShape).toEqual([3, 32, 32]);
    expect(s.layout).toBe('CHW');
    expect([...s.labels!]).toEqual([...labels, ...labels]);
    expect(Buffer.from(s.data.subarray(3072 * 6, 3072 * 7) as Uint8Array).equals(Buffer.from(imgs.subarray(3072, 6144)))).toBe(true);
    expect(s.data.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('binary CIFAR-100: fine and coarse labels', async () => {
    const f = join(tmp.dir, 'c100.bin');
    writeFileSync(f, cifarBinary(imgs, [99, 0, 50, 7, 12], [19, 0, 3, 4, 5]));
    expect([...(await readCifarBinary([f], 'cifar100')).labels!]).toEqual([99, 0, 50, 7, 12]);
    expect([...(await readCifarBinary([f], 'cifar100', 'coarse')).labels!]).toEqual([19, 0, 3, 4, 5]);
  });

  it('binary: truncated file and out-of-range labels are named errors', async () => {
    const f = join(tmp.dir, 'short.bin');
    writeFileSync(f, cifarBinary(imgs, labels).subarray(0, 3073 * 2 + 100));
    await expect(readCifarBinary([f], 'cifar10')).rejects.toThrow(/short\.bin: .*not a positive multiple of the 3073-byte record/);
    const g = join(tmp.dir, 'badlabel.bin');
    writeFileSync(g, cifarBinary(imgs, [0, 1, 12, 3, 4]));
    await expect(readCifarBinary([g], 'cifar10')).rejects.toThrow(/badlabel\.bin: record 2: label 12 out of range 0\.\.9/);
  });

  it('python (pickle) CIFAR-10 and CIFAR-100 give the same arrays as binary', async () => {
    const f = join(tmp.dir, 'data_batch');
    writeFileSync(f, cifarPickle(imgs, labels, 'cifar10'));
    const s = await readCifarPython([f], 'cifar10');
    expect([...s.labels!]).toEqual(labels);
    expect(Buffer.from(s.data as Uint8Array).equals(Buffer.from(imgs))).toBe(true);
    const g = join(tmp.dir, 'train100');
    writeFileSync(g, cifarPickle(imgs, [5, 6, 7, 8, 99], 'cifar100', [1, 2, 3, 4, 19]));
    expect([...(await readCifarPython([g], 'cifar100')).labels!]).toEqual([5, 6, 7, 8, 99]);
    expect([...(await readCifarPython([g], 'cifar100', 'coarse')).labels!]).toEqual([1, 2, 3, 4, 19]);
    // a Python 3 re-pickled batch reads the same way
    const p = await readCifarPython([join(fixtures, 'cifar-py3-proto2.pkl')], 'cifar10');
    expect([...p.labels!]).toEqual([3, 7]);
  });

  it('python: wrong variant, bad labels and wrong shapes are named errors', async () => {
    const f = join(tmp.dir, 'c10batch');
    writeFileSync(f, cifarPickle(imgs, labels, 'cifar10'));
    await expect(readCifarPython([f], 'cifar100')).rejects.toThrow(/c10batch: no label list under 'fine_labels'.*is this a cifar100 file/);
    const g = join(tmp.dir, 'badlab');
    writeFileSync(g, cifarPickle(imgs, [0, 1, 2, 3, 10], 'cifar10'));
    await expect(readCifarPython([g], 'cifar10')).rejects.toThrow(/badlab: label 4 is 10, outside 0\.\.9/);
    const h = join(tmp.dir, 'badshape');
    writeFileSync(
      h,
      PickleWriter.dump({ dict: [[{ str: 'data' }, { ndarray: { dtype: 'u1', shape: [2, 100], data: bytes(200), py2: true } }], [{ str: 'labels' }, { list: [{ int: 0 }, { int: 1 }] }]] }),
    );
    await expect(readCifarPython([h], 'cifar10')).rejects.toThrow(/badshape: 'data' has shape \(2, 100\), expected \(N, 3072\)/);
  });

  it('readCifar finds the binary or python folder of an extracted archive; meta files give class names', async () => {
    const root = join(tmp.dir, 'root');
    mkdirSync(join(root, 'cifar-10-batches-py'), { recursive: true });
    for (const n of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) {
      writeFileSync(join(root, 'cifar-10-batches-py', n), cifarPickle(imgs, labels, 'cifar10'));
    }
    const train = await readCifar({ variant: 'cifar10', split: 'train', root });
    expect(train.length).toBe(25);
    const test = await readCifar({ variant: 'cifar10', split: 'test', root });
    expect(test.length).toBe(5);
    await expect(readCifar({ variant: 'cifar100', split: 'test', root })).rejects.toThrow(/no cifar100 test files found/);
    const meta = join(root, 'cifar-10-batches-py', 'batches.meta');
    writeFileSync(meta, PickleWriter.dump({ dict: [[{ str: 'label_names' }, { list: [{ str: 'airplane' }, { str: 'automobile' }] }]] }));
    expect((await readCifarPythonMeta(meta)).labelNames).toEqual(['airplane', 'automobile']);
  });
});
