import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatasetEntry, DatasetUnavailableError, dataDir, ensureDataset, locateDataset, readCifar } from '../../src/data/index.ts';
import { bytes, cifarBinary, tempDir, zip } from './helpers.ts';

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
const tmp = tempDir();
let server: Server;
let base = '';
const hits = new Map<string, number>();
const routes = new Map<string, (res: import('node:http').ServerResponse) => void>();

function serve(path: string, body: Uint8Array): void {
  routes.set(path, (res) => {
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    // send in pieces so progress is reported more than once
    const mid = body.length >> 1;
    res.write(body.subarray(0, mid));
    setTimeout(() => res.end(body.subarray(mid)), 5);
  });
}

// A CIFAR-10 binary archive in the real layout, small: 2 records per batch.
const images = bytes(2 * 3072, 4);
const archiveSrc = join(tmp.dir, 'archive-src');
let cifarTgz: Buffer;
const zipBody = zip([
  { name: 'wikitext-2/wiki.train.tokens', data: Buffer.from(' = Title = \n text here .\n'), deflate: true },
  { name: 'wikitext-2/wiki.valid.tokens', data: Buffer.from('valid\n') },
]);
const plain = bytes(50_000, 8);

beforeAll(async () => {
  mkdirSync(join(archiveSrc, 'cifar-10-batches-bin'), { recursive: true });
  for (const n of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) {
    writeFileSync(join(archiveSrc, 'cifar-10-batches-bin', `${n}.bin`), cifarBinary(images, [1, 2]));
  }
  const tgz = join(tmp.dir, 'c.tar.gz');
  await tar.c({ gzip: true, file: tgz, cwd: archiveSrc, portable: true }, ['cifar-10-batches-bin']);
  cifarTgz = readFileSync(tgz);
  serve('/cifar-10-binary.tar.gz', cifarTgz);
  serve('/wikitext-2-v1.zip', zipBody);
  serve('/plain.bin', plain);
  serve('/tampered.bin', Buffer.concat([plain.subarray(0, 1000), Buffer.from('X'), plain.subarray(1001)]));
  routes.set('/truncated.bin', (res) => {
    res.writeHead(200, { 'content-length': plain.length });
    res.write(plain.subarray(0, 20_000), () => res.socket?.destroy());
  });
  routes.set('/error.bin', (res) => {
    res.writeHead(500);
    res.end('internal error');
  });
  routes.set('/moved.bin', (res) => {
    res.writeHead(302, { location: '/plain.bin' });
    res.end();
  });
  server = createServer((req, res) => {
    hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1);
    const r = routes.get(req.url!);
    if (r) r(res);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  tmp.cleanup();
});

const entry = (name: string, files: DatasetEntry['files']): DatasetEntry => ({ name, description: name, format: 'test', files });
const leftovers = (folder: string): string[] => (existsSync(folder) ? readdirSync(folder).filter((f) => f.includes('.part-') || f.startsWith('.extract-')) : []);

describe('verified downloads over loopback HTTP', () => {
  it('good archive: streamed, verified, renamed into place, extracted; a second run uses the cache', async () => {
    const dir = join(tmp.dir, 'cache1');
    const e = entry('cifar10', [{ name: 'cifar-10-binary.tar.gz', url: `${base}/cifar-10-binary.tar.gz`, md5: md5(cifarTgz), extract: 'tar.gz' }]);
    const progress: number[] = [];
    const first = await ensureDataset(e, { dir, progress: false, onProgress: (_f, got) => progress.push(got) });
    expect(first.files[0]).toMatchObject({ action: 'downloaded', extracted: true });
    expect(progress.at(-1)).toBe(cifarTgz.length);
    expect(progress.length).toBeGreaterThan(1);
    const s = await readCifar({ variant: 'cifar10', split: 'train', root: first.folder });
    expect(s.length).toBe(10);
    expect(leftovers(first.folder)).toEqual([]);

    const before = hits.get('/cifar-10-binary.tar.gz');
    const second = await ensureDataset(e, { dir, progress: false });
    expect(second.files[0]).toMatchObject({ action: 'cached', extracted: false });
    expect(hits.get('/cifar-10-binary.tar.gz')).toBe(before);
    expect(await locateDataset(e, { dir })).toBe(first.folder);
  });

  it('zip archives extract through zip.ts; redirects are followed', async () => {
    const dir = join(tmp.dir, 'cache2');
    const r = await ensureDataset(
      entry('wikitext2', [
        { name: 'wikitext-2-v1.zip', url: `${base}/wikitext-2-v1.zip`, md5: md5(zipBody), extract: 'zip' },
        { name: 'moved.bin', url: `${base}/moved.bin`, md5: md5(plain) },
      ]),
      { dir, progress: false },
    );
    expect(readFileSync(join(r.folder, 'wikitext-2', 'wiki.train.tokens'), 'utf8')).toContain('text here');
    expect(md5(readFileSync(join(r.folder, 'moved.bin')))).toBe(md5(plain));
  });

  it('wrong checksum: nothing is kept under the final name, and the error says so', async () => {
    const dir = join(tmp.dir, 'cache3');
    const e = entry('tampered', [{ name: 'plain.bin', url: `${base}/tampered.bin`, md5: md5(plain) }]);
    await expect(ensureDataset(e, { dir, progress: false })).rejects.toThrow(/tampered\.bin: downloaded file fails its checksum: md5 is [0-9a-f]{32}, expected [0-9a-f]{32}.*nothing was kept/);
    expect(existsSync(join(dir, 'tampered', 'plain.bin'))).toBe(false);
    expect(leftovers(join(dir, 'tampered'))).toEqual([]);
    await expect(locateDataset(e, { dir })).rejects.toThrow(DatasetUnavailableError);
  });

  it('truncated transfer: retried, then a clear error; no partial file survives', async () => {
    const dir = join(tmp.dir, 'cache4');
    const e = entry('trunc', [{ name: 'plain.bin', url: `${base}/truncated.bin`, md5: md5(plain) }]);
    const before = hits.get('/truncated.bin') ?? 0;
    const err = (await ensureDataset(e, { dir, progress: false, retries: 1 }).catch((x: unknown) => x)) as Error;
    expect(err).toBeInstanceOf(DatasetUnavailableError);
    expect(err.message).toMatch(/cannot download trunc: (transfer interrupted|truncated transfer).*20000.* of 50000/);
    expect(err.message).toContain(`put it at ${join(dir, 'trunc', 'plain.bin')}`);
    expect((hits.get('/truncated.bin') ?? 0) - before).toBe(2);
    expect(readdirSync(join(dir, 'trunc'))).toEqual([]);
  });

  it('server error: named with the HTTP status; offline (connection refused): URL, file and folder in the message', async () => {
    const dir = join(tmp.dir, 'cache5');
    await expect(ensureDataset(entry('err', [{ name: 'x.bin', url: `${base}/error.bin`, md5: md5(plain) }]), { dir, progress: false, retries: 0 })).rejects.toThrow(
      /cannot download err: server answered HTTP 500/,
    );
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const url = `http://127.0.0.1:${port}/file.tar`;
    const err = (await ensureDataset(entry('offline', [{ name: 'file.tar', url, md5: md5(plain) }]), { dir, progress: false, retries: 0 }).catch((x: unknown) => x)) as Error;
    expect(err).toBeInstanceOf(DatasetUnavailableError);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).toContain(`fetch ${url} on a connected machine and put it at ${join(dir, 'offline', 'file.tar')} (md5 ${md5(plain)})`);
  });

  it('a file placed by hand is verified (and then stamped); a wrong one is replaced by a verified download', async () => {
    const dir = join(tmp.dir, 'cache6');
    mkdirSync(join(dir, 'byhand'), { recursive: true });
    writeFileSync(join(dir, 'byhand', 'plain.bin'), plain);
    const e = entry('byhand', [{ name: 'plain.bin', url: `${base}/plain.bin`, md5: md5(plain) }]);
    const before = hits.get('/plain.bin') ?? 0;
    expect((await ensureDataset(e, { dir, progress: false })).files[0]!.action).toBe('cached');
    expect(hits.get('/plain.bin') ?? 0).toBe(before);
    writeFileSync(join(dir, 'byhand', 'plain.bin'), 'corrupt');
    await expect(locateDataset(e, { dir })).rejects.toThrow(/fails its checksum: md5 is/);
    expect((await ensureDataset(e, { dir, progress: false })).files[0]!.action).toBe('downloaded');
    expect(md5(readFileSync(join(dir, 'byhand', 'plain.bin')))).toBe(md5(plain));
  });

  it('a corrupt archive with a matching checksum fails to extract without leaving a half-extracted tree', async () => {
    const dir = join(tmp.dir, 'cache7');
    const broken = cifarTgz.subarray(0, cifarTgz.length - 200);
    serve('/broken.tar.gz', broken);
    const e = entry('broken', [{ name: 'b.tar.gz', url: `${base}/broken.tar.gz`, md5: md5(broken), extract: 'tar.gz' }]);
    await expect(ensureDataset(e, { dir, progress: false })).rejects.toThrow(/b\.tar\.gz: cannot extract tar\.gz archive/);
    expect(readdirSync(join(dir, 'broken')).filter((f) => !f.startsWith('.b.tar.gz.verified'))).toEqual(['b.tar.gz']);
  });

  it('the data folder defaults to the user cache and follows GOE_DATA_DIR', () => {
    expect(dataDir({ HOME: '/home/u', XDG_CACHE_HOME: '/xdg' } as NodeJS.ProcessEnv)).toBe('/xdg/goe-webgpu/data');
    expect(dataDir({ GOE_DATA_DIR: '/data/goe' } as NodeJS.ProcessEnv)).toBe('/data/goe');
    expect(dataDir({} as NodeJS.ProcessEnv)).toMatch(/\.cache\/goe-webgpu\/data$/);
  });
});
