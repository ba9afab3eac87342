/**
 * Zip archives: the one parser of zip structure in the project (.npz arrays, score files,
 * torch.save checkpoints, downloaded dataset archives). Rules, for every path:
 * - every offset and size read from the archive is checked against the bytes that exist before
 *   anything is read or allocated (zip64 fields hold 64-bit values; one past 2^53 is refused);
 * - the central directory's entry count must fit its size, so the work is proportional to the bytes;
 * - member names are validated (no absolute path, no '..', no NUL; backslashes read as '/') and
 *   must be unique;
 * - a deflated member inflates at most to its declared size, and that size must be within the ratio
 *   of inflate-limit.ts; a stored member's two sizes must agree;
 * - every member read is CRC-checked.
 * Every failure is a DataError naming the file. Over bytes in memory the entry points are
 * synchronous (score files, torch.save); over a file they are async (lazy .npz members read later
 * by offset, extraction streamed to disk).
 */
import { closeSync, createReadStream, createWriteStream, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw, crc32, inflateRawSync } from 'node:zlib';
import { DataError } from './errors.ts';
import { inflateProblem } from './inflate-limit.ts';

export interface ZipMember {
  name: string;
  /** 0 stored, 8 deflated (others are listed, and refused when read). */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Absolute offset of the member's (possibly compressed) data in the archive. */
  dataStart: number;
  isDirectory: boolean;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const EOCD_BYTES = 22;
const CENTRAL_BYTES = 46;
const LOCAL_BYTES = 30;
/** The zip comment's largest length: the end record lies within this many bytes of the end. */
const MAX_COMMENT = 0xffff;
const FLAG_ENCRYPTED = 1;
const FLAG_UTF8 = 1 << 11;
const INFLATE_FIX = 'store it uncompressed (np.savez, zip -0) if it is real';
/** Names without the UTF-8 flag are CP437 (the zip specification); bytes 0x80-0xff here. */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

/** Random access to an archive's bytes; `read` is only called for ranges checked against `size`. */
interface ByteRange {
  size: number;
  read(at: number, length: number): Uint8Array;
}

function bytesRange(bytes: Uint8Array): ByteRange {
  return { size: bytes.length, read: (at, length) => bytes.subarray(at, at + length) };
}

function fileRange(fd: number, file: string): ByteRange {
  return {
    size: fstatSync(fd).size,
    read(at, length) {
      const out = new Uint8Array(length);
      for (let done = 0; done < length; ) {
        let n: number;
        try {
          n = readSync(fd, out, done, length - done, at + done);
        } catch (e) {
          throw new DataError(`cannot read: ${(e as Error).message}`, file, { cause: e });
        }
        if (n === 0) throw new DataError(`the file ended while being read (${length - done} bytes short at offset ${at + done}): was it changed?`, file);
        done += n;
      }
      return out;
    },
  };
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

function decodeName(raw: Uint8Array, utf8: boolean): string {
  if (utf8 || raw.every((b) => b < 0x80)) return new TextDecoder().decode(raw);
  let s = '';
  for (const b of raw) s += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80];
  return s;
}

/** Why a member name is unsafe to use as a path, or null. */
function nameProblem(name: string): string | null {
  if (name.includes('\0')) return 'it holds a NUL character';
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) return 'it is an absolute path';
  if (name.split('/').includes('..')) return "it climbs out with '..'";
  return null;
}

