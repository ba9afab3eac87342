/**
 * What the device can do, in one place: every kernel choice (the `plan*` functions) reads a
 * `Caps` value instead of asking the device, so a plan is a pure function of (pass, geometry,
 * caps) that tests can call with any adapter's caps (lavapipe, SwiftShader, an H100).
 *
 * One gate decides whether the software-adapter kernels run: `caps.simd8` (a software adapter
 * whose subgroups are exactly 8 lanes, i.e. a workgroup of 8 is one 8-lane CPU vector: lavapipe
 * with AVX2). It replaces the old pair `simd8Available()` / `device.isSoftware`; a hardware GPU
 * whose subgroups happen to be 8 wide does not get the lavapipe layouts.
 *
 * Rules every plan keeps (tests in test/engine/caps.test.ts and each plan's tests):
 *  - no workgroup over `maxInvocations` or over a per-dimension maximum (`fitsWorkgroup`);
 *  - a kernel assuming subgroups of some width runs only where the adapter's min and max
 *    subgroup sizes both allow it (SwiftShader: 4 lanes, or no subgroups at all);
 *  - no binding over `maxStorageBinding`, no texture over the texture limits.
 */

/** The adapter facts the kernels care about. */
export interface Caps {
  /** A CPU implementation of WebGPU (lavapipe, SwiftShader, WARP) or the fallback adapter. */
  readonly software: boolean;
  /** The `subgroups` feature is enabled on the device. */
  readonly subgroups: boolean;
  /** Subgroup width bounds; 0 and 0 without subgroups. */
  readonly subgroupMinSize: number;
  readonly subgroupMaxSize: number;
  readonly maxInvocations: number;
  readonly maxWorkgroupSize: readonly [number, number, number];
  /** Bytes of workgroup (shared) memory. */
  readonly maxWorkgroupStorage: number;
  readonly maxWorkgroupsPerDimension: number;
  readonly maxStorageBinding: number;
  readonly maxBufferSize: number;
  readonly maxUniformBinding: number;
  readonly maxTextureDimension2D: number;
  readonly maxTextureArrayLayers: number;
  readonly f16: boolean;
  readonly timestamps: boolean;
  /** The software-adapter ("SIMD-8") kernels may run: software, subgroups of exactly 8. */
  readonly simd8: boolean;
}

/** What `capsOf` reads: a GPUAdapterInfo-like, the enabled feature names and the device limits. */
export interface CapsSource {
  readonly info: { vendor?: string; architecture?: string; device?: string; description?: string; subgroupMinSize?: number; subgroupMaxSize?: number; isFallbackAdapter?: boolean };
  readonly features: ReadonlySet<string> | Iterable<string>;
  readonly limits: Partial<Record<keyof GPUSupportedLimits, unknown>> | GPUSupportedLimits;
}

/** WebGPU's default limits: what any conforming adapter offers (used for a missing limit). */
const DEFAULTS = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeWorkgroupsPerDimension: 65535,
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxUniformBufferBindingSize: 65536,
  maxTextureDimension2D: 8192,
  maxTextureArrayLayers: 256,
} as const;

