/**
 * Verified downloads into the data cache. A file is streamed to a temporary name beside its final
 * place while its checksum is computed, checked, and only then renamed into place (an atomic
 * rename on one file system): an interrupted, truncated or corrupted transfer never leaves a file
 * under the final name. Archives are then extracted (tar, tar.gz through node-tar; zip through
 * zip.ts) into a temporary folder and moved into place, with a marker written last.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import * as tar from 'tar';
import { DataError, DatasetUnavailableError } from './errors.ts';
import { dataDir } from './paths.ts';
import { extractZip } from './zip.ts';

export interface RemoteFile {
  /** File name inside the dataset's folder. */
  name: string;
  url: string;
  /** Expected MD5 (hex). At least one checksum should be given. */
  md5?: string;
  /** Expected SHA-256 (hex). */
  sha256?: string;
  /** Expected size in bytes: the only check where no checksum is published (notMNIST). */
  size?: number;
  /** Extract this archive into the dataset's folder after it is verified. */
  extract?: 'tar' | 'tar.gz' | 'zip';
}

export interface DatasetEntry {
  /** Registry key and folder name under the data directory. */
  name: string;
  description: string;
  files: RemoteFile[];
  /** How the files are read (e.g. 'cifar-binary', 'npy', 'image-folder', 'lines'). */
  format: string;
}

export interface DownloadOptions {
  /** Data directory (default: dataDir(), i.e. GOE_DATA_DIR or the user cache). */
  dir?: string;
  /** Show a progress bar (on stderr, else stdout, when either is a terminal): default when one is. */
  progress?: boolean;
  /** Progress callback (bytes so far, total bytes or undefined). */
  onProgress?: (file: string, received: number, total: number | undefined) => void;
  /** Extra attempts after a network error or truncated transfer (default 2). A checksum mismatch is not retried. */
  retries?: number;
  /** Give up on a request that sends nothing for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** The fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
}

export interface DownloadResult {
  /** The dataset's folder. */
  folder: string;
  /** What happened to each file. */
  files: { name: string; path: string; action: 'cached' | 'downloaded'; extracted: boolean }[];
}

/** Checksums of a file on disk. */
export async function fileDigests(path: string): Promise<{ md5: string; sha256: string; size: number }> {
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    md5.update(chunk);
    sha.update(chunk);
    size += chunk.length;
  }
  return { md5: md5.digest('hex'), sha256: sha.digest('hex'), size };
}

function mismatch(file: RemoteFile, got: { md5: string; sha256: string; size?: number }): string | undefined {
  if (file.size !== undefined && got.size !== undefined && got.size !== file.size) return `size is ${got.size} bytes, expected ${file.size}`;
  if (file.md5 !== undefined && file.md5.toLowerCase() !== got.md5) return `md5 is ${got.md5}, expected ${file.md5}`;
  if (file.sha256 !== undefined && file.sha256.toLowerCase() !== got.sha256) return `sha256 is ${got.sha256}, expected ${file.sha256}`;
  return undefined;
}

function stampPath(folder: string, name: string): string {
  return join(folder, `.${name}.verified`);
}

/**
 * Is the file at `path` the expected one? Uses a stamp (size, mtime and checksums recorded at the
 * last verification) to avoid re-hashing large files on every run.
 */
async function verifiedOnDisk(folder: string, file: RemoteFile): Promise<{ ok: boolean; problem?: string }> {
  const path = join(folder, file.name);
  let st;
  try {
    st = await stat(path);
  } catch {
    return { ok: false };
  }
  try {
    const stamp = JSON.parse(await readFile(stampPath(folder, file.name), 'utf8')) as { size: number; mtimeMs: number; md5: string; sha256: string };
    if (stamp.size === st.size && stamp.mtimeMs === st.mtimeMs && mismatch(file, stamp) === undefined) return { ok: true };
  } catch {
    // no stamp: hash the file
  }
  const d = await fileDigests(path);
  const problem = mismatch(file, d);
  if (problem !== undefined) return { ok: false, problem };
  await writeFile(stampPath(folder, file.name), JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, md5: d.md5, sha256: d.sha256 }));
  return { ok: true };
}

