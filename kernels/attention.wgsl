{{SUBGROUPS}}
// Fused multi-head scaled dot-product attention, forward and backward (FlashAttention-2 style).
//
// Layout: q [B, H, Tq, D], k and v [B, H, Tk, D], any strides (the host passes four strides and
// an offset per operand, so head-split views of a [B, T, H*D] projection cost no copy). o is
// row-major [B, H, Tq, D]; lse [B, H, Tq] is the log-sum-exp of each query's scaled scores.
//
// Forward: one thread per query row, a workgroup per WG query rows of one (batch, head). Keys and
// values stream through workgroup memory in tiles of BT rows; each thread keeps its query, an
// online-softmax running max m, normaliser l and output accumulator in registers, rescaling
// them once per tile. The Tq x Tk score matrix never exists in memory: memory is O(T * D).
//
// Backward recomputes the probabilities from the saved lse: p = exp(scale q.k - lse).
//   attn_bwd_pre   stats[r] = (lse[r], delta[r] = dO[r] . O[r])      (one thread per query row)
//   attn_bwd_dq    dq_i = scale * sum_j p_ij (dp_ij - delta_i) k_j  (one thread per query row)
//   attn_bwd_dkv   dv_j = sum_i p~_ij dO_i ; dk_j = scale * sum_i p_ij (dp_ij - delta_i) q_i
//                  (one thread per key row, queries streaming through workgroup memory)
// with dp_ij = keep_ij * s_drop * (dO_i . v_j) and p~ = keep * s_drop * p under dropout; delta
// = dO . O still equals sum_j p_ij dp_ij, because O already carries the dropout mask. No atomics.
//
// Masks: causal (key j visible to query i iff j <= i, PyTorch's top-left is_causal), key padding
// (mask[b, j] != 0 hides key j, as PyTorch's key_padding_mask = True), keys past Tk. A query that
// sees no key gets o = 0, lse = 0 and zero gradients (PyTorch would give NaN).
//
// Dropout on the attention weights: keep_ij = hash(rowkey(seed, b, h, i) ^ j * golden) >= thr, a
// counter-based generator (lowbias32 hash chain, not Philox): the forward and both backward
// kernels recompute the same mask from (seed, b, h, i, j), nothing is stored.

// The parameter block, head dimension and dropout hash: kernels/attention-params.wgsl, shared with
// the software adapter's kernels (kernels/simd8/attention.wgsl).
// include: attention-params

override WG: u32 = 64;    // rows per workgroup, one thread each
const BT: u32 = 16u;      // rows of the other sequence per tile in workgroup memory

var<workgroup> ta: array<f32, BT * DH>;
var<workgroup> tb: array<f32, BT * DH>;
var<workgroup> tflag: array<u32, BT>;
var<workgroup> tstat: array<vec2<f32>, BT>;
var<workgroup> trk: array<u32, BT>;

// -------------------------------------------------------------------------------- forward

@group(0) @binding(1) var<storage, read_write> f_o: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_lse: array<f32>;
@group(0) @binding(3) var<storage, read> f_q: array<f32>;
@group(0) @binding(4) var<storage, read> f_k: array<f32>;
@group(0) @binding(5) var<storage, read> f_v: array<f32>;
@group(0) @binding(6) var<storage, read> f_mask: array<u32>;

