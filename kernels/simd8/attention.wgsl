{{SUBGROUPS}}
// include: attention-params
// Attention for a software adapter with subgroups of 8 (caps.simd8: lavapipe; planAttention's
// kind `simd8`). On a CPU adapter (llvmpipe: a workgroup of 8 = one 8-lane vector) loads from
// storage or workgroup memory inside a loop are emitted lane by lane with a branch each
// (kernels/simd8/matmul.wgsl notes), which made kernels/attention.wgsl's kernels slower than
// matmul + softmax + matmul once the matmul stopped paying that. These three kernels stream the other sequence of one (batch, head) from
// 64 KiB uniform windows (the host packs it densely, one dispatch per (batch, head)): lane l
// gathers vec4s l, l + 8, ... of a streamed row and subgroupShuffle hands each to all lanes. Each
// lane owns two rows (16 per workgroup) of q (forward, dq) or of k and v (dk/dv) in registers.
// Same masks, dropout mask and results as kernels/attention.wgsl's.

@group(0) @binding(1) var<storage, read_write> s8_out0: array<f32>;  // o / dq / dk
@group(0) @binding(2) var<storage, read_write> s8_out1: array<f32>;  // lse / (unused) / dv
@group(0) @binding(3) var<storage, read> s8_own0: array<f32>;        // q / q / k
@group(0) @binding(4) var<uniform> s8_wa: array<vec4<f32>, 4096>;    // k / k / q (packed rows)
@group(0) @binding(5) var<uniform> s8_wb: array<vec4<f32>, 4096>;    // v / v / dO (packed rows)
@group(0) @binding(6) var<storage, read> s8_mask: array<u32>;
@group(0) @binding(7) var<storage, read> s8_own1: array<f32>;        // - / dO / v
@group(0) @binding(8) var<storage, read> s8_stats: array<vec2<f32>>; // - / (lse, delta) per query

const S8_V4: u32 = DMAX / 4u;

// The no-subgroup placeholder keeps the module compiling; the host never runs these there.
fn sg_unavailable(v: vec4<f32>, lane: u32) -> vec4<f32> { return v; }

// Streamed row r of a window, vec4 c, from the lanes' gathered slots.
fn s8_pick(slots: array<vec4<f32>, 4>, c: u32) -> vec4<f32> {
  return {{SG_SHUFFLE}}(slots[c / 8u], c % 8u);
}

// One owned row (q, k or v) as vec4s, times `mul`; zeros past `n` rows.
fn s8_load_own0(base: u32, st: u32, row_ok: bool, mul: f32) -> array<vec4<f32>, S8_V4> {
  var r: array<vec4<f32>, S8_V4>;
  if (row_ok) {
    for (var c = 0u; c < DH / 4u; c++) {
      let e = base + 4u * c * st;
      r[c] = vec4<f32>(s8_own0[e], s8_own0[e + st], s8_own0[e + 2u * st], s8_own0[e + 3u * st]) * mul;
    }
  }
  return r;
}

fn s8_load_own1(base: u32, st: u32, row_ok: bool) -> array<vec4<f32>, S8_V4> {
  var r: array<vec4<f32>, S8_V4>;
  if (row_ok) {
    for (var c = 0u; c < DH / 4u; c++) {
      let e = base + 4u * c * st;
      r[c] = vec4<f32>(s8_own1[e], s8_own1[e + st], s8_own1[e + 2u * st], s8_own1[e + 3u * st]);
    }
  }
  return r;
}

fn s8_gather_a(row: u32, lane: u32) -> array<vec4<f32>, 4> {
  var g: array<vec4<f32>, 4>;
  for (var s = 0u; s * 8u < DH / 4u; s++) { g[s] = s8_wa[row * (DH / 4u) + s * 8u + lane]; }
  return g;
}

fn s8_gather_b(row: u32, lane: u32) -> array<vec4<f32>, 4> {
  var g: array<vec4<f32>, 4>;
  for (var s = 0u; s * 8u < DH / 4u; s++) { g[s] = s8_wb[row * (DH / 4u) + s * 8u + lane]; }
  return g;
}