function describeFetchError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause;
  if (cause && typeof cause === 'object') return `${cause.code ?? ''} ${cause.message ?? ''}`.trim() || err.message;
  return err.message;
}

class TransferError extends Error {
  readonly retry: boolean;
  constructor(message: string, retry: boolean) {
    super(message);
    this.retry = retry;
  }
}

/** One attempt: stream `url` to `tmp`, hashing on the way. */
async function fetchTo(file: RemoteFile, tmp: string, opts: DownloadOptions): Promise<{ md5: string; sha256: string; size: number }> {
  const doFetch = opts.fetch ?? fetch;
  const controller = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let idle = setTimeout(() => controller.abort(), idleMs);
  const poke = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(), idleMs);
  };
  let res: Response;
  try {
    res = await doFetch(file.url, { signal: controller.signal, redirect: 'follow' });
  } catch (e) {
    clearTimeout(idle);
    throw new TransferError(`cannot connect (${controller.signal.aborted ? 'timed out' : describeFetchError(e)})`, true);
  }
  if (!res.ok || res.body === null) {
    clearTimeout(idle);
    await res.body?.cancel().catch(() => undefined);
    throw new TransferError(`server answered HTTP ${res.status} ${res.statusText}`, res.status >= 500 || res.status === 429);
  }
  const lengthHeader = res.headers.get('content-length');
  const total = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  let received = 0;
  // The bar goes to a terminal: stderr, else stdout (the `goe` binary filters its stderr through a
  // pipe, src/cli/dawn-stderr.ts, and draws its progress bars on stdout).
  const terminal = process.stderr.isTTY ? process.stderr : process.stdout.isTTY ? process.stdout : undefined;
  const showBar = terminal !== undefined && opts.progress !== false;
  const bar = showBar
    ? new cliProgress.SingleBar(
        {
          stream: terminal,
          format: `${file.name} [{bar}] {percentage}% | {mb} MB{ofmb} | {speed} MB/s`,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const started = performance.now();
  bar?.start(total ?? 0, 0, { mb: '0.0', ofmb: total ? ` of ${(total / 1e6).toFixed(1)}` : '', speed: '0.0' });
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      poke();
      md5.update(chunk);
      sha.update(chunk);
      received += chunk.length;
      opts.onProgress?.(file.name, received, total);
      const secs = (performance.now() - started) / 1000;
      bar?.update(total ? received : 0, { mb: (received / 1e6).toFixed(1), speed: secs > 0 ? (received / 1e6 / secs).toFixed(1) : '0.0' });
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), meter, createWriteStream(tmp));
  } catch (e) {
    throw new TransferError(
      `transfer interrupted after ${received} bytes${total !== undefined ? ` of ${total}` : ''} (${controller.signal.aborted ? 'no data for ' + idleMs / 1000 + ' s' : describeFetchError(e)})`,
      true,
    );
  } finally {
    clearTimeout(idle);
    bar?.stop();
  }
  if (total !== undefined && received !== total) throw new TransferError(`truncated transfer: received ${received} of ${total} bytes`, true);
  return { md5: md5.digest('hex'), sha256: sha.digest('hex'), size: received };
}

/** Download one file into `folder` (verified, atomic). Returns 'cached' when a verified copy was already there. */
export async function downloadFile(file: RemoteFile, folder: string, opts: DownloadOptions = {}, dataset = file.name): Promise<'cached' | 'downloaded'> {
  await mkdir(folder, { recursive: true });
  const dest = join(folder, file.name);
  const existing = await verifiedOnDisk(folder, file);
  if (existing.ok) return 'cached';
  const tmp = join(folder, `.${file.name}.part-${process.pid}-${randomBytes(4).toString('hex')}`);
  const retries = opts.retries ?? 2;
  let last: TransferError | undefined;
  try {
    for (let attempt = 0; attempt <= retries; attempt++) {
      try {
        const got = await fetchTo(file, tmp, opts);
        const problem = mismatch(file, got);
        if (problem !== undefined) {
          throw new DataError(`downloaded file fails its checksum: ${problem} (${got.size} bytes received); nothing was kept`, file.url);
        }
        await rename(tmp, dest);
        const st = await stat(dest);
        await writeFile(stampPath(folder, file.name), JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, md5: got.md5, sha256: got.sha256 }));
        return 'downloaded';
      } catch (e) {
        if (!(e instanceof TransferError)) throw e;
        last = e;
        await rm(tmp, { force: true });
        if (!e.retry) break;
        if (attempt < retries) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  } finally {
    await rm(tmp, { force: true });
  }
  const had = existing.problem !== undefined ? ` The file already at ${dest} fails its checksum (${existing.problem}).` : '';
  const sum = file.md5 !== undefined ? `md5 ${file.md5}` : file.sha256 !== undefined ? `sha256 ${file.sha256}` : file.size !== undefined ? `${file.size} bytes, no checksum published` : 'no checksum recorded';
  throw new DatasetUnavailableError(
    `cannot download ${dataset}: ${last?.message ?? 'unknown error'}.${had} ` +
      `To use it offline, fetch ${file.url} on a connected machine and put it at ${dest} (${sum}).`,
    file.url,
  );
}