@compute @workgroup_size(WG)
fn attn_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let i0 = wid.x * WG;
  let i = i0 + lid;
  let live = i < p.Tq;
  var q: array<f32, DMAX>;
  var acc: array<f32, DMAX>;
  let qb = p.offs.x + b * p.q_st.x + h * p.q_st.y + min(i, p.Tq - 1u) * p.q_st.z;
  for (var d = 0u; d < DH; d++) {
    q[d] = f_q[qb + d * p.q_st.w] * p.scale;
    acc[d] = 0.0;
  }
  var m = NEG;
  var l = 0.0;
  let rk = row_key(bh, i);
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, i0 + WG); }
  let kb = p.offs.y + b * p.k_st.x + h * p.k_st.y;
  let vb = p.offs.z + b * p.v_st.x + h * p.v_st.y;
  for (var j0 = 0u; j0 < kend; j0 += BT) {
    for (var e = lid; e < BT * DH; e += WG) {
      let j = j0 + e / DH;
      let d = e % DH;
      var kv = 0.0;
      var vv = 0.0;
      if (j < p.Tk) {
        kv = f_k[kb + j * p.k_st.z + d * p.k_st.w];
        vv = f_v[vb + j * p.v_st.z + d * p.v_st.w];
      }
      ta[e] = kv;
      tb[e] = vv;
    }
    if (lid < BT) {
      let j = j0 + lid;
      var ok = j < p.Tk;
      if (ok && p.has_mask != 0u) { ok = f_mask[p.offs.w + b * p.Tk + j] == 0u; }
      tflag[lid] = select(0u, 1u, ok);
    }
    workgroupBarrier();
    var s: array<f32, BT>;
    var tmax = m;
    for (var jj = 0u; jj < BT; jj++) {
      let j = j0 + jj;
      var sc = NEG;
      if (live && tflag[jj] != 0u && !(p.causal != 0u && j > i)) {
        var a = 0.0;
        for (var d = 0u; d < DH; d++) { a += q[d] * ta[jj * DH + d]; }
        sc = a;
        tmax = max(tmax, a);
      }
      s[jj] = sc;
    }
    if (tmax > m) {
      let c = exp(m - tmax);
      l *= c;
      for (var d = 0u; d < DH; d++) { acc[d] *= c; }
      m = tmax;
    }
    for (var jj = 0u; jj < BT; jj++) {
      if (s[jj] > NEG) {
        let pj = exp(s[jj] - m);
        l += pj;
        let pd = pj * drop_factor(rk, j0 + jj);
        if (pd != 0.0) {
          for (var d = 0u; d < DH; d++) { acc[d] += pd * tb[jj * DH + d]; }
        }
      }
    }
    workgroupBarrier();
  }
  if (live) {
    let r = bh * p.Tq + i;
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < DH; d++) { f_o[r * DH + d] = acc[d] * inv; }
    f_lse[r] = select(0.0, m + log(l), l > 0.0);
  }
}

// ------------------------------------------------------------------- forward, tiled
//
// A workgroup of 64 threads owns QB = 16 query rows and streams keys in tiles of KB = 32:
//   A. S = Q K^T for the 16 x 32 tile, each thread a 2 x 4 block (q and k from workgroup memory);
//   B. one thread per row: running max, rescale factor, probabilities (with the dropout factor)
//      written back over S, normaliser; meanwhile every thread stages the V tile over K;
//   C. O += P V, each thread a 4-row x ceil(D/16)-column block in registers (fixed-size arrays,
//      so they stay in registers on a real GPU), rescaled once per tile.
// Rows of q/k/v in workgroup memory are padded to D + 1 floats (no bank conflicts in A and C).

const QB: u32 = 16u;
const KB: u32 = 32u;

var<workgroup> w_q: array<f32, QB * (DH + 1u)>;
var<workgroup> w_kv: array<f32, KB * (DH + 1u)>;
var<workgroup> w_s: array<f32, QB * KB>;
var<workgroup> w_m: array<f32, QB>;
var<workgroup> w_l: array<f32, QB>;
var<workgroup> w_a: array<f32, QB>;
var<workgroup> w_ok: array<u32, KB>;

