{{SUBGROUPS}}
// Matrix multiply family: C[z] = act(A[z] @ B[z] + bias), fp32 in and out.
//
// A is logically [M, K], B is [K, N], C is a fresh contiguous [splits, batch, M, N]. A and B are
// read through (offset, leading dimension, per-batch strides): TRANS_A means A is stored [K, M]
// (its last two strides swapped, i.e. a transposed view), TRANS_B means B is stored [N, K]. So a
// transposed operand costs no copy. Batch: workgroup_id.z = split * batch + b; b is split into up
// to four batch dimensions (bshape, innermost last) so broadcast batches (stride 0) cost no copy.
//
// Variants (llm.c's dev/cuda progression; bench/matmul.ts times all of them; the names before
// 2026-12 were v1..v7 in this order, as bench/NOTES.md's older sections call them):
//   naive    one thread per output, K loop straight from global memory.
//   tiled    16x16 tiles staged in workgroup memory, one output per thread.
//   reg4x4   64x64x16 tiles, 256 threads, each a 4x4 micro-tile held in registers. The
//            micro-tile is strided by 16 (rows ty+16i, cols tx+16j): neighbouring threads read
//            neighbouring workgroup-memory words and write neighbouring columns of C.
//   reg8x8   128x128x16 tiles, 256 threads, 8x8 micro-tiles, vec4 global loads along the
//            contiguous dimension (the host calls it only when that dimension, the leading
//            dimensions, offsets and batch strides are multiples of 4).
//   reg16x8  reg8x8's layout with 128 threads of up to 16x8 each (fewer per-lane reads per FMA),
//            tiles 32..128 x 64..128 (overrides REG16X8_Q, REG16X8_H) so narrow products waste less.
//   skinny   few rows (M <= 8 per row block): threads own output columns and split K, no tile
//            padding; matrix-vector products (see its section).
//   simd8    the software adapter's packed-operand product: kernels/simd8/matmul.wgsl.
// Split K: any variant takes a K range per z-slice (k_chunk); with splits > 1 the host runs it
// with BIAS = 0 and ACT = 0 into a workspace and `splitk_reduce` sums the slices and applies the
// epilogue. That keeps tall-skinny products with a huge K (weight gradients) from leaving most of
// the GPU idle.
//
// Subgroups: where the adapter has them the loader's template step fills the first line with
// `enable subgroups;` and SG_FIRST with subgroupBroadcastFirst (else both are empty: the file
// stays portable). reg8x8 and reg16x8 use it to tell the compiler that a thread's row group is
// the same across its subgroup (SG_ROWS, set when subgroups hold at most 16 consecutive threads):
// a software adapter then loads the A fragment once per subgroup instead of once per lane.
//
// Epilogue (overrides, folded by the compiler): BIAS 0 none, 1 per column (length N), 2 per row
// (length M); ACT an activation code of kernels/activation.wgsl (appended below), leaky relu's
// slope in alpha.
// include: activation

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  off_a: u32,
  off_b: u32,
  off_c: u32,
  off_bias: u32,
  lda: u32,
  ldb: u32,
  k_chunk: u32,
  splits: u32,
  alpha: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
  bshape: vec4<u32>,
  bst_a: vec4<u32>,
  bst_b: vec4<u32>,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
// The same bindings seen as vec4 (reg8x8, reg16x8, skinny; no entry point uses both views of a
// binding).
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;
// splitk_reduce: binding 2 (`a`) holds the partial sums, its bias sits at binding 3.
@group(0) @binding(3) var<storage, read> bias_r: array<f32>;

override TRANS_A: bool = false;
override SG_ROWS: bool = false;
override TRANS_B: bool = false;
override BIAS: u32 = 0u;
override ACT: u32 = 0u;

// ------------------------------------------------------------------------------ shared helpers

// Element offsets of batch entry bz in A and B.
fn batch_offsets(bz: u32) -> vec2<u32> {
  var rem = bz;
  var o = vec2<u32>(p.off_a, p.off_b);
  for (var d = 3; d >= 0; d--) {
    let s = p.bshape[d];
    let c = rem % s;
    rem = rem / s;
    o += c * vec2<u32>(p.bst_a[d], p.bst_b[d]);
  }
  return o;
}

