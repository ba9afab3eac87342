// Reductions of a row-major [outer, R, inner] view: by rows when inner = 1 (`rows`, `partial`),
// by columns otherwise (`cols`); the host moves scattered reduced axes innermost first. Then
// arg-reductions along D of an [outer, D, inner] view, and the backward kernels.
//
// `rows`: one workgroup per row, WG threads each folding a strided slice of the row, then a tree
// in workgroup memory. `partial`: the first pass of the two-pass path for few long rows: the
// workgroup w folds chunk (w % chunks) of row (w / chunks) into part[w], so a 1 x 10M sum runs on
// thousands of workgroups; `rows` then folds the [rows, chunks] partials (OP 0, 1 or 2).
//
// OP (how elements are loaded and combined):
//   0 sum, 1 max, 2 min,
//   3 sum of (x - c[row])^2   (variance around a precomputed mean),
//   4 sum of exp(x - c[row])  (logsumexp around the row maximum: every term is <= 1, no overflow).
// FIN (what `rows` writes from the folded value v):
//   0 v * scale, 1 log(v) + c[row] (logsumexp), 2 sqrt(v * scale) (std).
// The `c` binding is a per-row centre; kernels that do not need one get any f32 buffer (the host
// binds x again).

struct Params {
  rows: u32,
  cols: u32,
  off_in: u32,
  scale_bits: u32,   // multiplies the result (1 for sum, 1/cols for mean, 1/(n-correction) for var)
  chunk: u32,        // partial: elements per chunk
  chunks: u32,       // partial: chunks per row
  off_c: u32,
  inf_bits: u32,     // +inf (0x7f800000): a constant inf is a WGSL compile error
  inner: u32,        // cols: the [outer, R, inner] layout's inner size
  _p0: u32,
  _p1: u32,
  _p2: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;

override WG: u32 = 256;
override OP: u32 = 0;
override FIN: u32 = 0;

var<workgroup> acc: array<f32, WG>;

fn identity() -> f32 {
  switch OP {
    case 1u: { return -bitcast<f32>(p.inf_bits); }   // -inf: the max of an all -inf row is -inf
    case 2u: { return bitcast<f32>(p.inf_bits); }
    default: { return 0.0; }
  }
}

fn is_nan(v: f32) -> bool {
  // on the bits: a compiler allowed to assume no NaNs may fold v != v away
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// max/min propagate NaN as torch.amax does (WGSL's max/min leave it unspecified).
fn combine(u: f32, v: f32) -> f32 {
  switch OP {
    case 1u: { return select(max(u, v), u + v, is_nan(u) || is_nan(v)); }
    case 2u: { return select(min(u, v), u + v, is_nan(u) || is_nan(v)); }
    default: { return u + v; }
  }
}

// exp_neg (OP 4's exp of a non-positive argument): kernels/online-softmax.wgsl.
// include: online-softmax

fn load(i: u32, row: u32) -> f32 {
  let v = x[i];
  switch OP {
    case 3u: { let d = v - c[p.off_c + row]; return d * d; }
    case 4u: {
      // an infinite centre (a row max of +-inf): count the elements equal to it instead of
      // exp(inf - inf) = NaN, so logsumexp gives +-inf as PyTorch does
      let cc = c[p.off_c + row];
      if ((bitcast<u32>(cc) & 0x7fffffffu) == 0x7f800000u) { return select(0.0, 1.0, v == cc); }
      return exp_neg(v - cc);
    }
    default: { return v; }
  }
}

fn tree(lid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { acc[lid] = combine(acc[lid], acc[lid + s]); }
    workgroupBarrier();
  }
}

fn finish(v: f32, row: u32) -> f32 {
  let scale = bitcast<f32>(p.scale_bits);
  switch FIN {
    case 1u: { return log(v) + c[p.off_c + row]; }
    case 2u: { return sqrt(max(v * scale, 0.0)); }
    default: { return v * scale; }
  }
}

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }   // uniform per workgroup: safe before the barriers
  let base = p.off_in + row * p.cols;
  var v = identity();
  for (var k = lid.x; k < p.cols; k += WG) {
    v = combine(v, load(base + k, row));
  }
  acc[lid.x] = v;
  tree(lid.x);
  if (lid.x == 0u) { out[row] = finish(acc[0], row); }
}

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.rows * p.chunks) { return; }
  let row = w / p.chunks;
  let start = (w % p.chunks) * p.chunk;
  let end = min(start + p.chunk, p.cols);
  let base = p.off_in + row * p.cols;
  var v = identity();
  for (var k = start + lid.x; k < end; k += WG) {
    v = combine(v, load(base + k, row));
  }
  acc[lid.x] = v;
  tree(lid.x);
  if (lid.x == 0u) { out[w] = acc[0]; }
}

