/**
 * The zip container of torch.save (PyTorch's miniz writer): read from the file's bytes in memory,
 * every offset and size checked against them. torch writes its members stored (uncompressed,
 * 64-byte aligned) and uses zip64 fields past 4 GiB; a compressed member is refused. Hand-written
 * rather than through yauzl (zip.ts) because the whole file is in memory anyway and a corrupt
 * header must end in a DataError, never in an exception thrown outside the caller's promise.
 */
import { crc32 } from 'node:zlib';
import { DataError } from './errors.ts';

export interface StoredMember {
  name: string;
  /** The member's bytes (a view into the file's bytes), CRC-checked. */
  data: Uint8Array;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Every member of a torch.save zip, by name. */
export function readTorchZip(bytes: Uint8Array, file: string): Map<string, StoredMember> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (m: string): never => {
    throw new DataError(`corrupt torch.save zip archive: ${m}`, file);
  };
  const need = (at: number, n: number, what: string): void => {
    if (!(at >= 0 && at + n <= bytes.length)) fail(`${what} at byte ${at} runs past the end of the file (${bytes.length} bytes)`);
  };
  const u16 = (at: number): number => view.getUint16(at, true);
  const u32 = (at: number): number => view.getUint32(at, true);
  const u64 = (at: number, what: string): number => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`);
    return Number(v);
  };

  // end of central directory: the last signature within 64 KiB + 22 bytes of the end
  let eocd = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (u32(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record');
  let entries = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    need(loc, 20, 'zip64 locator');
    if (u32(loc) !== ZIP64_LOCATOR) fail('zip64 fields without a zip64 locator');
    const z = u64(loc + 8, 'zip64 record offset');
    need(z, 56, 'zip64 end of central directory');
    if (u32(z) !== ZIP64_EOCD) fail('bad zip64 end-of-central-directory signature');
    entries = u64(z + 32, 'entry count');
    cdSize = u64(z + 40, 'central directory size');
    cdOffset = u64(z + 48, 'central directory offset');
  }
  need(cdOffset, cdSize, 'central directory');
  const out = new Map<string, StoredMember>();
  let at = cdOffset;
  for (let i = 0; i < entries; i++) {
    need(at, 46, 'central directory entry');
    if (u32(at) !== CENTRAL) fail(`bad central directory signature at byte ${at}`);
    const method = u16(at + 10);
    const crc = u32(at + 16);
    let compressed = u32(at + 20);
    let size = u32(at + 24);
    const nameLen = u16(at + 28);
    const extraLen = u16(at + 30);
    const commentLen = u16(at + 32);
    let local = u32(at + 42);
    need(at + 46, nameLen + extraLen + commentLen, 'central directory entry');
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLen));
    // zip64 extra field (id 1): the 0xffffffff fields, in the order size, compressed size, offset
    for (let e = at + 46 + nameLen; e + 4 <= at + 46 + nameLen + extraLen; ) {
      const id = u16(e);
      const len = u16(e + 2);
      need(e + 4, len, 'extra field');
      if (id === 1) {
        let p = e + 4;
        const take = (what: string): number => {
          if (p + 8 > e + 4 + len) fail(`short zip64 extra field of '${name}'`);
          const v = u64(p, what);
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = take('member size');
        if (compressed === 0xffffffff) compressed = take('member size');
        if (local === 0xffffffff) local = take('member offset');
      }
      e += 4 + len;
    }
    at += 46 + nameLen + extraLen + commentLen;
    if (name.endsWith('/')) continue;
    if (method !== 0) fail(`member '${name}' is compressed (method ${method}); torch.save stores members uncompressed: load and save it again with torch.save`);
    if (compressed !== size) fail(`stored member '${name}' declares ${compressed} compressed and ${size} uncompressed bytes`);
    need(local, 30, `local header of '${name}'`);
    if (u32(local) !== LOCAL) fail(`bad local header signature of '${name}'`);
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    need(start, size, `data of '${name}'`);
    const data = bytes.subarray(start, start + size);
    if (crc32(data) !== crc) fail(`member '${name}' fails its CRC-32 check`);
    if (out.has(name)) fail(`member '${name}' appears twice`);
    out.set(name, { name, data });
  }
  return out;
}
