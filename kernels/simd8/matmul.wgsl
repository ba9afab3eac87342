{{SUBGROUPS}}
// include: index
// include: activation
// Matmul's product for a software adapter with subgroups of 8 (caps.simd8: lavapipe, where
// llvmpipe runs a workgroup of 8 invocations as one 8-lane AVX2 vector); the plan picks it as
// kind `simd8`. Measured there (bench/NOTES.md, "v7", simd8's old name): inside any loop llvmpipe
// loads storage and workgroup memory one lane at a time, each with its own bounds check and
// branch, even where the address is the same for all lanes; a uniform buffer is read without branches, and a texel fetch is one call that
// gathers all 8 lanes. So one operand (U, the one with fewer rows) is packed into 64 KiB windows
// read as a uniform buffer, the other (T) into a texture of 32-column panels, and a workgroup of
// 8 threads computes 16 rows of U times one panel: each thread owns 4 columns, every texel it
// fetches feeds 16 rows. C = U @ T, or C = (U @ T)^T when swapped (U = B^T, T = A^T).
//
// The host (src/engine/simd8/matmul.ts) packs both operands (pack_u, pack_t), then runs
// product_windows: one dispatch binds up to 11 windows (WebGPU guarantees 12 uniform buffers per
// stage; the parameter block takes one) and covers n_c chunks of K for each of up to 11 / n_c
// units (a unit: one batch entry's window of U rows). A dispatch that does not start at chunk 0
// adds to C, the one that ends at the last chunk applies the bias and activation. `product`
// binds one window (unit0, chunk0, n_c = 1): where fewer uniform buffers are allowed.

struct SimdParams {
  rows: u32,        // U rows (M, or N when swapped)
  cols: u32,        // T columns (N, or M when swapped)
  K: u32,
  kc: u32,          // K per chunk (multiple of 4); a U window holds win_rows x kc
  win_rows: u32,    // rows per window (multiple of 16)
  n_chunks: u32,
  kh: u32,          // texture rows per layer (a multiple of kc)
  n_kt: u32,        // layers per panel (K split over layers when it exceeds the texture height)
  panels: u32,
  off_src: u32,     // packing: source offset; product: offset of C
  st_row: u32,      // packing: stride of a U row / T column in the source
  st_k: u32,        // packing: stride along K in the source
  // product: the first unit (batch entry x windows + window of U rows) and chunk of this dispatch
  unit0: u32,
  _q1: u32,
  chunk0: u32,
  off_bias: u32,
  bshape: vec4<u32>,
  bst: vec4<u32>,
  alpha: f32,
  swap: u32,        // C = (U @ T)^T: U = B^T, T = A^T
  n_c: u32,         // product: chunks per unit in this dispatch (window binding = wg.z * n_c + c)
  _q4: u32,
  col_split: u32,   // > 0: columns are (image, position) pairs, C is [cols / P, rows, P]
  _q5: u32,
  tile_elems: u32,  // 512 (16 x 32), passed at run time so the epilogue loop stays a loop
  _q2: u32,
};

// The epilogue (overrides, folded by the compiler): BIAS 0 none, 1 per column, 2 per row; ACT an
// activation code of kernels/activation.wgsl, leaky relu's slope in q.alpha.
override BIAS: u32 = 0u;
override ACT: u32 = 0u;

var<workgroup> tile: array<vec4<f32>, 128>; // the product's 16 rows x 8 lanes x 4 columns
// product's output: C seen as vec4s (its interior tiles store whole vec4s; elsewhere single
// components). The host binds the whole buffer, a multiple of 16 bytes.
@group(0) @binding(1) var<storage, read_write> vout: array<vec4<f32>>;

@group(0) @binding(0) var<uniform> q: SimdParams;
@group(0) @binding(1) var<storage, read_write> upacked: array<vec4<f32>>;
@group(0) @binding(1) var tpacked: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(3) var tpanels: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
// U's windows (64 KiB of packed rows each): binding 2, then 5.. for product_windows' others
alias Window = array<vec4<f32>, 4096>;
@group(0) @binding(2) var<uniform> uwin0: Window;
@group(0) @binding(5) var<uniform> uwin1: Window;
@group(0) @binding(6) var<uniform> uwin2: Window;
@group(0) @binding(7) var<uniform> uwin3: Window;
@group(0) @binding(8) var<uniform> uwin4: Window;
@group(0) @binding(9) var<uniform> uwin5: Window;
@group(0) @binding(10) var<uniform> uwin6: Window;
@group(0) @binding(11) var<uniform> uwin7: Window;
@group(0) @binding(12) var<uniform> uwin8: Window;
@group(0) @binding(13) var<uniform> uwin9: Window;
@group(0) @binding(14) var<uniform> uwin10: Window;

