/**
 * Zip archives through yauzl (reads the central directory, validates names and sizes): listing with
 * each member's data offset (so stored .npz members can be read lazily by offset), reading one
 * member into memory (CRC-checked), and extracting a whole archive safely.
 */
import { close as closeFd, createWriteStream, fstatSync, openSync, read as readFd } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { dirname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { open } from 'node:fs/promises';
import { DataError } from './errors.ts';
import { inflateProblem } from './inflate-limit.ts';

export interface ZipMember {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Absolute file offset of the member's (possibly compressed) data. */
  dataStart: number;
  isDirectory: boolean;
}

/**
 * The file as yauzl's random-access reader, with every read bounds-checked: yauzl passes offsets
 * read from the archive (zip64 records hold 64-bit ones) straight to fs.read, which throws
 * ERR_OUT_OF_RANGE from inside a callback for one beyond 2^53 - an uncaught exception that ends
 * the process. Here such a read fails through the callback, so the caller gets a DataError.
 */
class BoundedFileReader extends yauzl.RandomAccessReader {
  private readonly fd: number;
  readonly size: number;

  constructor(fd: number, size: number) {
    super();
    this.fd = fd;
    this.size = size;
  }

  private outside(position: number, length: number): Error | null {
    if (Number.isSafeInteger(position) && Number.isSafeInteger(length) && position >= 0 && length >= 0 && position + length <= this.size) return null;
    return new Error(`it points at ${length} bytes at offset ${position} of a ${this.size}-byte file`);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    const bad = this.outside(position, length);
    if (bad !== null) return void setImmediate(callback, bad);
    let done = 0;
    const step = (): void => {
      if (done === length) return callback(null);
      readFd(this.fd, buffer, offset + done, length - done, position + done, (err, n) => {
        if (err) return callback(err);
        if (n === 0) return callback(new Error('unexpected end of file'));
        done += n;
        step();
      });
    };
    step();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const bad = this.outside(start, end - start);
    if (bad !== null) throw bad; // called synchronously from openReadStream, whose caller catches it
    // A stream of our own reads: an fs.ReadStream over the shared descriptor closes it when destroyed.
    const fd = this.fd;
    let at = start;
    const stream: Readable = new Readable({
      read(want) {
        if (at >= end) return void stream.push(null);
        const buf = Buffer.allocUnsafe(Math.min(want, end - at, 1 << 20));
        readFd(fd, buf, 0, buf.length, at, (err, n) => {
          if (err) return void stream.destroy(err);
          if (n === 0) return void stream.destroy(new Error('unexpected end of file'));
          at += n;
          stream.push(buf.subarray(0, n));
        });
      },
    });
    return stream;
  }

  private closed = false;

  /** Closes the file once; yauzl may close its reader both on an error and on ZipFile.close(). */
  override close(callback: (err: Error | null) => void): void {
    if (this.closed) return void setImmediate(callback, null);
    this.closed = true;
    closeFd(this.fd, (err) => callback(err ?? null));
  }
}

async function openZip(path: string): Promise<yauzl.ZipFile> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new DataError(`cannot open: ${(e as Error).message}`, path, { cause: e });
  }
  const reader = new BoundedFileReader(fd, fstatSync(fd).size);
  try {
    return await yauzl.fromRandomAccessReaderPromise(reader, reader.size, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true });
  } catch (e) {
    reader.close(() => {});
    throw new DataError(`not a readable zip archive (${(e as Error).message})`, path, { cause: e });
  }
}

export async function listZip(path: string): Promise<ZipMember[]> {
  const zip = await openZip(path);
  try {
    const out: ZipMember[] = [];
    for await (const entry of zip.eachEntry()) {
      const problem = yauzl.validateFileName(entry.fileName);
      if (problem !== null) throw new DataError(`unsafe member name '${entry.fileName}': ${problem}`, path);
      if (entry.isEncrypted()) throw new DataError(`member '${entry.fileName}' is encrypted`, path);
      const header = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
      out.push({
        name: entry.fileName,
        method: entry.compressionMethod,
        compressedSize: entry.compressedSize,
        size: entry.uncompressedSize,
        crc32: entry.crc32,
        dataStart: header.fileDataStart,
        isDirectory: entry.fileName.endsWith('/'),
      });
    }
    return out;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`corrupt zip archive (${(e as Error).message})`, path, { cause: e });
  } finally {
    zip.close();
  }
}

/** One member's bytes, decompressed and CRC-checked. */
export async function readZipMember(path: string, name: string): Promise<Uint8Array> {
  const zip = await openZip(path);
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName !== name) continue;
      const tooBig = inflateProblem(entry.uncompressedSize, entry.compressedSize, 're-save it uncompressed (np.savez) if it is real');
      if (tooBig !== null) throw new DataError(`member '${name}': ${tooBig}`, path);
      const stream = await zip.openReadStreamPromise(entry);
      const out = new Uint8Array(entry.uncompressedSize);
      let n = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (n + chunk.length > out.length) throw new DataError(`member '${name}' is longer than its declared ${out.length} bytes`, path);
        out.set(chunk, n);
        n += chunk.length;
      }
      if (n !== out.length) throw new DataError(`member '${name}' is truncated: ${n} of ${out.length} bytes`, path);
      if (crc32(out) !== entry.crc32) throw new DataError(`member '${name}' fails its CRC-32 check (corrupt archive)`, path);
      return out;
    }
    throw new DataError(`no member '${name}' in the archive`, path);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`corrupt zip archive (${(e as Error).message})`, path, { cause: e });
  } finally {
    zip.close();
  }
}

/**
 * Check a stored member's CRC-32 by reading it in chunks (memory bounded), for readers that then use
 * its bytes by file offset instead of through readZipMember.
 */
export async function checkMemberCrc(path: string, m: ZipMember): Promise<void> {
  if (m.method !== 0) throw new DataError(`internal: member '${m.name}' is compressed; read it with readZipMember`, path);
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new DataError(`cannot open: ${(e as Error).message}`, path);
  });
  try {
    const chunk = new Uint8Array(Math.min(m.size, 4 << 20));
    let crc = 0;
    for (let done = 0; done < m.size; ) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, m.size - done), m.dataStart + done);
      if (bytesRead === 0) throw new DataError(`member '${m.name}' is truncated: the file ends ${m.size - done} bytes before its end`, path);
      crc = crc32(chunk.subarray(0, bytesRead), crc);
      done += bytesRead;
    }
    if (crc !== m.crc32) throw new DataError(`member '${m.name}' fails its CRC-32 check (corrupt archive)`, path);
  } finally {
    await fh.close();
  }
}

/** Extract every member below `dest` (names are validated: no absolute paths, no '..'). Returns the member names. */
export async function extractZip(path: string, dest: string): Promise<string[]> {
  const zip = await openZip(path);
  const root = resolve(dest);
  const names: string[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const problem = yauzl.validateFileName(entry.fileName);
      if (problem !== null) throw new DataError(`unsafe member name '${entry.fileName}': ${problem}`, path);
      const target = resolve(root, entry.fileName);
      if (target !== root && !target.startsWith(root + sep)) throw new DataError(`member '${entry.fileName}' escapes the destination`, path);
      names.push(entry.fileName);
      if (entry.fileName.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const stream = await zip.openReadStreamPromise(entry);
      await pipeline(stream, createWriteStream(target));
    }
    return names;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`cannot extract zip archive (${(e as Error).message})`, path, { cause: e });
  } finally {
    zip.close();
  }
}

