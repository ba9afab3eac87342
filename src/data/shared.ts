/**
 * Typed arrays over SharedArrayBuffer: data read once in the main thread is then visible to the
 * loader's worker threads without a copy (posting a shared array to a worker shares its memory).
 */
export function sharedUint8(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(n));
}
export function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * 4));
}
export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

export type NumericArray = Uint8Array | Float32Array | Int32Array;

/** The same array if it is already shared, otherwise a shared copy (made once, when a loader starts). */
export function toShared<T extends NumericArray>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const Ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const out = new Ctor(new SharedArrayBuffer(a.byteLength));
  (out as NumericArray).set(a as never);
  return out;
}