@compute @workgroup_size(64)
fn attn_fwd_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let i0 = wid.x * QB;
  let DP = DH + 1u;
  let qb = p.offs.x + b * p.q_st.x + h * p.q_st.y;
  let kb = p.offs.y + b * p.k_st.x + h * p.k_st.y;
  let vb = p.offs.z + b * p.v_st.x + h * p.v_st.y;
  for (var e = lid; e < QB * DH; e += 64u) {
    let r = e / DH;
    let d = e % DH;
    var v = 0.0;
    if (i0 + r < p.Tq) { v = f_q[qb + (i0 + r) * p.q_st.z + d * p.q_st.w] * p.scale; }
    w_q[r * DP + d] = v;
  }
  if (lid < QB) {
    w_m[lid] = NEG;
    w_l[lid] = 0.0;
  }
  // phase C ownership: rows rg*4 .. rg*4+3, columns cg + 16 c
  let rg = lid / 16u;
  let cg = lid % 16u;
  var acc: array<f32, 32>;
  for (var x = 0u; x < 32u; x++) { acc[x] = 0.0; }
  // phase A ownership: rows ar, ar+1; keys ak + 8 c
  let ar = (lid / 8u) * 2u;
  let ak = lid % 8u;
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, i0 + QB); }
  for (var j0 = 0u; j0 < kend; j0 += KB) {
    for (var e = lid; e < KB * DH; e += 64u) {
      let j = j0 + e / DH;
      let d = e % DH;
      var v = 0.0;
      if (j < p.Tk) { v = f_k[kb + j * p.k_st.z + d * p.k_st.w]; }
      w_kv[(e / DH) * DP + d] = v;
    }
    if (lid < KB) {
      let j = j0 + lid;
      var ok = j < p.Tk;
      if (ok && p.has_mask != 0u) { ok = f_mask[p.offs.w + b * p.Tk + j] == 0u; }
      w_ok[lid] = select(0u, 1u, ok);
    }
    workgroupBarrier();
    // A: scores
    var s0 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var s1 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var d = 0u; d < DH; d++) {
      let q0 = w_q[ar * DP + d];
      let q1 = w_q[(ar + 1u) * DP + d];
      for (var c = 0u; c < 4u; c++) {
        let kv = w_kv[(ak + 8u * c) * DP + d];
        s0[c] += q0 * kv;
        s1[c] += q1 * kv;
      }
    }
    for (var c = 0u; c < 4u; c++) {
      let jj = ak + 8u * c;
      let j = j0 + jj;
      let vis = w_ok[jj] != 0u;
      let i_a = i0 + ar;
      let ok0 = vis && i_a < p.Tq && !(p.causal != 0u && j > i_a);
      let ok1 = vis && i_a + 1u < p.Tq && !(p.causal != 0u && j > i_a + 1u);
      w_s[ar * KB + jj] = select(NEG, s0[c], ok0);
      w_s[(ar + 1u) * KB + jj] = select(NEG, s1[c], ok1);
    }
    workgroupBarrier();
    // B: softmax bookkeeping (one thread per row) while everyone stages V over K
    if (lid < QB) {
      let r = lid;
      let m_old = w_m[r];
      var mx = m_old;
      for (var jj = 0u; jj < KB; jj++) { mx = max(mx, w_s[r * KB + jj]); }
      let alpha = exp(m_old - mx);
      var l = w_l[r] * alpha;
      let rk = row_key(bh, i0 + r);
      for (var jj = 0u; jj < KB; jj++) {
        let sv = w_s[r * KB + jj];
        var pj = 0.0;
        if (sv > NEG) {
          pj = exp(sv - mx);
          l += pj;
          pj *= drop_factor(rk, j0 + jj);
        }
        w_s[r * KB + jj] = pj;
      }
      w_m[r] = mx;
      w_l[r] = l;
      w_a[r] = alpha;
    }
    for (var e = lid; e < KB * DH; e += 64u) {
      let j = j0 + e / DH;
      let d = e % DH;
      var v = 0.0;
      if (j < p.Tk) { v = f_v[vb + j * p.v_st.z + d * p.v_st.w]; }
      w_kv[(e / DH) * DP + d] = v;
    }
    workgroupBarrier();
    // C: O = O * alpha + P V
    for (var rr = 0u; rr < 4u; rr++) {
      let a = w_a[rg * 4u + rr];
      for (var c = 0u; c < 8u; c++) { acc[rr * 8u + c] *= a; }
    }
    for (var jj = 0u; jj < KB; jj++) {
      let p0 = w_s[(rg * 4u) * KB + jj];
      let p1 = w_s[(rg * 4u + 1u) * KB + jj];
      let p2 = w_s[(rg * 4u + 2u) * KB + jj];
      let p3 = w_s[(rg * 4u + 3u) * KB + jj];
      for (var c = 0u; c < 8u; c++) {
        let d = cg + 16u * c;
        if (d < DH) {
          let vv = w_kv[jj * DP + d];
          acc[c] += p0 * vv;
          acc[8u + c] += p1 * vv;
          acc[16u + c] += p2 * vv;
          acc[24u + c] += p3 * vv;
        }
      }
    }
    workgroupBarrier();
  }
  for (var rr = 0u; rr < 4u; rr++) {
    let r = rg * 4u + rr;
    let i = i0 + r;
    if (i < p.Tq) {
      let l = w_l[r];
      let inv = select(0.0, 1.0 / l, l > 0.0);
      let row = bh * p.Tq + i;
      for (var c = 0u; c < 8u; c++) {
        let d = cg + 16u * c;
        if (d < DH) { f_o[row * DH + d] = acc[rr * 8u + c] * inv; }
      }
      if (cg == 0u) { f_lse[row] = select(0.0, w_m[r] + log(l), l > 0.0); }
    }
  }
}