// Query row i of (b, h), scaled (zeros past Tq): what the forward and dq lanes own.
fn s8_q_row(b: u32, h: u32, i: u32) -> array<vec4<f32>, S8_V4> {
  let qrow = p.offs.x + b * p.q_st.x + h * p.q_st.y;
  return s8_load_own0(qrow + min(i, p.Tq - 1u) * p.q_st.z, p.q_st.w, i < p.Tq, p.scale);
}

fn s8_key_visible(b: u32, j: u32) -> bool {
  return j < p.Tk && (p.has_mask == 0u || s8_mask[p.offs.w + b * p.Tk + j] == 0u);
}

@compute @workgroup_size(8)
fn attn_fwd_simd8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let bh = p.bh;
  let b = bh / p.H;
  let h = bh % p.H;
  let i0 = wid.x * 16u;
  let ia = i0 + lane;
  let ib = ia + 8u;
  let qa = s8_q_row(b, h, ia);
  let qb = s8_q_row(b, h, ib);
  var oa: array<vec4<f32>, S8_V4>;
  var ob: array<vec4<f32>, S8_V4>;
  var ma = NEG;
  var mb = NEG;
  var la = 0.0;
  var lb = 0.0;
  let rka = row_key(bh, ia);
  let rkb = row_key(bh, ib);
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, i0 + 16u); }
  for (var j = 0u; j < kend; j++) {
    let kr = s8_gather_a(j, lane);
    // One small loop per product (here and below): the compiler unrolls small constant-trip
    // loops, and only unrolled loops keep these arrays in registers (a rolled one indexes them
    // dynamically: per-lane stack gathers and blended stores, 10x slower). They are written out
    // on purpose: as helper functions taking and returning the arrays by value, the attention
    // tests took 73 s instead of 3 s on lavapipe (compile time) and the forward ran slower.
    var sa = 0.0;
    var sb = 0.0;
    for (var c = 0u; c < DH / 4u; c++) { sa += dot(qa[c], s8_pick(kr, c)); }
    for (var c = 0u; c < DH / 4u; c++) { sb += dot(qb[c], s8_pick(kr, c)); }
    let vis = s8_key_visible(b, j);
    let va = vis && ia < p.Tq && !(p.causal != 0u && j > ia);
    let vb = vis && ib < p.Tq && !(p.causal != 0u && j > ib);
    let na = select(ma, max(ma, sa), va);
    let nb = select(mb, max(mb, sb), vb);
    let ca = exp(ma - na);
    let cb = exp(mb - nb);
    let pa = select(0.0, exp(sa - na), va);
    let pb = select(0.0, exp(sb - nb), vb);
    la = la * ca + pa;
    lb = lb * cb + pb;
    ma = na;
    mb = nb;
    let da = pa * drop_factor(rka, j);
    let db = pb * drop_factor(rkb, j);
    let vr = s8_gather_b(j, lane);
    for (var c = 0u; c < DH / 4u; c++) { oa[c] = oa[c] * ca + da * s8_pick(vr, c); }
    for (var c = 0u; c < DH / 4u; c++) { ob[c] = ob[c] * cb + db * s8_pick(vr, c); }
  }
  s8_fwd_store(bh, ia, oa, ma, la);
  s8_fwd_store(bh, ib, ob, mb, lb);
}

fn s8_fwd_store(bh: u32, i: u32, o: array<vec4<f32>, S8_V4>, m: f32, l: f32) {
  if (i >= p.Tq) { return; }
  let r = bh * p.Tq + i;
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var c = 0u; c < DH / 4u; c++) {
    let v = o[c] * inv;
    s8_out0[r * DH + 4u * c] = v.x;
    s8_out0[r * DH + 4u * c + 1u] = v.y;
    s8_out0[r * DH + 4u * c + 2u] = v.z;
    s8_out0[r * DH + 4u * c + 3u] = v.w;
  }
  s8_out1[r] = select(0.0, m + log(l), l > 0.0);
}

