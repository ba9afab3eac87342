/**
 * The engine's tuning knobs, in one place and outside the public API: benchmarks (bench/) flip
 * them to measure a kernel against its alternatives, tests shrink budgets to cover more groups.
 * Training code never touches them; each default is the measured winner (bench/NOTES.md).
 * Import from here directly ('src/engine/tuning.ts').
 */

/** Floats in one uniform window: WebGPU's 64 KiB uniform binding limit. */
const WINDOW_FLOATS = 16384;

/**
 * Whether the GEMM kernels may use subgroups, and the subgroup size bound. Exposed so the benchmark
 * can compare with them off (`convSubgroups.enabled = false`).
 */
export const convSubgroups = { enabled: true };

/**
 * GEMM tile configuration: TX threads along columns (BN = 4*TX), up to TY_MAX along rows
 * (BM = 4*TY), BK reduction steps per tile. Exposed for the benchmark's tuning sweeps.
 */
export const convTiles = { tx: 16, tyMax: 16, bk: 16 };

/** Off pins the direct input gradient without uniform weights (the benchmark's `--baseline`). */
export const convDirectUniform = { enabled: true };

/** `enabled`: off keeps the other weight-gradient kernels (the benchmark's `--baseline`);
 * `windowFloats`: floats of packed narrow operand per group (at most 16384, one uniform window;
 * tests shrink it to cover several groups); `broadcast`: off keeps the kernel's plain loop where
 * the subgroup-broadcast one applies, `taps3` off its per-tap columns where the 3-tap ones apply
 * (tests run each). */
export const convNarrow = { enabled: true, windowFloats: WINDOW_FLOATS, broadcast: true, taps3: true };

/** `enabled`: off pins conv.ts's own kernels (the benchmark's `--baseline` rows);
 * `textureBudget`: bytes of panel texture a pass may hold at once (more images: more groups;
 * tests shrink it to cover several groups); `packRows`: texel rows per simd_pack_t workgroup
 * (the window path rounds it to whole tap rows; exposed for tuning sweeps). */
export const convSimd8 = { enabled: true, textureBudget: 64 * 2 ** 20, packRows: 16 };

/** `dgrad`: off keeps the simd8 product for the input gradients dgradDirectPicked would take; `narrowForward`
 * off for the forwards (and input gradients) the narrow kernel would take (tests cover both). */
export const convDirect8 = { dgrad: true, narrowForward: true };