// `cols`: the reduced axes form one block of a row-major input viewed as [outer = rows,
// R = cols, inner] (a bias gradient: [N, C] over N; [B, T, D] over T). One thread per output
// element (o, i) folds r sequentially: consecutive threads read consecutive i, so every load is
// coalesced and nothing is transposed first. With few outputs and long R the host splits R
// into `chunks` (each thread folds one chunk into part[c, o, i]) and folds the partials the same
// way, so a [1M, 4] column sum still runs on many threads. The centre c is per output element.
@compute @workgroup_size(WG)
fn cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let n_out = p.rows * p.inner;
  if (t >= n_out * p.chunks) { return; }
  let ch = t / n_out;
  let e = t % n_out;
  let o = e / p.inner;
  let i = e % p.inner;
  let r0 = ch * p.chunk;
  let r1 = min(r0 + p.chunk, p.cols);
  var v = identity();
  var idx = p.off_in + (o * p.cols + r0) * p.inner + i;
  for (var r = r0; r < r1; r++) {
    v = combine(v, load(idx, e));
    idx += p.inner;
  }
  if (p.chunks == 1u) {
    out[e] = finish(v, e);
  } else {
    out[ch * n_out + e] = v;
  }
}

// ------------------------------------------------------------------------------------------
// Arg-reductions (argmax / argmin / max with indices) along D of an [outer, D, inner] view:
// row r = (o, i) with o = r / inner, i = r % inner; element d at off + (o * D + d) * inner + i.
// The first index wins ties (as PyTorch), and NaN beats every number (torch.argmax/argmin return
// a NaN's position). `arg_partial` folds chunks of long rows into [rows, chunks] (value, index)
// pairs; `arg_rows` with PARTS = 1 then folds those, taking each pair's index from arg_xi.
// ARGMIN: 0 largest, 1 smallest.

struct ArgParams {
  rows: u32,
  d: u32,
  inner: u32,
  off_in: u32,
  chunk: u32,
  chunks: u32,
  inf_bits: u32,
  _p1: u32,
};

@group(0) @binding(0) var<uniform> pa: ArgParams;
@group(0) @binding(1) var<storage, read_write> arg_val: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg_idx: array<i32>;
@group(0) @binding(3) var<storage, read> arg_x: array<f32>;
@group(0) @binding(4) var<storage, read> arg_xi: array<i32>;

override ARGMIN: u32 = 0;
override PARTS: u32 = 0;

var<workgroup> acc_v: array<f32, WG>;
var<workgroup> acc_i: array<i32, WG>;

// Whether (v, i) beats (bv, bi).
fn better(v: f32, i: i32, bv: f32, bi: i32) -> bool {
  let vn = is_nan(v);
  let bn = is_nan(bv);
  if (vn != bn) { return vn; }
  if (vn || v == bv) { return i < bi; }
  if (ARGMIN == 1u) { return v < bv; }
  return v > bv;
}

fn arg_tree(lid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s && better(acc_v[lid + s], acc_i[lid + s], acc_v[lid], acc_i[lid])) {
      acc_v[lid] = acc_v[lid + s];
      acc_i[lid] = acc_i[lid + s];
    }
    workgroupBarrier();
  }
}