/** The central directory: every member with its data's offset, all checked against `src.size`. */
function readDirectory(src: ByteRange, file: string): ZipMember[] {
  const corrupt = (what: string): never => {
    throw new DataError(`corrupt zip archive: ${what}`, file);
  };
  const need = (at: number, length: number, what: string): void => {
    if (!(Number.isSafeInteger(at) && Number.isSafeInteger(length) && at >= 0 && length >= 0 && at + length <= src.size)) {
      corrupt(`${what} (${length} bytes at offset ${at}) lies outside the ${src.size}-byte file`);
    }
  };
  const u64 = (v: DataView, at: number, what: string): number => {
    const x = v.getBigUint64(at, true);
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) corrupt(`${what} ${x} is too large`);
    return Number(x);
  };

  if (src.size < EOCD_BYTES) throw new DataError(`not a readable zip archive (${src.size} bytes: too short for an end-of-central-directory record)`, file);
  const tailStart = Math.max(0, src.size - EOCD_BYTES - MAX_COMMENT);
  const tail = view(src.read(tailStart, src.size - tailStart));
  let e = -1;
  for (let at = tail.byteLength - EOCD_BYTES; at >= 0; at--) {
    if (tail.getUint32(at, true) === EOCD) {
      e = at;
      break;
    }
  }
  if (e < 0) throw new DataError('not a readable zip archive (no end-of-central-directory record)', file);
  const disk = tail.getUint16(e + 4, true);
  if (disk !== 0 && disk !== 0xffff) corrupt(`a multi-disk archive (disk ${disk}) is not read`);
  let entries = tail.getUint16(e + 10, true);
  let cdSize = tail.getUint32(e + 12, true);
  let cdOffset = tail.getUint32(e + 16, true);
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = tailStart + e - 20;
    need(loc, 20, 'zip64 locator');
    const l = view(src.read(loc, 20));
    if (l.getUint32(0, true) !== ZIP64_LOCATOR) corrupt('zip64 fields without a zip64 locator');
    const z = u64(l, 8, 'zip64 record offset');
    need(z, 56, 'zip64 end-of-central-directory record');
    const r = view(src.read(z, 56));
    if (r.getUint32(0, true) !== ZIP64_EOCD) corrupt('bad zip64 end-of-central-directory signature');
    entries = u64(r, 32, 'entry count');
    cdSize = u64(r, 40, 'central directory size');
    cdOffset = u64(r, 48, 'central directory offset');
  }
  need(cdOffset, cdSize, 'central directory');
  if (entries * CENTRAL_BYTES > cdSize) corrupt(`${entries} entries cannot fit a ${cdSize}-byte central directory`);
  const cdBytes = src.read(cdOffset, cdSize);
  const cd = view(cdBytes);

  const out: ZipMember[] = [];
  const seen = new Set<string>();
  let at = 0;
  for (let i = 0; i < entries; i++) {
    if (at + CENTRAL_BYTES > cdSize) corrupt(`central directory entry ${i} runs past the directory's end`);
    if (cd.getUint32(at, true) !== CENTRAL) corrupt(`bad central directory signature at byte ${cdOffset + at}`);
    const flags = cd.getUint16(at + 8, true);
    const method = cd.getUint16(at + 10, true);
    const crc = cd.getUint32(at + 16, true);
    let compressedSize = cd.getUint32(at + 20, true);
    let size = cd.getUint32(at + 24, true);
    const nameLen = cd.getUint16(at + 28, true);
    const extraLen = cd.getUint16(at + 30, true);
    const commentLen = cd.getUint16(at + 32, true);
    let local = cd.getUint32(at + 42, true);
    const nameEnd = at + CENTRAL_BYTES + nameLen;
    const extraEnd = nameEnd + extraLen;
    const next = extraEnd + commentLen;
    if (next > cdSize) corrupt(`central directory entry ${i} runs past the directory's end`);
    const name = decodeName(cdBytes.subarray(at + CENTRAL_BYTES, nameEnd), (flags & FLAG_UTF8) !== 0).replaceAll('\\', '/');
    // zip64 extra field (id 1): the fields that are 0xffffffff above, in this order
    for (let x = nameEnd; x + 4 <= extraEnd; ) {
      const id = cd.getUint16(x, true);
      const len = cd.getUint16(x + 2, true);
      if (x + 4 + len > extraEnd) corrupt(`an extra field of '${name}' runs past its entry`);
      if (id === 1) {
        let p = x + 4;
        const take = (what: string): number => {
          if (p + 8 > x + 4 + len) corrupt(`short zip64 extra field of '${name}'`);
          const v = u64(cd, p, what);
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = take(`size of '${name}'`);
        if (compressedSize === 0xffffffff) compressedSize = take(`compressed size of '${name}'`);
        if (local === 0xffffffff) local = take(`offset of '${name}'`);
      }
      x += 4 + len;
    }
    at = next;
    const unsafe = nameProblem(name);
    if (unsafe !== null) throw new DataError(`unsafe member name '${name}': ${unsafe}`, file);
    if ((flags & FLAG_ENCRYPTED) !== 0) throw new DataError(`member '${name}' is encrypted`, file);
    if (seen.has(name)) corrupt(`member '${name}' appears twice`);
    seen.add(name);
    if (method === 0 && compressedSize !== size) corrupt(`stored member '${name}' declares ${compressedSize} compressed and ${size} uncompressed bytes`);
    need(local, LOCAL_BYTES, `local header of '${name}'`);
    const lh = view(src.read(local, LOCAL_BYTES));
    if (lh.getUint32(0, true) !== LOCAL) corrupt(`bad local header signature of '${name}'`);
    const dataStart = local + LOCAL_BYTES + lh.getUint16(26, true) + lh.getUint16(28, true);
    need(dataStart, compressedSize, `data of '${name}'`);
    out.push({ name, method, compressedSize, size, crc32: crc, dataStart, isDirectory: name.endsWith('/') });
  }
  return out;
}