/** Whether adapter info names a CPU implementation (or the adapter is the fallback one). */
export function isSoftwareInfo(info: CapsSource['info']): boolean {
  if (info.isFallbackAdapter) return true;
  const text = `${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  return /llvmpipe|lavapipe|swiftshader|software|warp/.test(text);
}

/** The caps of an adapter and the device made on it (pure). */
export function capsOf(src: CapsSource): Caps {
  const features = new Set([...(src.features as Iterable<string>)].map(String));
  const lim = src.limits as unknown as Record<string, number | undefined>;
  const get = (name: keyof typeof DEFAULTS): number => (typeof lim[name] === 'number' ? (lim[name] as number) : DEFAULTS[name]);
  const subgroups = features.has('subgroups');
  const subgroupMinSize = subgroups ? (src.info.subgroupMinSize ?? 0) : 0;
  const subgroupMaxSize = subgroups ? (src.info.subgroupMaxSize ?? 0) : 0;
  return withSimd8({
    software: isSoftwareInfo(src.info),
    subgroups,
    subgroupMinSize,
    subgroupMaxSize,
    maxInvocations: get('maxComputeInvocationsPerWorkgroup'),
    maxWorkgroupSize: [get('maxComputeWorkgroupSizeX'), get('maxComputeWorkgroupSizeY'), get('maxComputeWorkgroupSizeZ')],
    maxWorkgroupStorage: get('maxComputeWorkgroupStorageSize'),
    maxWorkgroupsPerDimension: get('maxComputeWorkgroupsPerDimension'),
    maxStorageBinding: get('maxStorageBufferBindingSize'),
    maxBufferSize: get('maxBufferSize'),
    maxUniformBinding: get('maxUniformBufferBindingSize'),
    maxTextureDimension2D: get('maxTextureDimension2D'),
    maxTextureArrayLayers: get('maxTextureArrayLayers'),
    f16: features.has('shader-f16'),
    timestamps: features.has('timestamp-query'),
  });
}

function withSimd8(c: Omit<Caps, 'simd8'>): Caps {
  // 8 lanes x 8 threads: every SIMD-8 kernel is one workgroup of 8 = one subgroup
  const simd8 = c.software && c.subgroups && c.subgroupMinSize === 8 && c.subgroupMaxSize === 8 && fitsWorkgroup(c, 8);
  return Object.freeze({ ...c, simd8 });
}

/** Whether a workgroup of x * y * z invocations may be created on this adapter. */
export function fitsWorkgroup(c: Pick<Caps, 'maxInvocations' | 'maxWorkgroupSize'>, x: number, y = 1, z = 1): boolean {
  const [mx, my, mz] = c.maxWorkgroupSize;
  return x * y * z <= c.maxInvocations && x <= mx && y <= my && z <= mz;
}

/** The largest of `sizes` (tried in order, largest first) that fits, or the smallest given. */
export function largestWorkgroup(c: Pick<Caps, 'maxInvocations' | 'maxWorkgroupSize'>, sizes: readonly number[]): number {
  for (const s of sizes) if (fitsWorkgroup(c, s)) return s;
  return sizes[sizes.length - 1];
}

/**
 * Whether a tile whose rows are `rowThreads` consecutive invocations may declare a row
 * subgroup-uniform: only when no subgroup can span two rows, i.e. every possible subgroup width
 * (min..max) divides the row. Without subgroups (or unknown bounds) it may not.
 */
export function subgroupRowsFit(c: Pick<Caps, 'subgroups' | 'subgroupMinSize' | 'subgroupMaxSize'>, rowThreads: number): boolean {
  if (!c.subgroups || c.subgroupMaxSize <= 0) return false;
  const min = Math.max(1, c.subgroupMinSize || c.subgroupMaxSize);
  for (let s = min; s <= c.subgroupMaxSize; s *= 2) if (s > rowThreads || rowThreads % s !== 0) return false;
  return true;
}

/** One line for logs and plan printing. */
export function describeCaps(c: Caps): string {
  const sg = c.subgroups ? `${c.subgroupMinSize}-${c.subgroupMaxSize}` : 'none';
  return `${c.software ? 'software' : 'hardware'} | subgroups ${sg} | invocations ${c.maxInvocations} (${c.maxWorkgroupSize.join('x')}) | workgroup ${c.maxWorkgroupStorage / 1024} KiB | storage binding ${Math.round(c.maxStorageBinding / (1 << 20))} MiB${c.f16 ? ' | f16' : ''}${c.simd8 ? ' | simd8' : ''}`;
}

// ------------------------------------------------------------------ presets for plan tests

const common = {
  maxWorkgroupsPerDimension: 65535,
  maxBufferSize: 1 << 30,
  maxUniformBinding: 65536,
  f16: false,
  timestamps: false,
};

/** Adapters the plans are tested against (their caps as Dawn reports them). */
export const CAPS_PRESETS = {
  /** Mesa lavapipe on an AVX2 CPU (the CI machine). */
  lavapipe: withSimd8({
    ...common, software: true, subgroups: true, subgroupMinSize: 8, subgroupMaxSize: 8,
    maxInvocations: 1024, maxWorkgroupSize: [1024, 1024, 1024], maxWorkgroupStorage: 32768,
    maxStorageBinding: 2147483644, maxTextureDimension2D: 16384, maxTextureArrayLayers: 2048,
  }),
  /** SwiftShader as a browser offers it: 256 invocations, subgroups of 4 (or none). */
  swiftshader: withSimd8({
    ...common, software: true, subgroups: true, subgroupMinSize: 4, subgroupMaxSize: 4,
    maxInvocations: 256, maxWorkgroupSize: [256, 256, 64], maxWorkgroupStorage: 16384,
    maxStorageBinding: 134217728, maxTextureDimension2D: 8192, maxTextureArrayLayers: 256,
  }),
  /** A software adapter without subgroups and with WebGPU's default limits only. */
  minimal: withSimd8({
    ...common, software: true, subgroups: false, subgroupMinSize: 0, subgroupMaxSize: 0,
    maxInvocations: 256, maxWorkgroupSize: [256, 256, 64], maxWorkgroupStorage: 16384,
    maxStorageBinding: 134217728, maxTextureDimension2D: 8192, maxTextureArrayLayers: 256,
  }),
  /** An NVIDIA H100 under Dawn/Vulkan. */
  h100: withSimd8({
    ...common, software: false, subgroups: true, subgroupMinSize: 32, subgroupMaxSize: 32,
    maxInvocations: 1024, maxWorkgroupSize: [1024, 1024, 64], maxWorkgroupStorage: 49152,
    maxStorageBinding: 2147483644, maxTextureDimension2D: 32768, maxTextureArrayLayers: 2048, f16: true, timestamps: true,
  }),
} as const satisfies Record<string, Caps>;

/** Caps with some capabilities taken away (never added: a kernel must not assume what the
 * adapter lacks). Used by tests to run the portable kernels on lavapipe. */
export function restrictCaps(c: Caps, r: { subgroups?: false; simd8?: false; maxInvocations?: number }): Caps {
  const subgroups = r.subgroups === false ? false : c.subgroups;
  const base = {
    ...c,
    subgroups,
    subgroupMinSize: subgroups ? c.subgroupMinSize : 0,
    subgroupMaxSize: subgroups ? c.subgroupMaxSize : 0,
    maxInvocations: Math.min(c.maxInvocations, r.maxInvocations ?? Infinity),
  };
  const out = withSimd8(base);
  return r.simd8 === false ? Object.freeze({ ...out, simd8: false }) : out;
}