// ------------------------------------------------------------------ backward: lse and delta

@group(0) @binding(1) var<storage, read_write> pre_stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> pre_do: array<f32>;
@group(0) @binding(3) var<storage, read> pre_o: array<f32>;
@group(0) @binding(4) var<storage, read> pre_lse: array<f32>;

@compute @workgroup_size(WG)
fn attn_bwd_pre(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.B * p.H * p.Tq) { return; }
  var dsum = 0.0;
  for (var d = 0u; d < DH; d++) { dsum += pre_do[r * DH + d] * pre_o[r * DH + d]; }
  pre_stats[r] = vec2<f32>(pre_lse[r], dsum);
}

// ------------------------------------------------------------------------ backward: dq

@group(0) @binding(1) var<storage, read_write> q_dq: array<f32>;
@group(0) @binding(2) var<storage, read> q_q: array<f32>;
@group(0) @binding(3) var<storage, read> q_k: array<f32>;
@group(0) @binding(4) var<storage, read> q_v: array<f32>;
@group(0) @binding(5) var<storage, read> q_mask: array<u32>;
@group(0) @binding(6) var<storage, read> q_do: array<f32>;
@group(0) @binding(7) var<storage, read> q_stats: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn attn_bwd_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let i0 = wid.x * WG;
  let i = i0 + lid;
  let live = i < p.Tq;
  let ic = min(i, p.Tq - 1u);
  let r = bh * p.Tq + ic;
  var q: array<f32, DMAX>;
  var go: array<f32, DMAX>;
  var dq: array<f32, DMAX>;
  let qb = p.offs.x + b * p.q_st.x + h * p.q_st.y + ic * p.q_st.z;
  for (var d = 0u; d < DH; d++) {
    q[d] = q_q[qb + d * p.q_st.w] * p.scale;
    go[d] = q_do[r * DH + d];
    dq[d] = 0.0;
  }
  let st = q_stats[r];
  let rk = row_key(bh, i);
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, i0 + WG); }
  let kb = p.offs.y + b * p.k_st.x + h * p.k_st.y;
  let vb = p.offs.z + b * p.v_st.x + h * p.v_st.y;
  for (var j0 = 0u; j0 < kend; j0 += BT) {
    for (var e = lid; e < BT * DH; e += WG) {
      let j = j0 + e / DH;
      let d = e % DH;
      var kv = 0.0;
      var vv = 0.0;
      if (j < p.Tk) {
        kv = q_k[kb + j * p.k_st.z + d * p.k_st.w];
        vv = q_v[vb + j * p.v_st.z + d * p.v_st.w];
      }
      ta[e] = kv;
      tb[e] = vv;
    }
    if (lid < BT) {
      let j = j0 + lid;
      var ok = j < p.Tk;
      if (ok && p.has_mask != 0u) { ok = q_mask[p.offs.w + b * p.Tk + j] == 0u; }
      tflag[lid] = select(0u, 1u, ok);
    }
    workgroupBarrier();
    for (var jj = 0u; jj < BT; jj++) {
      let j = j0 + jj;
      if (live && tflag[jj] != 0u && !(p.causal != 0u && j > i)) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < DH; d++) {
          s += q[d] * ta[jj * DH + d];
          dp += go[d] * tb[jj * DH + d];
        }
        let pij = exp(s - st.x);
        let ds = pij * (dp * drop_factor(rk, j) - st.y);
        for (var d = 0u; d < DH; d++) { dq[d] += ds * ta[jj * DH + d]; }
      }
    }
    workgroupBarrier();
  }
  if (live) {
    for (var d = 0u; d < DH; d++) { q_dq[r * DH + d] = dq[d] * p.scale; }
  }
}

