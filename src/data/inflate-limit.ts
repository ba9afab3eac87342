/**
 * How far a compressed member (a gzipped IDX file, a deflated .npz member) may inflate. Deflate
 * reaches about 1032:1 on constant data, so a file under 1 MB could otherwise claim a gigabyte.
 * Anything up to INFLATE_FLOOR_BYTES is allowed at any ratio (bounded memory whatever the file);
 * beyond that the output may be at most MAX_INFLATE_RATIO times the compressed bytes. Real data
 * sits far below: MNIST's gzipped images inflate 4.8x, uint8 image .npz members 1.5-5x, float
 * scores about 1.1x. Platform-free.
 */
export const MAX_INFLATE_RATIO = 100;
export const INFLATE_FLOOR_BYTES = 64 * 1024 * 1024;

/** The most bytes `compressedBytes` of deflate data may inflate to. */
export function inflateLimit(compressedBytes: number): number {
  return Math.max(INFLATE_FLOOR_BYTES, MAX_INFLATE_RATIO * compressedBytes);
}

/** Why a member that declares `declaredBytes` from `compressedBytes` is refused, or null when it is within the limit. */
export function inflateProblem(declaredBytes: number, compressedBytes: number, fix: string): string | null {
  if (declaredBytes <= inflateLimit(compressedBytes)) return null;
  return (
    `${compressedBytes} compressed bytes would inflate to ${declaredBytes} (over ${MAX_INFLATE_RATIO}:1 and above ` +
    `${INFLATE_FLOOR_BYTES / 1024 / 1024} MiB: a decompression bomb or a corrupt size); ${fix}`
  );
}