// The SG_BCAST placeholder is subgroupBroadcast where the adapter has subgroups. Without them the host never
// runs this file (it needs the 8-lane subgroup), and this stand-in only keeps the module compiling.
fn sg_unavailable(v: vec4<f32>, lane: u32) -> vec4<f32> { return v; }

// Offset of batch entry z in the source operand being packed.
fn batch_offset(z: u32) -> u32 {
  var rem = z;
  var o = q.off_src;
  for (var d = 3; d >= 0; d--) {
    let s = q.bshape[d];
    o += (rem % s) * q.bst[d];
    rem = rem / s;
  }
  return o;
}

fn src_at(base: u32, row: u32, k: u32) -> f32 {
  if (row >= q.rows || k >= q.K) { return 0.0; }
  return src[base + row * q.st_row + k * q.st_k];
}

// upacked[window][r][k4]: windows ordered (z, row window, chunk); zero beyond rows and K. One
// thread per packed row walks its kc / 4 vec4s: the index arithmetic (integer divisions, which
// a CPU adapter runs lane by lane) is paid once per row, not once per element.
@compute @workgroup_size(64)
fn pack_u(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let kc4 = q.kc / 4u;
  let n_win = (q.rows + q.win_rows - 1u) / q.win_rows;
  let total = q.n_chunks * n_win * q.win_rows * q.bshape.x * q.bshape.y * q.bshape.z * q.bshape.w;
  if (i >= total) { return; }
  let w = i / q.win_rows;
  let chunk = w % q.n_chunks;
  let rw = (w / q.n_chunks) % n_win;
  let z = w / (q.n_chunks * n_win);
  let row = rw * q.win_rows + i % q.win_rows;
  let base = batch_offset(z);
  for (var k4 = 0u; k4 < kc4; k4++) {
    let k = chunk * q.kc + k4 * 4u;
    upacked[i * kc4 + k4] = vec4<f32>(src_at(base, row, k), src_at(base, row, k + 1u), src_at(base, row, k + 2u), src_at(base, row, k + 3u));
  }
}

// Texel (x, y, layer) of the panel texture: layer = (z * panels + panel) * n_kt + kt holds
// T[k = kt * kh + y][panel * 32 + 4x .. + 3]; zero beyond the columns and K. A thread writes
// PACK_ROWS texels down one texture column (index arithmetic once per thread).
const PACK_ROWS = 16u;

@compute @workgroup_size(8, 8)
fn pack_t(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = gid.x;
  let layer = gid.z;
  let kt = layer % q.n_kt;
  let panel = (layer / q.n_kt) % q.panels;
  let z = layer / (q.n_kt * q.panels);
  let c = panel * 32u + x * 4u;
  let base = batch_offset(z);
  let y0 = gid.y * PACK_ROWS;
  let y1 = min(q.kh, y0 + PACK_ROWS);
  for (var y = y0; y < y1; y++) {
    let k = kt * q.kh + y;
    let v = vec4<f32>(src_at(base, c, k), src_at(base, c + 1u, k), src_at(base, c + 2u, k), src_at(base, c + 3u, k));
    textureStore(tpacked, vec2<u32>(x, y), layer, v);
  }
}

// A product workgroup (panel, 16-row block, unit - unit0) computes the tile at rows u0.. of batch
// entry z. The grid has the blocks of a whole window: in a last window short of rows the blocks
// past them return at once.
struct TileAt {
  z: u32,     // batch entry
  u0: u32,    // first U row of the tile
  r0: u32,    // its first vec4 in the window
};

fn tile_at(wg: vec3<u32>) -> TileAt {
  let n_win = (q.rows + q.win_rows - 1u) / q.win_rows;
  let unit = q.unit0 + wg.z;
  return TileAt(unit / n_win, (unit % n_win) * q.win_rows + wg.y * 16u, wg.y * 16u * (q.kc / 4u));
}

