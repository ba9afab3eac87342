import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DATASETS, DatasetUnavailableError, DEBIAN_FASHION_MNIST_DIR, loadCifar, loadGoeSamples, loadMnist, loadNewsgroups20, locate } from '../../src/data/index.ts';
import { bytes, cifarBinary, tempDir } from './helpers.ts';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe('dataset registry', () => {
  it('every entry names its files, URLs and checksums', () => {
    for (const [key, e] of Object.entries(DATASETS)) {
      expect(e.name).toBe(key);
      expect(e.files.length).toBeGreaterThan(0);
      for (const f of e.files) {
        expect(f.url).toMatch(/^https?:\/\//);
        if (f.md5 === undefined && f.sha256 === undefined) {
          // only where no checksum is published anywhere (notMNIST): a size check, said so
          expect(f.size).toBeGreaterThan(0);
          expect(e.description).toMatch(/no checksum is published/i);
        } else {
          expect(f.md5 ?? f.sha256).toMatch(/^[0-9a-f]{32}([0-9a-f]{32})?$/);
        }
      }
    }
    expect(DATASETS['cifar10-python']!.files[0]!.md5).toBe('c58f30108f718f92721af3b95e74349a');
    expect(DATASETS.tinyimages300k!.files[0]!.md5).toBe('64ca64357de98351f28454274a112dc3');
  });

  it('offline (download: false): the error names the URL, the expected file and the folder', async () => {
    const err = (await loadGoeSamples(50, { dir: tmp.dir, download: false }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DatasetUnavailableError);
    expect(err.message).toContain('https://files.kondas.de/goe-data/samples-50.0.npz');
    expect(err.message).toContain(join(tmp.dir, 'goe-cifar100-samples', 'samples-50.0.npz'));
    expect(err.message).toContain('95f1365e4c6e188595bb8476d43a82d9');
    await expect(loadNewsgroups20('train', { dir: tmp.dir, download: false })).rejects.toThrow(/20ng-train-no-short\.txt/);
    await expect(locate('nope')).rejects.toThrow(/unknown dataset 'nope'/);
  });

  it('an already extracted CIFAR copy in the data folder is used without any download', async () => {
    const dir = join(tmp.dir, 'cifar100', 'cifar-100-binary');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'test.bin'), cifarBinary(bytes(3 * 3072), [5, 6, 7], [1, 1, 2]));
    const s = await loadCifar('cifar100', 'test', { dir: tmp.dir, download: false });
    expect([...s.labels!]).toEqual([5, 6, 7]);
  });

  it.skipIf(!existsSync(join(DEBIAN_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz')))('Fashion-MNIST comes from the Debian package when installed', async () => {
    const s = await loadMnist('fashion-mnist', 'train', { dir: tmp.dir, download: false });
    expect(s.length).toBe(60000);
  });
});