// A[m, k] of the batch whose A starts at `base`, zero outside [0, M) x [0, k_end).
fn load_a(base: u32, m: u32, k: u32, k_end: u32) -> f32 {
  if (m >= p.M || k >= k_end) { return 0.0; }
  if (TRANS_A) { return a[base + k * p.lda + m]; }
  return a[base + m * p.lda + k];
}

// B[k, n], zero outside [0, k_end) x [0, N).
fn load_b(base: u32, k: u32, n: u32, k_end: u32) -> f32 {
  if (n >= p.N || k >= k_end) { return 0.0; }
  if (TRANS_B) { return b[base + n * p.ldb + k]; }
  return b[base + k * p.ldb + n];
}

fn activate(x: f32) -> f32 { return act_apply(ACT, x, p.alpha); }

fn bias_at(row: u32, col: u32) -> f32 {
  if (BIAS == 1u) { return bias[p.off_bias + col]; }
  if (BIAS == 2u) { return bias[p.off_bias + row]; }
  return 0.0;
}

// Writes C[z][row, col] (z = split * batch + b); the caller checks the bounds.
fn store(z: u32, row: u32, col: u32, v: f32) {
  out[p.off_c + (z * p.M + row) * p.N + col] = activate(v + bias_at(row, col));
}

// The K range of split s.
fn k_range(s: u32) -> vec2<u32> {
  let k0 = s * p.k_chunk;
  return vec2<u32>(k0, min(p.K, k0 + p.k_chunk));
}

// ------------------------------------------------------------------------------ naive

@compute @workgroup_size(16, 16)
fn naive(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let col = gid.x;
  let row = gid.y;
  let z = wg.z;
  if (row >= p.M || col >= p.N) { return; }
  let o = batch_offsets(z % p.batch);
  let kr = k_range(z / p.batch);
  var acc = 0.0;
  for (var k = kr.x; k < kr.y; k++) {
    acc = fma(load_a(o.x, row, k, kr.y), load_b(o.y, k, col, kr.y), acc);
  }
  store(z, row, col, acc);
}

// ------------------------------------------------------------------------------ tiled

var<workgroup> tiled_a: array<f32, 256>; // [m][k]
var<workgroup> tiled_b: array<f32, 256>; // [k][n]

@compute @workgroup_size(16, 16)
fn tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let row = wg.y * 16u + lid.y;
  let col = wg.x * 16u + lid.x;
  let z = wg.z;
  let o = batch_offsets(z % p.batch);
  let kr = k_range(z / p.batch);
  var acc = 0.0;
  for (var k0 = kr.x; k0 < kr.y; k0 += 16u) {
    tiled_a[lid.y * 16u + lid.x] = load_a(o.x, row, k0 + lid.x, kr.y);
    tiled_b[lid.y * 16u + lid.x] = load_b(o.y, k0 + lid.y, col, kr.y);
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      acc = fma(tiled_a[lid.y * 16u + kk], tiled_b[kk * 16u + lid.x], acc);
    }
    workgroupBarrier();
  }
  if (row < p.M && col < p.N) { store(z, row, col, acc); }
}

// ------------------------------------------------------------------------------ reg4x4: 64x64 tiles, 4x4 per thread

const REG4X4_BM = 64u;
const REG4X4_LDA = 65u; // padded: the A tile is written along k, a stride of 64 would hit one bank
var<workgroup> reg4x4_a: array<f32, 1040>; // [16 k][65]
var<workgroup> reg4x4_b: array<f32, 1024>; // [16 k][64 n]

