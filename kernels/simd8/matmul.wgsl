{{SUBGROUPS}}
// include: index
// include: activation
// Matmul's product for a software adapter with subgroups of 8 (caps.simd8: lavapipe, where
// llvmpipe runs a workgroup of 8 invocations as one 8-lane AVX2 vector); the plan picks it as
// kind `simd8`. Measured there (bench/NOTES.md, "v7", simd8's old name): inside any loop llvmpipe
// loads storage and workgroup memory one lane at a time, each with its own bounds check and
// branch, even where the address is the same for all lanes, while a texel fetch is one call that
// gathers all 8 lanes. So both operands are packed into rgba32float array textures: U (the one
// with fewer rows) into panes of 16 rows, T into panels of 32 columns, and a workgroup of 8
// threads computes 16 rows of U times one panel: each thread owns 4 columns, every texel it
// fetches feeds 16 rows. C = U @ T, or C = (U @ T)^T when swapped (U = B^T, T = A^T).
//
// The host (src/engine/simd8/matmul.ts) packs both operands (pack_u, pack_t), then runs
// `product` once over the whole of K: one dispatch a product. U in a texture, not in 64 KiB
// uniform windows: a dispatch binds at most 11 of those (WebGPU's 12 uniform buffers a stage), 24
// dispatches for a WRN-40-2 weight gradient, while a texel fetch reads U as fast (bench/NOTES.md,
// "Host cost per step, session 9").

struct SimdParams {
  rows: u32,        // U rows (M, or N when swapped)
  cols: u32,        // T columns (N, or M when swapped)
  K: u32,
  kc: u32,          // K per chunk (multiple of 4): the product's loop over K runs chunk by chunk
  _q0: u32,
  n_chunks: u32,
  kh: u32,          // texture rows per layer (a multiple of kc)
  n_kt: u32,        // layers per panel (K split over layers when it exceeds the texture height)
  panels: u32,
  off_src: u32,     // packing: source offset; product: offset of C
  st_row: u32,      // packing: stride of a U row / T column in the source
  st_k: u32,        // packing: stride along K in the source
  _q1: u32,
  u_per: u32,       // U's panes per texture layer (stacked down it)
  _q6: u32,
  off_bias: u32,
  bshape: vec4<u32>,
  bst: vec4<u32>,
  alpha: f32,
  swap: u32,        // C = (U @ T)^T: U = B^T, T = A^T
  _q7: u32,
  _q4: u32,
  col_split: u32,   // > 0: columns are (image, position) pairs, C is [cols / P, rows, P]
  _q5: u32,
  tile_elems: u32,  // 512 (16 x 32), passed at run time so the epilogue loop stays a loop
  _q2: u32,
};

// The epilogue (overrides, folded by the compiler): BIAS 0 none, 1 per column, 2 per row; ACT an
// activation code of kernels/activation.wgsl, leaky relu's slope in q.alpha. ACCUMULATE: each
// element stored is C's element plus the epilogue's value (C += act(U @ T + bias)), so a later
// product adds to what an earlier dispatch wrote (a weight gradient's K in groups of images)
// without a scratch of partial sums; an override, so the common path has no extra load. It reads
// only C's own elements (a vec4 only where the store is one), as C may sit between other tensors.
override BIAS: u32 = 0u;
override ACT: u32 = 0u;
override ACCUMULATE: bool = false;

var<workgroup> tile: array<vec4<f32>, 128>; // the product's 16 rows x 8 lanes x 4 columns
// product's output: C seen as vec4s (its interior tiles store whole vec4s; elsewhere single
// components). The host binds the whole buffer, a multiple of 16 bytes.
@group(0) @binding(1) var<storage, read_write> vout: array<vec4<f32>>;

@group(0) @binding(0) var<uniform> q: SimdParams;
@group(0) @binding(1) var tpacked: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(3) var tpanels: texture_2d_array<f32>;
// U's panes (written by pack_u through tpacked, read by product): pane p = (z * u_blocks +
// block) * n_kt + kt is kh / 4 texel rows from row (p % u_per) * kh / 4 of layers 2 (p / u_per)
// (half 0) and 2 (p / u_per) + 1 (half 1); its texel (x, y) holds U[16 block + 8 half + x][kt *
// kh + 4 y .. + 3], zero beyond the rows and K. Short panes stack down a layer, so a batch of
// short-K products does not run out of layers.
@group(0) @binding(2) var upanes: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

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

