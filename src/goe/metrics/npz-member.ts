/**
 * The members of an in-memory .npz (a zip of .npy files: np.savez stores them,
 * np.savez_compressed deflates them), found through the zip's central directory. Zip64 archives
 * (members over 4 GiB) are not score files and are rejected.
 */
import { inflateRawSync } from 'node:zlib';
import { ScoreFileError } from './score-file-error.ts';

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

interface Member {
  name: string;
  method: number;
  compressedSize: number;
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
    out.push({
      name: new TextDecoder('utf-8').decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      method: view.getUint16(at + 10, true),
      compressedSize: view.getUint32(at + 20, true),
      localHeader: view.getUint32(at + 42, true),
    });
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return out;
}

/** Array names of an .npz (member names without ".npy"). */
export function npzKeys(bytes: Uint8Array, source: string): string[] {
  return members(bytes, source).map((m) => m.name.replace(/\.npy$/, ''));
}

/** The bytes of the .npy member `key` (with or without ".npy"). */
export function npzMember(bytes: Uint8Array, key: string, source: string): Uint8Array {
  const all = members(bytes, source);
  const m = all.find((x) => x.name === `${key}.npy` || x.name === key);
  if (m === undefined) {
    throw new ScoreFileError(source, `no array '${key}' in the .npz (has: ${all.map((x) => x.name.replace(/\.npy$/, '')).join(', ')})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (m.localHeader + 30 > bytes.length || view.getUint32(m.localHeader, true) !== LOCAL_HEADER) throw new ScoreFileError(source, `corrupt .npz member '${m.name}'`);
  const start = m.localHeader + 30 + view.getUint16(m.localHeader + 26, true) + view.getUint16(m.localHeader + 28, true);
  const data = bytes.subarray(start, start + m.compressedSize);
  if (m.method === 0) return data;
  if (m.method === 8) return inflateRawSync(data);
  throw new ScoreFileError(source, `.npz member '${m.name}' uses zip method ${m.method}; only stored and deflated members are read`);
}