@compute @workgroup_size(256)
fn reg4x4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let tx = li % 16u;
  let ty = li / 16u;
  let z = wg.z;
  let o = batch_offsets(z % p.batch);
  let kr = k_range(z / p.batch);
  let row0 = wg.y * REG4X4_BM;
  let col0 = wg.x * REG4X4_BM;
  var acc: array<vec4<f32>, 4>; // acc[i][j]: row ty + 16i, column tx + 16j
  for (var k0 = kr.x; k0 < kr.y; k0 += 16u) {
    for (var e = 0u; e < 4u; e++) {
      let idx = li + e * 256u;
      // Consecutive threads walk the stored-contiguous dimension of each operand.
      var m = idx / 16u;
      var k = idx % 16u;
      if (TRANS_A) { k = idx / 64u; m = idx % 64u; }
      reg4x4_a[k * REG4X4_LDA + m] = load_a(o.x, row0 + m, k0 + k, kr.y);
      var kb = idx / 64u;
      var n = idx % 64u;
      if (TRANS_B) { n = idx / 16u; kb = idx % 16u; }
      reg4x4_b[kb * 64u + n] = load_b(o.y, k0 + kb, col0 + n, kr.y);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let ab = kk * REG4X4_LDA + ty;
      let bb = kk * 64u + tx;
      let bv = vec4<f32>(reg4x4_b[bb], reg4x4_b[bb + 16u], reg4x4_b[bb + 32u], reg4x4_b[bb + 48u]);
      acc[0] = fma(vec4<f32>(reg4x4_a[ab]), bv, acc[0]);
      acc[1] = fma(vec4<f32>(reg4x4_a[ab + 16u]), bv, acc[1]);
      acc[2] = fma(vec4<f32>(reg4x4_a[ab + 32u]), bv, acc[2]);
      acc[3] = fma(vec4<f32>(reg4x4_a[ab + 48u]), bv, acc[3]);
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + ty + 16u * i;
    if (row >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + tx + 16u * j;
      if (col < p.N) { store(z, row, col, acc[i][j]); }
    }
  }
}

// ------------------------------------------------------------------------------ reg8x8: 128x128 tiles, 8x8 per thread

// Tiles as vec4 along m (A) and n (B): [16 k][32 vec4]. Thread (tx, ty) owns rows 4ty..4ty+3 and
// 64+4ty..64+4ty+3, columns likewise from tx: per k step it reads 4 vec4 and does 64 FMAs.
var<workgroup> tile_a4: array<vec4<f32>, 512>;
var<workgroup> tile_b4: array<vec4<f32>, 512>;

// ty, made subgroup-uniform when SG_ROWS (the identity without subgroups).
fn row_group(ty: u32) -> u32 {
  let first = {{SG_FIRST}}(ty);
  return select(ty, first, SG_ROWS);
}

// A vec4 of A's contiguous dimension starting at element `e` (e a multiple of 4), or zeros.
fn a4_at(e: u32, ok: bool) -> vec4<f32> {
  if (!ok) { return vec4<f32>(0.0); }
  return a4[e / 4u];
}

fn b4_at(e: u32, ok: bool) -> vec4<f32> {
  if (!ok) { return vec4<f32>(0.0); }
  return b4[e / 4u];
}