fn arg_fold(row: u32, start: u32, end: u32, lid: u32) {
  let o = row / pa.inner;
  let i = row % pa.inner;
  let base = pa.off_in + o * pa.d * pa.inner + i;
  let inf = bitcast<f32>(pa.inf_bits);
  var bv = select(-inf, inf, ARGMIN == 1u);
  var bi = 0x7fffffff;
  for (var k = start + lid; k < end; k += WG) {
    let v = arg_x[base + k * pa.inner];
    var idx = i32(k);
    if (PARTS == 1u) { idx = arg_xi[base + k * pa.inner]; }
    if (better(v, idx, bv, bi)) { bv = v; bi = idx; }
  }
  acc_v[lid] = bv;
  acc_i[lid] = bi;
  arg_tree(lid);
}

@compute @workgroup_size(WG)
fn arg_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= pa.rows) { return; }
  arg_fold(row, 0u, pa.d, lid.x);
  if (lid.x == 0u) {
    arg_val[row] = acc_v[0];
    // a row of -inf (argmax) still yields its first index, so bi is always a real position
    arg_idx[row] = acc_i[0];
  }
}

@compute @workgroup_size(WG)
fn arg_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= pa.rows * pa.chunks) { return; }
  let row = w / pa.chunks;
  let start = (w % pa.chunks) * pa.chunk;
  arg_fold(row, start, min(start + pa.chunk, pa.d), lid.x);
  if (lid.x == 0u) {
    arg_val[w] = acc_v[0];
    arg_idx[w] = acc_i[0];
  }
}

// The backward of max/min along one dimension with indices (torch.max(dim)): the gradient goes
// to the recorded index only. out is the [outer, D, inner] input gradient, g and the indices are
// [outer, inner]; one thread per output element.
struct ScatterParams {
  n: u32,
  d: u32,
  inner: u32,
  _p: u32,
};

@group(0) @binding(0) var<uniform> ps: ScatterParams;
@group(0) @binding(1) var<storage, read_write> sc_out: array<f32>;
@group(0) @binding(2) var<storage, read> sc_g: array<f32>;
@group(0) @binding(3) var<storage, read> sc_idx: array<i32>;

@compute @workgroup_size(WG)
fn arg_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= ps.n) { return; }
  let i = e % ps.inner;
  let k = (e / ps.inner) % ps.d;
  let o = e / (ps.inner * ps.d);
  let r = o * ps.inner + i;
  sc_out[e] = select(0.0, sc_g[r], sc_idx[r] == i32(k));
}

// Backward of the centred reductions, on the forward's [outer, R, inner] layout (inner = 1 for
// the row layout, which the host permutes back): element e belongs to output
// r = (e / (R * inner)) * inner + e % inner, and out[e] = g[r] * f(x[e] - c[r]) with
//   MODE 0: exp(x - c)                 (logsumexp: c is the result, so this is the softmax)
//   MODE 1: scale * (x - c)            (var: c the mean, scale = 2 / (n - correction))
//   MODE 2: scale * (x - c) / s[r]     (std: s the std, scale = 1 / (n - correction))
// `s` is read by MODE 2 only (the host binds c again otherwise).
struct BwdParams {
  n: u32,
  cols: u32,       // R
  off_x: u32,
  scale_bits: u32,
  inner: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
};

@group(0) @binding(0) var<uniform> pb: BwdParams;
@group(0) @binding(1) var<storage, read_write> bw_out: array<f32>;
@group(0) @binding(2) var<storage, read> bw_x: array<f32>;
@group(0) @binding(3) var<storage, read> bw_c: array<f32>;
@group(0) @binding(4) var<storage, read> bw_g: array<f32>;
@group(0) @binding(5) var<storage, read> bw_s: array<f32>;

override MODE: u32 = 0;

@compute @workgroup_size(WG)
fn rows_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= pb.n) { return; }
  let r = (e / (pb.cols * pb.inner)) * pb.inner + e % pb.inner;
  let d = bw_x[pb.off_x + e] - bw_c[r];
  var v: f32;
  if (MODE == 0u) {
    v = exp_neg(min(d, 0.0));
  } else if (MODE == 1u) {
    v = bitcast<f32>(pb.scale_bits) * d;
  } else {
    v = bitcast<f32>(pb.scale_bits) * d / bw_s[r];
  }
  bw_out[e] = bw_g[r] * v;
}