// dq_i = scale * sum_j p_ij (dp_ij - delta_i) k_j, lanes owning queries, keys streamed.
@compute @workgroup_size(8)
fn attn_bwd_dq_simd8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let bh = p.bh;
  let b = bh / p.H;
  let h = bh % p.H;
  let i0 = wid.x * 16u;
  let ia = i0 + lane;
  let ib = ia + 8u;
  let qa = s8_q_row(b, h, ia);
  let qb = s8_q_row(b, h, ib);
  let ga = s8_load_own1((bh * p.Tq + min(ia, p.Tq - 1u)) * DH, 1u, ia < p.Tq);
  let gb = s8_load_own1((bh * p.Tq + min(ib, p.Tq - 1u)) * DH, 1u, ib < p.Tq);
  let sta = s8_stats[bh * p.Tq + min(ia, p.Tq - 1u)];
  let stb = s8_stats[bh * p.Tq + min(ib, p.Tq - 1u)];
  var dqa: array<vec4<f32>, S8_V4>;
  var dqb: array<vec4<f32>, S8_V4>;
  let rka = row_key(bh, ia);
  let rkb = row_key(bh, ib);
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, i0 + 16u); }
  for (var j = 0u; j < kend; j++) {
    let kr = s8_gather_a(j, lane);
    let vr = s8_gather_b(j, lane);
    var sa = 0.0;
    var sb = 0.0;
    var dpa = 0.0;
    var dpb = 0.0;
    for (var c = 0u; c < DH / 4u; c++) { sa += dot(qa[c], s8_pick(kr, c)); }
    for (var c = 0u; c < DH / 4u; c++) { sb += dot(qb[c], s8_pick(kr, c)); }
    for (var c = 0u; c < DH / 4u; c++) { dpa += dot(ga[c], s8_pick(vr, c)); }
    for (var c = 0u; c < DH / 4u; c++) { dpb += dot(gb[c], s8_pick(vr, c)); }
    let vis = s8_key_visible(b, j);
    let va = vis && ia < p.Tq && !(p.causal != 0u && j > ia);
    let vb = vis && ib < p.Tq && !(p.causal != 0u && j > ib);
    let pa = select(0.0, exp(sa - sta.x), va);
    let pb = select(0.0, exp(sb - stb.x), vb);
    let dsa = pa * (dpa * drop_factor(rka, j) - sta.y);
    let dsb = pb * (dpb * drop_factor(rkb, j) - stb.y);
    for (var c = 0u; c < DH / 4u; c++) { dqa[c] += dsa * s8_pick(kr, c); }
    for (var c = 0u; c < DH / 4u; c++) { dqb[c] += dsb * s8_pick(kr, c); }
  }
  s8_store_row(bh * p.Tq + ia, ia < p.Tq, dqa, p.scale);
  s8_store_row(bh * p.Tq + ib, ib < p.Tq, dqb, p.scale);
  // never true: keeps binding 2 in this kernel's layout, so the three SIMD-8 kernels share one
  // binding order (the host binds a scratch buffer there)
  if (p.B == 0u) { s8_out1[0] = 0.0; }
}

fn s8_store_row(r: u32, ok: bool, v: array<vec4<f32>, S8_V4>, mul: f32) {
  if (!ok) { return; }
  for (var c = 0u; c < DH / 4u; c++) {
    let x = v[c] * mul;
    s8_out0[r * DH + 4u * c] = x.x;
    s8_out0[r * DH + 4u * c + 1u] = x.y;
    s8_out0[r * DH + 4u * c + 2u] = x.z;
    s8_out0[r * DH + 4u * c + 3u] = x.w;
  }
}

fn s8_store_row1(r: u32, ok: bool, v: array<vec4<f32>, S8_V4>) {
  if (!ok) { return; }
  for (var c = 0u; c < DH / 4u; c++) {
    s8_out1[r * DH + 4u * c] = v[c].x;
    s8_out1[r * DH + 4u * c + 1u] = v[c].y;
    s8_out1[r * DH + 4u * c + 2u] = v[c].z;
    s8_out1[r * DH + 4u * c + 3u] = v[c].w;
  }
}