function checkCrc(data: Uint8Array, m: ZipMember, file: string): Uint8Array {
  if (crc32(data) !== m.crc32) throw new DataError(`member '${m.name}' fails its CRC-32 check (corrupt archive)`, file);
  return data;
}

function checkMethod(m: ZipMember, file: string): void {
  if (m.method !== 0 && m.method !== 8) throw new DataError(`member '${m.name}' uses zip method ${m.method}; only stored (0) and deflated (8) members are read`, file);
}

/** One member's bytes (a view of the archive's bytes when stored), inflated within its declared size, CRC-checked. */
function readMember(src: ByteRange, m: ZipMember, file: string): Uint8Array {
  checkMethod(m, file);
  if (m.method === 0) return checkCrc(src.read(m.dataStart, m.size), m, file);
  const tooBig = inflateProblem(m.size, m.compressedSize, INFLATE_FIX);
  if (tooBig !== null) throw new DataError(`member '${m.name}': ${tooBig}`, file);
  let out: Uint8Array;
  try {
    out = inflateRawSync(src.read(m.dataStart, m.compressedSize), { maxOutputLength: Math.max(1, m.size) });
  } catch (e) {
    const past = (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
    throw new DataError(`member '${m.name}' ${past ? `inflates past its declared ${m.size} bytes` : `is corrupt (${(e as Error).message})`}`, file);
  }
  if (out.length !== m.size) throw new DataError(`member '${m.name}' inflates to ${out.length} bytes, its header declares ${m.size}`, file);
  return checkCrc(out, m, file);
}

// ---------------------------------------------------------------- archives in memory (synchronous)

/** The members of a zip held in memory. */
export function zipDirectory(bytes: Uint8Array, file: string): ZipMember[] {
  return readDirectory(bytesRange(bytes), file);
}

/** One member of a zip held in memory (from zipDirectory): a view of `bytes` when stored, CRC-checked. */
export function zipMemberBytes(bytes: Uint8Array, m: ZipMember, file: string): Uint8Array {
  return readMember(bytesRange(bytes), m, file);
}

// ---------------------------------------------------------------- archives on disk

function withFile<T>(path: string, use: (src: ByteRange) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new DataError(`cannot open: ${(e as Error).message}`, path, { cause: e });
  }
  try {
    return use(fileRange(fd, path));
  } finally {
    closeSync(fd);
  }
}

/** The members of a zip file (only the end record, the central directory and the local headers are read). */
export async function listZip(path: string): Promise<ZipMember[]> {
  return withFile(path, (src) => readDirectory(src, path));
}

/** One member's bytes, decompressed and CRC-checked. */
export async function readZipMember(path: string, name: string): Promise<Uint8Array> {
  return withFile(path, (src) => {
    const m = readDirectory(src, path).find((x) => x.name === name);
    if (m === undefined) throw new DataError(`no member '${name}' in the archive`, path);
    return readMember(src, m, path);
  });
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

/** Counts and CRC-checks a member's bytes on their way to disk; more than the declared size is an error at once. */
function sizeAndCrcCheck(m: ZipMember, path: string): { stream: Transform; finish: () => void } {
  let n = 0;
  let crc = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      if (n > m.size) return done(new DataError(`member '${m.name}' is longer than its declared ${m.size} bytes`, path));
      crc = crc32(chunk, crc);
      done(null, chunk);
    },
  });
  const finish = (): void => {
    if (n !== m.size) throw new DataError(`member '${m.name}' is truncated: ${n} of ${m.size} bytes`, path);
    if (crc !== m.crc32) throw new DataError(`member '${m.name}' fails its CRC-32 check (corrupt archive)`, path);
  };
  return { stream, finish };
}

/** Extract every member below `dest` (names validated; each member size- and CRC-checked). Returns the member names. */
export async function extractZip(path: string, dest: string): Promise<string[]> {
  const members = await listZip(path);
  const root = resolve(dest);
  try {
    for (const m of members) {
      const target = resolve(root, m.name);
      if (target !== root && !target.startsWith(root + sep)) throw new DataError(`member '${m.name}' escapes the destination`, path);
      if (m.isDirectory) {
        await mkdir(target, { recursive: true });
        continue;
      }
      checkMethod(m, path);
      await mkdir(dirname(target), { recursive: true });
      const raw = m.compressedSize === 0 ? Readable.from([]) : createReadStream(path, { start: m.dataStart, end: m.dataStart + m.compressedSize - 1 });
      const check = sizeAndCrcCheck(m, path);
      if (m.method === 8) await pipeline(raw, createInflateRaw(), check.stream, createWriteStream(target));
      else await pipeline(raw, check.stream, createWriteStream(target));
      check.finish();
    }
    return members.map((m) => m.name);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`cannot extract zip archive (${(e as Error).message})`, path, { cause: e });
  }
}
