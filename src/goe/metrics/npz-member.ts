/**
 * The members of an in-memory .npz (a zip of .npy files: np.savez stores them,
 * np.savez_compressed deflates them), found through the zip's central directory. Zip64 archives
 * (members over 4 GiB) are not score files and are rejected.
 */
import { crc32, inflateRawSync } from 'node:zlib';
import { inflateProblem } from '../../data/inflate-limit.ts';
import { ScoreFileError } from './score-file-error.ts';

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

interface Member {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeader: number;
}

function members(bytes: Uint8Array, source: string): Member[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new ScoreFileError(source, 'not an .npz file (no zip central directory)');
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const out: Member[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL_HEADER) throw new ScoreFileError(source, 'corrupt .npz central directory');
    const nameLength = view.getUint16(at + 28, true);
    if (at + 46 + nameLength > bytes.length) throw new ScoreFileError(source, 'corrupt .npz central directory (a member name runs past the end)');
    const member: Member = {
      name: new TextDecoder('utf-8').decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      method: view.getUint16(at + 10, true),
      flags: view.getUint16(at + 8, true),
      crc32: view.getUint32(at + 16, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localHeader: view.getUint32(at + 42, true),
    };
    if ([member.compressedSize, member.size, member.localHeader].includes(0xffffffff)) {
      throw new ScoreFileError(source, `.npz member '${member.name}' is a zip64 entry; score files are far smaller`);
    }
    out.push(member);
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return out;
}

/** Array names of an .npz (member names without ".npy"). */
export function npzKeys(bytes: Uint8Array, source: string): string[] {
  return members(bytes, source).map((m) => m.name.replace(/\.npy$/, ''));
}

/** The bytes of the .npy member `key` (with or without ".npy"), inflated within its declared size and CRC-checked. */
export function npzMember(bytes: Uint8Array, key: string, source: string): Uint8Array {
  const all = members(bytes, source);
  const m = all.find((x) => x.name === `${key}.npy` || x.name === key);
  if (m === undefined) {
    throw new ScoreFileError(source, `no array '${key}' in the .npz (has: ${all.map((x) => x.name.replace(/\.npy$/, '')).join(', ')})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (m.localHeader + 30 > bytes.length || view.getUint32(m.localHeader, true) !== LOCAL_HEADER) throw new ScoreFileError(source, `corrupt .npz member '${m.name}'`);
  if (m.flags & 1) throw new ScoreFileError(source, `.npz member '${m.name}' is encrypted`);
  const start = m.localHeader + 30 + view.getUint16(m.localHeader + 26, true) + view.getUint16(m.localHeader + 28, true);
  if (start + m.compressedSize > bytes.length) {
    throw new ScoreFileError(source, `.npz member '${m.name}' is truncated: its ${m.compressedSize} bytes run past the end of the file`);
  }
  const data = bytes.subarray(start, start + m.compressedSize);
  let out: Uint8Array;
  if (m.method === 0) {
    if (m.size !== m.compressedSize) throw new ScoreFileError(source, `.npz member '${m.name}' is stored but declares ${m.size} bytes in ${m.compressedSize}`);
    out = data;
  } else if (m.method === 8) {
    const tooBig = inflateProblem(m.size, m.compressedSize, 're-save the scores uncompressed (np.savez) if they are real');
    if (tooBig !== null) throw new ScoreFileError(source, `.npz member '${m.name}': ${tooBig}`);
    try {
      out = inflateRawSync(data, { maxOutputLength: Math.max(1, m.size) });
    } catch (error) {
      const past = (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
      throw new ScoreFileError(source, `.npz member '${m.name}' ${past ? `inflates past its declared ${m.size} bytes` : `is corrupt (${(error as Error).message})`}`);
    }
    if (out.length !== m.size) throw new ScoreFileError(source, `.npz member '${m.name}' inflates to ${out.length} bytes, its header declares ${m.size}`);
  } else {
    throw new ScoreFileError(source, `.npz member '${m.name}' uses zip method ${m.method}; only stored and deflated members are read`);
  }
  if (crc32(out) !== m.crc32) throw new ScoreFileError(source, `.npz member '${m.name}' fails its CRC-32 check (corrupt file)`);
  return out;
}