// dv_j = sum_i p~_ij dO_i, dk_j = scale * sum_i p_ij (dp_ij - delta_i) q_i: lanes owning keys,
// queries (q unscaled, and dO) streamed, each query's (lse, delta) read once per step.
@compute @workgroup_size(8)
fn attn_bwd_dkv_simd8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let bh = p.bh;
  let b = bh / p.H;
  let h = bh % p.H;
  let j0 = wid.x * 16u;
  let ja = j0 + lane;
  let jb = ja + 8u;
  let krow = p.offs.y + b * p.k_st.x + h * p.k_st.y;
  let vrow = p.offs.z + b * p.v_st.x + h * p.v_st.y;
  let ka = s8_load_own0(krow + min(ja, p.Tk - 1u) * p.k_st.z, p.k_st.w, ja < p.Tk, p.scale);
  let kb = s8_load_own0(krow + min(jb, p.Tk - 1u) * p.k_st.z, p.k_st.w, jb < p.Tk, p.scale);
  let va_ = s8_load_own1(vrow + min(ja, p.Tk - 1u) * p.v_st.z, p.v_st.w, ja < p.Tk);
  let vb_ = s8_load_own1(vrow + min(jb, p.Tk - 1u) * p.v_st.z, p.v_st.w, jb < p.Tk);
  let visa = s8_key_visible(b, ja);
  let visb = s8_key_visible(b, jb);
  var dka: array<vec4<f32>, S8_V4>;
  var dkb: array<vec4<f32>, S8_V4>;
  var dva: array<vec4<f32>, S8_V4>;
  var dvb: array<vec4<f32>, S8_V4>;
  var istart = 0u;
  if (p.causal != 0u) { istart = j0; }
  for (var i = istart; i < p.Tq; i++) {
    let qr = s8_gather_a(i, lane);
    let gr = s8_gather_b(i, lane);
    let st = s8_stats[bh * p.Tq + i];
    let rk = row_key(bh, i);
    var sa = 0.0;
    var sb = 0.0;
    var dpa = 0.0;
    var dpb = 0.0;
    for (var c = 0u; c < DH / 4u; c++) { sa += dot(ka[c], s8_pick(qr, c)); }
    for (var c = 0u; c < DH / 4u; c++) { sb += dot(kb[c], s8_pick(qr, c)); }
    for (var c = 0u; c < DH / 4u; c++) { dpa += dot(va_[c], s8_pick(gr, c)); }
    for (var c = 0u; c < DH / 4u; c++) { dpb += dot(vb_[c], s8_pick(gr, c)); }
    let oka = visa && !(p.causal != 0u && ja > i);
    let okb = visb && !(p.causal != 0u && jb > i);
    let pa = select(0.0, exp(sa - st.x), oka);
    let pb = select(0.0, exp(sb - st.x), okb);
    let fa = drop_factor(rk, ja);
    let fb = drop_factor(rk, jb);
    let dsa = pa * (dpa * fa - st.y);
    let dsb = pb * (dpb * fb - st.y);
    let ta = pa * fa;
    let tb = pb * fb;
    for (var c = 0u; c < DH / 4u; c++) { dva[c] += ta * s8_pick(gr, c); }
    for (var c = 0u; c < DH / 4u; c++) { dvb[c] += tb * s8_pick(gr, c); }
    for (var c = 0u; c < DH / 4u; c++) { dka[c] += dsa * s8_pick(qr, c); }
    for (var c = 0u; c < DH / 4u; c++) { dkb[c] += dsb * s8_pick(qr, c); }
  }
  s8_store_row(bh * p.Tk + ja, ja < p.Tk, dka, p.scale);
  s8_store_row(bh * p.Tk + jb, jb < p.Tk, dkb, p.scale);
  s8_store_row1(bh * p.Tk + ja, ja < p.Tk, dva);
  s8_store_row1(bh * p.Tk + jb, jb < p.Tk, dvb);
}