// -------------------------------------------------------------------- backward: dk and dv

@group(0) @binding(1) var<storage, read_write> kv_dk: array<f32>;
@group(0) @binding(2) var<storage, read_write> kv_dv: array<f32>;
@group(0) @binding(3) var<storage, read> kv_q: array<f32>;
@group(0) @binding(4) var<storage, read> kv_k: array<f32>;
@group(0) @binding(5) var<storage, read> kv_v: array<f32>;
@group(0) @binding(6) var<storage, read> kv_mask: array<u32>;
@group(0) @binding(7) var<storage, read> kv_do: array<f32>;
@group(0) @binding(8) var<storage, read> kv_stats: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn attn_bwd_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let j0 = wid.x * WG;
  let j = j0 + lid;
  let jc = min(j, p.Tk - 1u);
  var ok = j < p.Tk;
  if (ok && p.has_mask != 0u) { ok = kv_mask[p.offs.w + b * p.Tk + j] == 0u; }
  var kj: array<f32, DMAX>;
  var vj: array<f32, DMAX>;
  var dk: array<f32, DMAX>;
  var dv: array<f32, DMAX>;
  let kb = p.offs.y + b * p.k_st.x + h * p.k_st.y + jc * p.k_st.z;
  let vb = p.offs.z + b * p.v_st.x + h * p.v_st.y + jc * p.v_st.z;
  for (var d = 0u; d < DH; d++) {
    kj[d] = kv_k[kb + d * p.k_st.w];
    vj[d] = kv_v[vb + d * p.v_st.w];
    dk[d] = 0.0;
    dv[d] = 0.0;
  }
  // causal: queries before this block's first key see none of its keys
  var istart = 0u;
  if (p.causal != 0u) { istart = (j0 / BT) * BT; }
  let qb = p.offs.x + b * p.q_st.x + h * p.q_st.y;
  for (var i0 = istart; i0 < p.Tq; i0 += BT) {
    for (var e = lid; e < BT * DH; e += WG) {
      let i = i0 + e / DH;
      let d = e % DH;
      var qv = 0.0;
      var gv = 0.0;
      if (i < p.Tq) {
        qv = kv_q[qb + i * p.q_st.z + d * p.q_st.w] * p.scale;
        gv = kv_do[(bh * p.Tq + i) * DH + d];
      }
      ta[e] = qv;
      tb[e] = gv;
    }
    if (lid < BT) {
      let i = i0 + lid;
      var stv = vec2<f32>(0.0, 0.0);
      if (i < p.Tq) { stv = kv_stats[bh * p.Tq + i]; }
      tstat[lid] = stv;
      trk[lid] = row_key(bh, i);
    }
    workgroupBarrier();
    for (var ii = 0u; ii < BT; ii++) {
      let i = i0 + ii;
      if (ok && i < p.Tq && !(p.causal != 0u && j > i)) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < DH; d++) {
          s += ta[ii * DH + d] * kj[d];
          dp += tb[ii * DH + d] * vj[d];
        }
        let st = tstat[ii];
        let pij = exp(s - st.x);
        let f = drop_factor(trk[ii], j);
        let pd = pij * f;
        let ds = pij * (dp * f - st.y);
        for (var d = 0u; d < DH; d++) {
          dv[d] += pd * tb[ii * DH + d];
          dk[d] += ds * ta[ii * DH + d];
        }
      }
    }
    workgroupBarrier();
  }
  if (j < p.Tk) {
    let r = bh * p.Tk + j;
    for (var d = 0u; d < DH; d++) {
      kv_dk[r * DH + d] = dk[d];
      kv_dv[r * DH + d] = dv[d];
    }
  }
}

// ------------------------------------------------------------- backward, tiled (D <= 128)
//
// The same algebra as attn_bwd_dq / attn_bwd_dkv, blocked like the tiled forward: a workgroup
// of 64 threads owns 16 rows (queries for dq, keys for dk/dv) and streams the other sequence in
// tiles of TB through workgroup memory; the 16 x TB score and dP tiles are register-blocked
// (2 x TB/8 per thread), the products with the tile (dS K, P~ dO, dS Q) accumulate in a 4-row x
// ceil(D/16)-column register block per thread (up to 8 columns: D <= 128). TB (32, 16 or 8) is
// chosen by the host as the largest whose tiles fit 32 KiB of workgroup memory: 32 up to D = 72,
// 16 up to D = 117, 8 up to D = 128.