// Texture layer and first texel row of chunk `chunk` of panel `panel` of batch entry z.
fn chunk_layer(z: u32, panel: u32, chunk: u32) -> vec2<u32> {
  let k0 = chunk * q.kc;
  return vec2<u32>((z * q.panels + panel) * q.n_kt + k0 / q.kh, k0 % q.kh);
}

// The hot loop: 16 rows of window u (from vec4 r0) times one panel, over one chunk of K, added to
// acc. Called with a uniform binding itself (&uwin0..): the compiler makes one copy of the loop
// per window, each reading its uniform directly (WGSL cannot index an array of bindings).
fn add_chunk(u: ptr<uniform, Window>, acc: ptr<function, array<vec4<f32>, 16>>, lane: u32, r0: u32, at: vec2<u32>) {
  let kc4 = q.kc / 4u;
  for (var k4 = 0u; k4 < kc4; k4++) {
    let y = at.y + k4 * 4u;
    let t0 = textureLoad(tpanels, vec2<u32>(lane, y), at.x, 0);
    let t1 = textureLoad(tpanels, vec2<u32>(lane, y + 1u), at.x, 0);
    let t2 = textureLoad(tpanels, vec2<u32>(lane, y + 2u), at.x, 0);
    let t3 = textureLoad(tpanels, vec2<u32>(lane, y + 3u), at.x, 0);
    // Lane l fetches rows l and l + 8 (one gather each), then each row is broadcast to all
    // lanes: 2 gathers per 16 rows instead of 16 (uniform-buffer reads in a loop are gathers).
    let u0 = (*u)[r0 + lane * kc4 + k4];
    let u1 = (*u)[r0 + (lane + 8u) * kc4 + k4];
    { let u = {{SG_BCAST}}(u0, 0u); (*acc)[0] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u0, 1u); (*acc)[1] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u0, 2u); (*acc)[2] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u0, 3u); (*acc)[3] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u0, 4u); (*acc)[4] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u0, 5u); (*acc)[5] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u0, 6u); (*acc)[6] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u0, 7u); (*acc)[7] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 0u); (*acc)[8] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 1u); (*acc)[9] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 2u); (*acc)[10] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 3u); (*acc)[11] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 4u); (*acc)[12] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 5u); (*acc)[13] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 6u); (*acc)[14] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
    { let u = {{SG_BCAST}}(u1, 7u); (*acc)[15] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  }
}

@compute @workgroup_size(8)
fn product_windows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let t = tile_at(wg);
  if (t.u0 >= q.rows) { return; }
  var acc: array<vec4<f32>, 16>;
  for (var c = 0u; c < q.n_c; c++) {
    let at = chunk_layer(t.z, wg.x, q.chunk0 + c);
    // once per chunk per workgroup; each case its own copy of the loop. One dispatch of 11
    // windows instead of 11: the same or 2-33% faster on lavapipe, 9x fewer dispatches
    // (bench/NOTES.md, "SIMD-8 product: several uniform windows per dispatch").
    switch (wg.z * q.n_c + c) {
      case 0u: { add_chunk(&uwin0, &acc, lane, t.r0, at); }
      case 1u: { add_chunk(&uwin1, &acc, lane, t.r0, at); }
      case 2u: { add_chunk(&uwin2, &acc, lane, t.r0, at); }
      case 3u: { add_chunk(&uwin3, &acc, lane, t.r0, at); }
      case 4u: { add_chunk(&uwin4, &acc, lane, t.r0, at); }
      case 5u: { add_chunk(&uwin5, &acc, lane, t.r0, at); }
      case 6u: { add_chunk(&uwin6, &acc, lane, t.r0, at); }
      case 7u: { add_chunk(&uwin7, &acc, lane, t.r0, at); }
      case 8u: { add_chunk(&uwin8, &acc, lane, t.r0, at); }
      case 9u: { add_chunk(&uwin9, &acc, lane, t.r0, at); }
      case 10u: { add_chunk(&uwin10, &acc, lane, t.r0, at); }
      default: {}
    }
  }
  store_tile(acc, wg.x, lane, t.z, t.u0);
}