function markerPath(folder: string, name: string): string {
  return join(folder, `.${name}.extracted`);
}

/** Extract a verified archive into `folder`: into a temporary folder first, then moved into place, then marked done. */
export async function extractArchive(file: RemoteFile, folder: string): Promise<boolean> {
  if (file.extract === undefined) return false;
  const archive = join(folder, file.name);
  const marker = markerPath(folder, file.name);
  const id = file.md5 ?? file.sha256 ?? String(file.size ?? '');
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === id) return false;
  const tmp = join(folder, `.extract-${file.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    if (file.extract === 'zip') await extractZip(archive, tmp);
    else {
      // Not `strict`: its early rejection would leave the unpacker still writing. Collect the warnings
      // (bad headers, truncated or corrupt gzip) and fail once it has finished instead.
      const problems: string[] = [];
      try {
        await tar.x({
          file: archive,
          cwd: tmp,
          preserveOwner: false,
          preservePaths: false,
          gzip: file.extract === 'tar.gz' ? true : undefined,
          onwarn: (code, message) => problems.push(`${code}: ${message}`),
        });
      } catch (e) {
        problems.push((e as Error).message);
      }
      if (problems.length > 0) throw new DataError(`cannot extract ${file.extract} archive (${problems[0]})`, archive);
    }
    for (const entry of await readdir(tmp)) {
      const target = join(folder, entry);
      await rm(target, { recursive: true, force: true }); // a leftover of an earlier, unfinished extraction
      await rename(join(tmp, entry), target);
    }
    await writeFile(marker, id);
    return true;
  } finally {
    await rm(tmp, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Make sure every file of a dataset is present and verified (downloading what is missing), and extracted. */
export async function ensureDataset(entry: DatasetEntry, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const folder = join(opts.dir ?? dataDir(), entry.name);
  const files: DownloadResult['files'] = [];
  for (const f of entry.files) {
    const action = await downloadFile(f, folder, opts, entry.name);
    const extracted = await extractArchive(f, folder);
    files.push({ name: f.name, path: join(folder, f.name), action, extracted });
  }
  return { folder, files };
}

/**
 * Check, without any network access, that a dataset's files are present and verified; extracts
 * archives that are not yet extracted. Throws DatasetUnavailableError saying what to put where.
 */
export async function locateDataset(entry: DatasetEntry, opts: Pick<DownloadOptions, 'dir'> = {}): Promise<string> {
  const folder = join(opts.dir ?? dataDir(), entry.name);
  for (const f of entry.files) {
    const v = await verifiedOnDisk(folder, f);
    if (!v.ok) {
      const sum = f.md5 !== undefined ? `md5 ${f.md5}` : f.sha256 !== undefined ? `sha256 ${f.sha256}` : `${f.size} bytes`;
      throw new DatasetUnavailableError(
        `${entry.name} is not in the data folder${v.problem ? ` (the file there fails its checksum: ${v.problem})` : ''}: ` +
          `call download('${entry.name}') or fetch ${f.url} and put it at ${join(folder, f.name)} (${sum})`,
        join(folder, f.name),
      );
    }
    await extractArchive(f, folder);
  }
  return folder;
}