// U's panes: a thread writes the 8 texels of one texture row y; the 8 lanes of a subgroup take 8
// consecutive rows, so a load reads consecutive elements of a U row where U's K stride is 1
// (kernels/simd8/conv2d.wgsl's simd_pack_u says what that is worth).
@compute @workgroup_size(8, 8)
fn pack_u(@builtin(global_invocation_id) gid: vec3<u32>) {
  let layer = gid.z;
  let uh = q.kh / 4u;
  let u_blocks = (q.rows + 15u) / 16u;
  let y = gid.y * 8u + gid.x;
  if (y >= uh * q.u_per) { return; }
  let pane = layer / 2u * q.u_per + y / uh;
  if (pane >= q.bshape.x * q.bshape.y * q.bshape.z * q.bshape.w * u_blocks * q.n_kt) { return; }
  let zb = pane / q.n_kt;
  let row0 = zb % u_blocks * 16u + layer % 2u * 8u;
  let k = pane % q.n_kt * q.kh + y % uh * 4u;
  let base = batch_offset(zb / u_blocks);
  for (var x = 0u; x < 8u; x++) {
    let row = row0 + x;
    textureStore(tpacked, vec2<u32>(x, y), layer, vec4<f32>(src_at(base, row, k), src_at(base, row, k + 1u), src_at(base, row, k + 2u), src_at(base, row, k + 3u)));
  }
}

// Texture layer and first texel row of chunk `chunk` of panel `panel` of batch entry z.
fn chunk_layer(z: u32, panel: u32, chunk: u32) -> vec2<u32> {
  let k0 = chunk * q.kc;
  return vec2<u32>((z * q.panels + panel) * q.n_kt + k0 / q.kh, k0 % q.kh);
}

// acc[r] += U[r][k..k+3] . T[k..k+3][4 lane ..]: rows 0-7 from ua (lane r's fetch), 8-15 from ub.
fn mac16(acc: ptr<function, array<vec4<f32>, 16>>, ua: vec4<f32>, ub: vec4<f32>, t0: vec4<f32>, t1: vec4<f32>, t2: vec4<f32>, t3: vec4<f32>) {
  { let u = {{SG_BCAST}}(ua, 0u); (*acc)[0] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ua, 1u); (*acc)[1] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ua, 2u); (*acc)[2] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ua, 3u); (*acc)[3] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ua, 4u); (*acc)[4] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ua, 5u); (*acc)[5] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ua, 6u); (*acc)[6] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ua, 7u); (*acc)[7] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 0u); (*acc)[8] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 1u); (*acc)[9] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 2u); (*acc)[10] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 3u); (*acc)[11] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 4u); (*acc)[12] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 5u); (*acc)[13] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 6u); (*acc)[14] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
  { let u = {{SG_BCAST}}(ub, 7u); (*acc)[15] += u.x * t0 + u.y * t1 + u.z * t2 + u.w * t3; }
}

// The product, one dispatch: workgroup (panel, 16-row block, batch entry) over the whole of K,
// then the bias and activation (and with ACCUMULATE the sum with C) as it stores its tile.
@compute @workgroup_size(8)
fn product(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let u0 = wg.y * 16u;
  let ubase = (wg.z * ((q.rows + 15u) / 16u) + wg.y) * q.n_kt;
  var acc: array<vec4<f32>, 16>;
  let kc4 = q.kc / 4u;
  for (var c = 0u; c < q.n_chunks; c++) {
    let at = chunk_layer(wg.z, wg.x, c);
    let k0 = c * q.kc;
    let pane = ubase + k0 / q.kh;
    let ul = pane / q.u_per * 2u;
    let uy = pane % q.u_per * (q.kh / 4u) + (k0 % q.kh) / 4u;
    for (var k4 = 0u; k4 < kc4; k4++) {
      let y = at.y + k4 * 4u;
      let t0 = textureLoad(tpanels, vec2<u32>(lane, y), at.x, 0);
      let t1 = textureLoad(tpanels, vec2<u32>(lane, y + 1u), at.x, 0);
      let t2 = textureLoad(tpanels, vec2<u32>(lane, y + 2u), at.x, 0);
      let t3 = textureLoad(tpanels, vec2<u32>(lane, y + 3u), at.x, 0);
      // lane l fetches rows l and l + 8 (a gather each), each row then broadcast to all lanes
      let ua = textureLoad(upanes, vec2<u32>(lane, uy + k4), ul, 0);
      let ub = textureLoad(upanes, vec2<u32>(lane, uy + k4), ul + 1u, 0);
      mac16(&acc, ua, ub, t0, t1, t2, t3);
    }
  }
  store_tile(acc, wg.x, lane, wg.z, u0);
}

// C's tile (rows u0.., the 32 columns of panel `panel`) of batch entry z, with bias and activation
// (added to C's elements with ACCUMULATE).
fn store_tile(acc: array<vec4<f32>, 16>, panel: u32, lane: u32, z: u32, u0: u32) {
  // C is [M, N] per batch entry: rows x cols, or cols x rows when swapped.
  let swap = q.swap != 0u;
  let c_cols = select(q.cols, q.rows, swap);
  let cbase = q.off_src + z * q.rows * q.cols;
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
      var v = epilogue4(acc[r], u0 + r, t);
      if (ACCUMULATE) { v = vout[i4] + v; }
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
    var v = act_apply(ACT, tile[r * 8u + c / 4u][c % 4u] + bias_at(row, col), q.alpha);
    if (ACCUMULATE) { v = vout[idx / 4u][idx % 4u] + v; }
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