const RB: u32 = 16u;   // rows owned per workgroup
override TB: u32 = 32u;   // rows of the other sequence per tile (32, 16 or 8)
const NCMAX: u32 = 8u;    // column blocks of 16 per thread in the product phase (D <= 128)

var<workgroup> b_own0: array<f32, RB * (DH + 1u)>;   // q (dq) or k (dkv)
var<workgroup> b_own1: array<f32, RB * (DH + 1u)>;   // dO (dq) or v (dkv)
var<workgroup> b_str0: array<f32, TB * (DH + 1u)>;   // k (dq) or q (dkv)
var<workgroup> b_str1: array<f32, TB * (DH + 1u)>;   // v (dq) or dO (dkv)
var<workgroup> b_ds: array<f32, RB * TB>;
var<workgroup> b_pd: array<f32, RB * TB>;
var<workgroup> b_st: array<vec2<f32>, 32>;           // stats of the owned rows (dq) / the tile (dkv)
var<workgroup> b_rk: array<u32, 32>;
var<workgroup> b_ok: array<u32, 32>;

@compute @workgroup_size(64)
fn attn_bwd_dq_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let i0 = wid.x * RB;
  let DP = DH + 1u;
  let qb = p.offs.x + b * p.q_st.x + h * p.q_st.y;
  let kb = p.offs.y + b * p.k_st.x + h * p.k_st.y;
  let vb = p.offs.z + b * p.v_st.x + h * p.v_st.y;
  for (var e = lid; e < RB * DH; e += 64u) {
    let r = e / DH;
    let d = e % DH;
    let i = i0 + r;
    var qv = 0.0;
    var gv = 0.0;
    if (i < p.Tq) {
      qv = q_q[qb + i * p.q_st.z + d * p.q_st.w] * p.scale;
      gv = q_do[(bh * p.Tq + i) * DH + d];
    }
    b_own0[r * DP + d] = qv;
    b_own1[r * DP + d] = gv;
  }
  if (lid < RB) {
    let i = i0 + lid;
    var st = vec2<f32>(0.0, 0.0);
    if (i < p.Tq) { st = q_stats[bh * p.Tq + i]; }
    b_st[lid] = st;
    b_rk[lid] = row_key(bh, i);
  }
  let rg = lid / 16u;
  let cg = lid % 16u;
  let NC = (DH + 15u) / 16u;
  var acc: array<f32, 32>;
  for (var x = 0u; x < 32u; x++) { acc[x] = 0.0; }
  let ar = (lid / 8u) * 2u;
  let ak = lid % 8u;
  var kend = p.Tk;
  if (p.causal != 0u) { kend = min(p.Tk, i0 + RB); }
  for (var j0 = 0u; j0 < kend; j0 += TB) {
    for (var e = lid; e < TB * DH; e += 64u) {
      let j = j0 + e / DH;
      let d = e % DH;
      var kv = 0.0;
      var vv = 0.0;
      if (j < p.Tk) {
        kv = q_k[kb + j * p.k_st.z + d * p.k_st.w];
        vv = q_v[vb + j * p.v_st.z + d * p.v_st.w];
      }
      b_str0[(e / DH) * DP + d] = kv;
      b_str1[(e / DH) * DP + d] = vv;
    }
    if (lid < TB) {
      let j = j0 + lid;
      var ok = j < p.Tk;
      if (ok && p.has_mask != 0u) { ok = q_mask[p.offs.w + b * p.Tk + j] == 0u; }
      b_ok[lid] = select(0u, 1u, ok);
    }
    workgroupBarrier();
    var s0 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var s1 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var g0 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var g1 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var d = 0u; d < DH; d++) {
      let q0 = b_own0[ar * DP + d];
      let q1 = b_own0[(ar + 1u) * DP + d];
      let o0 = b_own1[ar * DP + d];
      let o1 = b_own1[(ar + 1u) * DP + d];
      for (var c = 0u; c < TB / 8u; c++) {
        let kv = b_str0[(ak + 8u * c) * DP + d];
        let vv = b_str1[(ak + 8u * c) * DP + d];
        s0[c] += q0 * kv;
        s1[c] += q1 * kv;
        g0[c] += o0 * vv;
        g1[c] += o1 * vv;
      }
    }
    for (var c = 0u; c < TB / 8u; c++) {
      let jj = ak + 8u * c;
      let j = j0 + jj;
      let vis = b_ok[jj] != 0u;
      for (var u = 0u; u < 2u; u++) {
        let r = ar + u;
        let i = i0 + r;
        var ds = 0.0;
        if (vis && i < p.Tq && !(p.causal != 0u && j > i)) {
          let st = b_st[r];
          let sv = select(s0[c], s1[c], u == 1u);
          let gv = select(g0[c], g1[c], u == 1u);
          let pij = exp(sv - st.x);
          ds = pij * (gv * drop_factor(b_rk[r], j) - st.y);
        }
        b_ds[r * TB + jj] = ds;
      }
    }
    workgroupBarrier();
    for (var jj = 0u; jj < TB; jj++) {
      let d0 = b_ds[(rg * 4u) * TB + jj];
      let d1 = b_ds[(rg * 4u + 1u) * TB + jj];
      let d2 = b_ds[(rg * 4u + 2u) * TB + jj];
      let d3 = b_ds[(rg * 4u + 3u) * TB + jj];
      for (var c = 0u; c < NC; c++) {
        let d = cg + 16u * c;
        if (d < DH) {
          let kv = b_str0[jj * DP + d];
          acc[c] += d0 * kv;
          acc[NCMAX + c] += d1 * kv;
          acc[2u * NCMAX + c] += d2 * kv;
          acc[3u * NCMAX + c] += d3 * kv;
        }
      }
    }
    workgroupBarrier();
  }
  for (var rr = 0u; rr < 4u; rr++) {
    let i = i0 + rg * 4u + rr;
    if (i < p.Tq) {
      for (var c = 0u; c < NC; c++) {
        let d = cg + 16u * c;
        if (d < DH) { q_dq[(bh * p.Tq + i) * DH + d] = acc[rr * NCMAX + c] * p.scale; }
      }
    }
  }
}