@compute @workgroup_size(8)
fn product(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let t = tile_at(wg);
  if (t.u0 >= q.rows) { return; }
  var acc: array<vec4<f32>, 16>;
  add_chunk(&uwin0, &acc, lane, t.r0, chunk_layer(t.z, wg.x, q.chunk0));
  store_tile(acc, wg.x, lane, t.z, t.u0);
}

// C's tile (rows u0.., the 32 columns of panel `panel`) of batch entry z: stored, or added to C
// when this dispatch does not start at chunk 0; bias and activation where it ends at the last.
fn store_tile(acc: array<vec4<f32>, 16>, panel: u32, lane: u32, z: u32, u0: u32) {
  // C is [M, N] per batch entry: rows x cols, or cols x rows when swapped.
  let swap = q.swap != 0u;
  let c_cols = select(q.cols, q.rows, swap);
  let cbase = q.off_src + z * q.rows * q.cols;
  let first = q.chunk0 == 0u;
  let last = q.chunk0 + q.n_c == q.n_chunks;
  let P = q.col_split;
  // Interior tiles whose rows of 4 columns are whole, aligned vec4s of C (not swapped; NCHW
  // outputs with P % 4 == 0): each lane stores its 16 vec4s directly, one vec4 store each (a
  // CPU adapter stores lane by lane, so 4 scalars cost 4x). Uniform across the workgroup.
  let whole = !swap && cbase % 4u == 0u && u0 + 16u <= q.rows && panel * 32u + 32u <= q.cols &&
    select(c_cols % 4u == 0u, P % 4u == 0u, P > 0u);
  if (whole) {
    let t = panel * 32u + lane * 4u;
    var at = cbase + t;
    if (P > 0u) {
      let img = div_u32(t, P);
      at = cbase + img * q.rows * P + (t - img * P);
    }
    let stride = select(c_cols, P, P > 0u);
    for (var r = 0u; r < 16u; r++) {
      let i4 = (at + (u0 + r) * stride) / 4u;
      var v = acc[r];
      if (!first) { v += vout[i4]; }
      if (last) { v = epilogue4(v, u0 + r, t); }
      vout[i4] = v;
    }
    return;
  }
  // Elsewhere the tile goes through workgroup memory and a loop the compiler does not unroll:
  // written out for 16 x 4 scalar outputs per lane it was ~300 KiB of machine code (bias,
  // activation and a lane-by-lane store per element), and with a short K every workgroup streamed
  // it through the instruction cache (a K = 32 product spent most of its time there).
  for (var r = 0u; r < 16u; r++) { tile[r * 8u + lane] = acc[r]; }
  workgroupBarrier();
  for (var e = lane; e < q.tile_elems; e += 8u) {
    let r = e / 32u;
    let c = e % 32u;
    let u = u0 + r;
    let t = panel * 32u + c;
    if (u >= q.rows || t >= q.cols) { continue; }
    let row = select(u, t, swap);
    let col = select(t, u, swap);
    var idx = cbase + row * c_cols + col;
    if (P > 0u) {
      let img = div_u32(t, P);
      idx = cbase + img * q.rows * P + u * P + (t - img * P);
    }
    var v = tile[r * 8u + c / 4u][c % 4u];
    if (!first) { v += vout[idx / 4u][idx % 4u]; }
    if (last) { v = act_apply(ACT, v + bias_at(row, col), q.alpha); }
    vout[idx / 4u][idx % 4u] = v;
  }
}

// Bias and activation of 4 consecutive columns t..t+3 of row u (not swapped).
fn epilogue4(v: vec4<f32>, u: u32, t: u32) -> vec4<f32> {
  var b = vec4<f32>(0.0);
  if (BIAS == 1u) { b = vec4<f32>(bias[q.off_bias + t], bias[q.off_bias + t + 1u], bias[q.off_bias + t + 2u], bias[q.off_bias + t + 3u]); }
  if (BIAS == 2u) { b = vec4<f32>(bias[q.off_bias + u]); }
  let x = v + b;
  return vec4<f32>(act_apply(ACT, x.x, q.alpha), act_apply(ACT, x.y, q.alpha), act_apply(ACT, x.z, q.alpha), act_apply(ACT, x.w, q.alpha));
}

fn bias_at(row: u32, col: u32) -> f32 {
  if (BIAS == 1u) { return bias[q.off_bias + col]; }
  if (BIAS == 2u) { return bias[q.off_bias + row]; }
  return 0.0;
}