@compute @workgroup_size(256)
fn reg8x8(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let tx = li % 16u;
  let ty = li / 16u;
  let tyu = row_group(ty);
  let z = wg.z;
  let o = batch_offsets(z % p.batch);
  let kr = k_range(z / p.batch);
  let row0 = wg.y * 128u;
  let col0 = wg.x * 128u;
  var acc: array<vec4<f32>, 16>; // acc[2i + h]: row (i<4 ? 4ty+i : 64+4ty+i-4), columns h-th vec4
  for (var k0 = kr.x; k0 < kr.y; k0 += 16u) {
    for (var e = 0u; e < 2u; e++) {
      let idx = li + e * 256u;
      if (TRANS_A) {
        // stored [K, M]: 16 k rows of 32 vec4 along m, copied as they are
        let k = idx / 32u;
        let mq = idx % 32u;
        let m = row0 + mq * 4u;
        tile_a4[idx] = a4_at(o.x + (k0 + k) * p.lda + m, m < p.M && k0 + k < kr.y);
      } else {
        // stored [M, K]: 128 m rows of 4 vec4 along k, scattered into the k-major tile
        let m = idx / 4u;
        let kq = idx % 4u;
        let v = a4_at(o.x + (row0 + m) * p.lda + k0 + kq * 4u, row0 + m < p.M && k0 + kq * 4u < kr.y);
        let base = kq * 4u * 32u + m / 4u;
        let c = m % 4u;
        tile_a4[base][c] = v.x;
        tile_a4[base + 32u][c] = v.y;
        tile_a4[base + 64u][c] = v.z;
        tile_a4[base + 96u][c] = v.w;
      }
      if (TRANS_B) {
        // stored [N, K]: 128 n rows of 4 vec4 along k
        let n = idx / 4u;
        let kq = idx % 4u;
        let v = b4_at(o.y + (col0 + n) * p.ldb + k0 + kq * 4u, col0 + n < p.N && k0 + kq * 4u < kr.y);
        let base = kq * 4u * 32u + n / 4u;
        let c = n % 4u;
        tile_b4[base][c] = v.x;
        tile_b4[base + 32u][c] = v.y;
        tile_b4[base + 64u][c] = v.z;
        tile_b4[base + 96u][c] = v.w;
      } else {
        let k = idx / 32u;
        let nq = idx % 32u;
        let n = col0 + nq * 4u;
        tile_b4[idx] = b4_at(o.y + (k0 + k) * p.ldb + n, n < p.N && k0 + k < kr.y);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a0 = tile_a4[kk * 32u + tyu];
      let a1 = tile_a4[kk * 32u + 16u + tyu];
      let b0 = tile_b4[kk * 32u + tx];
      let b1 = tile_b4[kk * 32u + 16u + tx];
      let av = array<f32, 8>(a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
      for (var i = 0u; i < 8u; i++) {
        acc[2u * i] = fma(vec4<f32>(av[i]), b0, acc[2u * i]);
        acc[2u * i + 1u] = fma(vec4<f32>(av[i]), b1, acc[2u * i + 1u]);
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let row = row0 + select(4u * ty + i, 64u + 4u * ty + i - 4u, i >= 4u);
    if (row >= p.M) { continue; }
    for (var h = 0u; h < 2u; h++) {
      let v = acc[2u * i + h];
      let c0 = col0 + h * 64u + 4u * tx;
      for (var j = 0u; j < 4u; j++) {
        if (c0 + j < p.N) { store(z, row, c0 + j, v[j]); }
      }
    }
  }
}

// ------------------------------------------------------------------------------ reg16x8: up to 128x128, 16x8 per thread

// reg8x8's tile layout, 128 threads, each up to 16 rows x 8 columns: rows 32q + 4ty + i (q < REG16X8_Q,
// i < 4), columns 64h + 4tx + j (h < REG16X8_H). The tile is 32*REG16X8_Q x 64*REG16X8_H, so a product with 32
// or 64 rows or columns (the narrow WRN convolutions) does not pay for a 128-wide tile. Per k
// step a thread reads REG16X8_Q vec4 of A (once per subgroup when SG_ROWS) and REG16X8_H of B for
// 32 * REG16X8_Q * REG16X8_H FMAs: for a software adapter, where a per-lane read is a gather and a spilled
// accumulator a plain vector store, that is half reg8x8's gathers per FMA at 4 x 2.
override REG16X8_Q: u32 = 4u;
override REG16X8_H: u32 = 2u;

@compute @workgroup_size(128)
fn reg16x8(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let tx = li % 16u;
  let ty = li / 16u;
  let tyu = row_group(ty);
  let z = wg.z;
  let o = batch_offsets(z % p.batch);
  let kr = k_range(z / p.batch);
  let bm = 32u * REG16X8_Q;
  let bn = 64u * REG16X8_H;
  let row0 = wg.y * bm;
  let col0 = wg.x * bn;
  var acc: array<vec4<f32>, 32>; // acc[2(4q + i) + h]
  for (var k0 = kr.x; k0 < kr.y; k0 += 16u) {
    // A tile: bm rows x 16 k = 4 * bm vec4, REG16X8_Q per thread
    for (var e = 0u; e < REG16X8_Q; e++) {
      let idx = li + e * 128u;
      if (TRANS_A) {
        let k = idx / (8u * REG16X8_Q);
        let mq = idx % (8u * REG16X8_Q);
        let m = row0 + mq * 4u;
        tile_a4[k * 32u + mq] = a4_at(o.x + (k0 + k) * p.lda + m, m < p.M && k0 + k < kr.y);
      } else {
        let m = idx / 4u;
        let kq = idx % 4u;
        let v = a4_at(o.x + (row0 + m) * p.lda + k0 + kq * 4u, row0 + m < p.M && k0 + kq * 4u < kr.y);
        let base = kq * 4u * 32u + m / 4u;
        let c = m % 4u;
        tile_a4[base][c] = v.x;
        tile_a4[base + 32u][c] = v.y;
        tile_a4[base + 64u][c] = v.z;
        tile_a4[base + 96u][c] = v.w;
      }
    }
    // B tile: 16 k x bn columns = 4 * bn vec4, 2 * REG16X8_H per thread
    for (var e = 0u; e < 2u * REG16X8_H; e++) {
      let idx = li + e * 128u;
      if (TRANS_B) {
        let n = idx / 4u;
        let kq = idx % 4u;
        let v = b4_at(o.y + (col0 + n) * p.ldb + k0 + kq * 4u, col0 + n < p.N && k0 + kq * 4u < kr.y);
        let base = kq * 4u * 32u + n / 4u;
        let c = n % 4u;
        tile_b4[base][c] = v.x;
        tile_b4[base + 32u][c] = v.y;
        tile_b4[base + 64u][c] = v.z;
        tile_b4[base + 96u][c] = v.w;
      } else {
        let k = idx / (16u * REG16X8_H);
        let nq = idx % (16u * REG16X8_H);
        let n = col0 + nq * 4u;
        tile_b4[k * 32u + nq] = b4_at(o.y + (k0 + k) * p.ldb + n, n < p.N && k0 + k < kr.y);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let b0 = tile_b4[kk * 32u + tx];
      var b1 = vec4<f32>(0.0);
      if (REG16X8_H == 2u) { b1 = tile_b4[kk * 32u + 16u + tx]; }
      for (var q = 0u; q < REG16X8_Q; q++) {
        let av = tile_a4[kk * 32u + q * 8u + tyu];
        for (var i = 0u; i < 4u; i++) {
          let r = 2u * (4u * q + i);
          acc[r] = fma(vec4<f32>(av[i]), b0, acc[r]);
          if (REG16X8_H == 2u) { acc[r + 1u] = fma(vec4<f32>(av[i]), b1, acc[r + 1u]); }
        }
      }
    }
    workgroupBarrier();
  }
  for (var q = 0u; q < REG16X8_Q; q++) {
    for (var i = 0u; i < 4u; i++) {
      let row = row0 + 32u * q + 4u * ty + i;
      if (row >= p.M) { continue; }
      for (var h = 0u; h < REG16X8_H; h++) {
        let v = acc[2u * (4u * q + i) + h];
        let c0 = col0 + h * 64u + 4u * tx;
        for (var j = 0u; j < 4u; j++) {
          if (c0 + j < p.N) { store(z, row, c0 + j, v[j]); }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------ skinny (M <= 8)

// Matrix-vector and few-row products (a sampling decoder, x [1, 200] @ W[33278, 200]ᵀ), where
// every tiled variant computes 32+ rows of padding. 64 threads; a workgroup covers SKINNY_ROWS rows
// (row block wg.y) and a strip of columns. SKINNY_LANES threads share one output column and split its
// K range; they reduce through workgroup memory (one barrier, lane 0 sums). With SKINNY_LANES = 1
// (the software-adapter choice) there is no barrier and every thread of a workgroup reads the
// same A element (one broadcast load on a SIMD CPU). Layouts:
//   TRANS_B (B stored [N, K], a Linear weight): one column per slot; its lanes are adjacent
//            threads reading adjacent k (vec4 when SKINNY_VEC4: coalesced on a GPU).
//   else    (B stored [K, N]): 4 adjacent columns per slot (a vec4 along N when SKINNY_VEC4), adjacent
//            slots on adjacent threads (coalesced), lanes split K.
// SKINNY_VEC4: B's contiguous dimension, leading dimension, offset and batch strides are multiples
// of 4 (set by the host). A (M x K, small, shared by all columns) is read as vec4 rows when SKINNY_AVEC4.
override SKINNY_LANES: u32 = 1u;
override SKINNY_ROWS: u32 = 8u;
override SKINNY_VEC4: bool = false;
// A's rows are vec4-aligned along K (A stored [M, K], K, lda, offset and batch strides multiples of 4).
override SKINNY_AVEC4: bool = false;

var<workgroup> skinny_red: array<vec4<f32>, 512>; // [thread][row] partial sums

// Operand elements through the vec4 views (an entry point cannot use both views of a binding;
// pool buffers are whole multiples of 16 bytes, so every element has its vec4).
fn b_el(e: u32) -> f32 {
  return b4[e / 4u][e % 4u];
}

fn a_el(base: u32, m: u32, k: u32) -> f32 {
  var e = base + m * p.lda + k;
  if (TRANS_A) { e = base + k * p.lda + m; }
  return a4[e / 4u][e % 4u];
}

// A[m, k..k+3] (k a multiple of 4, all four below K).
fn a_quad(base: u32, m: u32, k: u32) -> vec4<f32> {
  if (SKINNY_AVEC4) { return a4[(base + m * p.lda + k) / 4u]; }
  return vec4<f32>(a_el(base, m, k), a_el(base, m, k + 1u), a_el(base, m, k + 2u), a_el(base, m, k + 3u));
}

// The row loop is written out (acc0..acc7, dead rows removed by the SKINNY_ROWS override): a loop
// over an accumulator array was not unrolled on llvmpipe, and M = 2 ran 3x slower than M = 1.
// Rows past M in the last block read row M - 1 (valid memory) and are not stored.
@compute @workgroup_size(64)
fn skinny(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let slots = 64u / SKINNY_LANES;
  var lane = li / slots;
  var slot = li % slots;
  if (TRANS_B) {
    lane = li % SKINNY_LANES;
    slot = li / SKINNY_LANES;
  }
  let z = wg.z;
  let o = batch_offsets(z % p.batch);
  let kr = k_range(z / p.batch);
  let row0 = wg.y * SKINNY_ROWS;
  let nrows = min(SKINNY_ROWS, p.M - row0);
  let ml = p.M - 1u;
  let m1 = min(row0 + 1u, ml);
  let m2 = min(row0 + 2u, ml);
  let m3 = min(row0 + 3u, ml);
  let m4 = min(row0 + 4u, ml);
  let m5 = min(row0 + 5u, ml);
  let m6 = min(row0 + 6u, ml);
  let m7 = min(row0 + 7u, ml);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  if (TRANS_B) {
    let n = wg.x * slots + slot;
    if (n < p.N) {
      let bb = o.y + n * p.ldb;
      if (SKINNY_VEC4) {
        for (var k = kr.x + 4u * lane; k < kr.y; k += 4u * SKINNY_LANES) {
          let bv = b4[(bb + k) / 4u];
          acc0 = fma(a_quad(o.x, row0, k), bv, acc0);
          if (SKINNY_ROWS > 1u) { acc1 = fma(a_quad(o.x, m1, k), bv, acc1); }
          if (SKINNY_ROWS > 2u) { acc2 = fma(a_quad(o.x, m2, k), bv, acc2); }
          if (SKINNY_ROWS > 3u) { acc3 = fma(a_quad(o.x, m3, k), bv, acc3); }
          if (SKINNY_ROWS > 4u) { acc4 = fma(a_quad(o.x, m4, k), bv, acc4); }
          if (SKINNY_ROWS > 5u) { acc5 = fma(a_quad(o.x, m5, k), bv, acc5); }
          if (SKINNY_ROWS > 6u) { acc6 = fma(a_quad(o.x, m6, k), bv, acc6); }
          if (SKINNY_ROWS > 7u) { acc7 = fma(a_quad(o.x, m7, k), bv, acc7); }
        }
      } else {
        for (var k = kr.x + lane; k < kr.y; k += SKINNY_LANES) {
          let bv = vec4<f32>(b_el(bb + k), 0.0, 0.0, 0.0);
          acc0 = fma(vec4<f32>(a_el(o.x, row0, k)), bv, acc0);
          if (SKINNY_ROWS > 1u) { acc1 = fma(vec4<f32>(a_el(o.x, m1, k)), bv, acc1); }
          if (SKINNY_ROWS > 2u) { acc2 = fma(vec4<f32>(a_el(o.x, m2, k)), bv, acc2); }
          if (SKINNY_ROWS > 3u) { acc3 = fma(vec4<f32>(a_el(o.x, m3, k)), bv, acc3); }
          if (SKINNY_ROWS > 4u) { acc4 = fma(vec4<f32>(a_el(o.x, m4, k)), bv, acc4); }
          if (SKINNY_ROWS > 5u) { acc5 = fma(vec4<f32>(a_el(o.x, m5, k)), bv, acc5); }
          if (SKINNY_ROWS > 6u) { acc6 = fma(vec4<f32>(a_el(o.x, m6, k)), bv, acc6); }
          if (SKINNY_ROWS > 7u) { acc7 = fma(vec4<f32>(a_el(o.x, m7, k)), bv, acc7); }
        }
      }
    }
  } else {
    let n = (wg.x * slots + slot) * 4u;
    if (n < p.N) {
      for (var k = kr.x + lane; k < kr.y; k += SKINNY_LANES) {
        let e = o.y + k * p.ldb + n;
        var bv = vec4<f32>(0.0);
        if (SKINNY_VEC4) {
          bv = b4[e / 4u];
        } else {
          bv.x = b_el(e);
          if (n + 1u < p.N) { bv.y = b_el(e + 1u); }
          if (n + 2u < p.N) { bv.z = b_el(e + 2u); }
          if (n + 3u < p.N) { bv.w = b_el(e + 3u); }
        }
        acc0 = fma(vec4<f32>(a_el(o.x, row0, k)), bv, acc0);
        if (SKINNY_ROWS > 1u) { acc1 = fma(vec4<f32>(a_el(o.x, m1, k)), bv, acc1); }
        if (SKINNY_ROWS > 2u) { acc2 = fma(vec4<f32>(a_el(o.x, m2, k)), bv, acc2); }
        if (SKINNY_ROWS > 3u) { acc3 = fma(vec4<f32>(a_el(o.x, m3, k)), bv, acc3); }
        if (SKINNY_ROWS > 4u) { acc4 = fma(vec4<f32>(a_el(o.x, m4, k)), bv, acc4); }
        if (SKINNY_ROWS > 5u) { acc5 = fma(vec4<f32>(a_el(o.x, m5, k)), bv, acc5); }
        if (SKINNY_ROWS > 6u) { acc6 = fma(vec4<f32>(a_el(o.x, m6, k)), bv, acc6); }
        if (SKINNY_ROWS > 7u) { acc7 = fma(vec4<f32>(a_el(o.x, m7, k)), bv, acc7); }
      }
    }
  }
  var acc = array<vec4<f32>, 8>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
  if (SKINNY_LANES > 1u) {
    for (var r = 0u; r < SKINNY_ROWS; r++) { skinny_red[li * 8u + r] = acc[r]; }
    workgroupBarrier();
    if (lane != 0u) { return; }
    for (var l = 1u; l < SKINNY_LANES; l++) {
      var t = l * slots + slot;
      if (TRANS_B) { t = slot * SKINNY_LANES + l; }
      for (var r = 0u; r < SKINNY_ROWS; r++) { acc[r] += skinny_red[t * 8u + r]; }
    }
  }
  if (TRANS_B) {
    let n = wg.x * slots + slot;
    if (n >= p.N) { return; }
    for (var r = 0u; r < SKINNY_ROWS; r++) {
      if (r < nrows) { store(z, row0 + r, n, (acc[r].x + acc[r].y) + (acc[r].z + acc[r].w)); }
    }
  } else {
    let n = (wg.x * slots + slot) * 4u;
    for (var r = 0u; r < SKINNY_ROWS; r++) {
      if (r >= nrows) { continue; }
      for (var j = 0u; j < 4u; j++) {
        if (n + j < p.N) { store(z, row0 + r, n + j, acc[r][j]); }
      }
    }
  }
}

// ------------------------------------------------------------------------------ split-K reduce

// out[i] = epilogue(sum over splits of a[s * batch*M*N + i]) for i < batch*M*N (contiguous C).
@compute @workgroup_size(256)
fn splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let total = p.batch * p.M * p.N;
  if (i >= total) { return; }
  var s = 0.0;
  for (var j = 0u; j < p.splits; j++) { s += a[j * total + i]; }
  let col = i % p.N;
  let row = (i / p.N) % p.M;
  var bv = 0.0;
  if (BIAS == 1u) { bv = bias_r[p.off_bias + col]; }
  if (BIAS == 2u) { bv = bias_r[p.off_bias + row]; }
  out[p.off_c + i] = activate(s + bv);
}

// ------------------------------------------------------------------------------ activation pass
// When autograd needs the pre-activation z, the product runs with ACT = 0 and these apply the
// activation (out = act(a)) and its backward (out = a * act'(b), a the incoming gradient, b = z)
// over p.M contiguous elements.

@compute @workgroup_size(256)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.M) { return; }
  out[i] = activate(a[i]);
}

@compute @workgroup_size(256)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.M) { return; }
  out[i] = a[i] * act_deriv(ACT, b[i], p.alpha);
}