@compute @workgroup_size(64)
fn attn_bwd_dkv_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let bh = wid.y;
  let b = bh / p.H;
  let h = bh % p.H;
  let j0 = wid.x * RB;
  let DP = DH + 1u;
  let qb = p.offs.x + b * p.q_st.x + h * p.q_st.y;
  let kb = p.offs.y + b * p.k_st.x + h * p.k_st.y;
  let vb = p.offs.z + b * p.v_st.x + h * p.v_st.y;
  for (var e = lid; e < RB * DH; e += 64u) {
    let r = e / DH;
    let d = e % DH;
    let j = j0 + r;
    var kv = 0.0;
    var vv = 0.0;
    if (j < p.Tk) {
      kv = kv_k[kb + j * p.k_st.z + d * p.k_st.w];
      vv = kv_v[vb + j * p.v_st.z + d * p.v_st.w];
    }
    b_own0[r * DP + d] = kv;
    b_own1[r * DP + d] = vv;
  }
  if (lid < RB) {
    let j = j0 + lid;
    var ok = j < p.Tk;
    if (ok && p.has_mask != 0u) { ok = kv_mask[p.offs.w + b * p.Tk + j] == 0u; }
    b_ok[lid] = select(0u, 1u, ok);
  }
  let rg = lid / 16u;
  let cg = lid % 16u;
  let NC = (DH + 15u) / 16u;
  var ak_: array<f32, 32>;   // dk block
  var av_: array<f32, 32>;   // dv block
  for (var x = 0u; x < 32u; x++) {
    ak_[x] = 0.0;
    av_[x] = 0.0;
  }
  // scores: keys ar, ar+1 (owned) x queries ak + 8 c (tile)
  let ar = (lid / 8u) * 2u;
  let ak = lid % 8u;
  var istart = 0u;
  if (p.causal != 0u) { istart = (j0 / TB) * TB; }
  for (var i0 = istart; i0 < p.Tq; i0 += TB) {
    for (var e = lid; e < TB * DH; e += 64u) {
      let i = i0 + e / DH;
      let d = e % DH;
      var qv = 0.0;
      var gv = 0.0;
      if (i < p.Tq) {
        qv = kv_q[qb + i * p.q_st.z + d * p.q_st.w] * p.scale;
        gv = kv_do[(bh * p.Tq + i) * DH + d];
      }
      b_str0[(e / DH) * DP + d] = qv;
      b_str1[(e / DH) * DP + d] = gv;
    }
    if (lid < TB) {
      let i = i0 + lid;
      var st = vec2<f32>(0.0, 0.0);
      if (i < p.Tq) { st = kv_stats[bh * p.Tq + i]; }
      b_st[lid] = st;
      b_rk[lid] = row_key(bh, i);
    }
    workgroupBarrier();
    var s0 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var s1 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var g0 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var g1 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var d = 0u; d < DH; d++) {
      let k0 = b_own0[ar * DP + d];
      let k1 = b_own0[(ar + 1u) * DP + d];
      let v0 = b_own1[ar * DP + d];
      let v1 = b_own1[(ar + 1u) * DP + d];
      for (var c = 0u; c < TB / 8u; c++) {
        let qv = b_str0[(ak + 8u * c) * DP + d];
        let gv = b_str1[(ak + 8u * c) * DP + d];
        s0[c] += k0 * qv;
        s1[c] += k1 * qv;
        g0[c] += v0 * gv;
        g1[c] += v1 * gv;
      }
    }
    for (var c = 0u; c < TB / 8u; c++) {
      let ii = ak + 8u * c;
      let i = i0 + ii;
      let st = b_st[ii];
      for (var u = 0u; u < 2u; u++) {
        let r = ar + u;
        let j = j0 + r;
        var ds = 0.0;
        var pd = 0.0;
        if (b_ok[r] != 0u && i < p.Tq && !(p.causal != 0u && j > i)) {
          let sv = select(s0[c], s1[c], u == 1u);
          let gv = select(g0[c], g1[c], u == 1u);
          let pij = exp(sv - st.x);
          let f = drop_factor(b_rk[ii], j);
          pd = pij * f;
          ds = pij * (gv * f - st.y);
        }
        b_ds[r * TB + ii] = ds;
        b_pd[r * TB + ii] = pd;
      }
    }
    workgroupBarrier();
    for (var ii = 0u; ii < TB; ii++) {
      let d0 = b_ds[(rg * 4u) * TB + ii];
      let d1 = b_ds[(rg * 4u + 1u) * TB + ii];
      let d2 = b_ds[(rg * 4u + 2u) * TB + ii];
      let d3 = b_ds[(rg * 4u + 3u) * TB + ii];
      let p0 = b_pd[(rg * 4u) * TB + ii];
      let p1 = b_pd[(rg * 4u + 1u) * TB + ii];
      let p2 = b_pd[(rg * 4u + 2u) * TB + ii];
      let p3 = b_pd[(rg * 4u + 3u) * TB + ii];
      for (var c = 0u; c < NC; c++) {
        let d = cg + 16u * c;
        if (d < DH) {
          let qv = b_str0[ii * DP + d];
          let gv = b_str1[ii * DP + d];
          ak_[c] += d0 * qv;
          ak_[NCMAX + c] += d1 * qv;
          ak_[2u * NCMAX + c] += d2 * qv;
          ak_[3u * NCMAX + c] += d3 * qv;
          av_[c] += p0 * gv;
          av_[NCMAX + c] += p1 * gv;
          av_[2u * NCMAX + c] += p2 * gv;
          av_[3u * NCMAX + c] += p3 * gv;
        }
      }
    }
    workgroupBarrier();
  }
  for (var rr = 0u; rr < 4u; rr++) {
    let j = j0 + rg * 4u + rr;
    if (j < p.Tk) {
      for (var c = 0u; c < NC; c++) {
        let d = cg + 16u * c;
        if (d < DH) {
          kv_dk[(bh * p.Tk + j) * DH + d] = ak_[rr * NCMAX + c];
          kv_dv[(bh * p.Tk + j) * DH + d] = av_[rr * NCMAX + c];
        }
      }
    }
  }
}
