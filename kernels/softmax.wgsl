// Softmax and log-softmax along the last axis of a row-major [rows, cols] input, one workgroup
// per row (the host moves any other axis last). WG (a power of two) is sized to the row.
//
// Forward: each thread folds a strided slice of its row into an online (max m, sum s of
// exp(x - m)) pair, rescaling s whenever m grows; the pairs meet in a tree in workgroup memory
// ((m1, s1) + (m2, s2) = (m, s1 e^(m1-m) + s2 e^(m2-m))). Every exponent is <= 0, so nothing
// overflows whatever the logits' scale. A second sweep writes exp(x - m) / s, or x - m - log s.
// The running max starts at -FLT_MAX (not -inf) so a -inf logit gives exp(-inf) = 0, never
// exp(-inf + inf) = NaN; a row of only -inf gives 0/0 = NaN, as in PyTorch.
//
// Backward (y the forward's output, g the incoming gradient):
//   softmax:      dx = y * (g - sum(g * y))
//   log-softmax:  dx = g - exp(y) * sum(g)
// LOG: 0 softmax, 1 log-softmax.

struct Params {
  rows: u32,
  cols: u32,
  off_x: u32,   // offset of the input (forward x, backward y) in elements
  off_g: u32,   // backward: offset of g
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;

override WG: u32 = 256;
override LOG: u32 = 0;

const NEG_BIG: f32 = -3.402823466e38;

var<workgroup> wm: array<f32, WG>;
var<workgroup> ws: array<f32, WG>;

fn exp_neg(d: f32) -> f32 {
  return select(exp(d), 0.0, d < -88.0);
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn softmax_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }   // uniform per workgroup
  let lid = lid3.x;
  let base = row * p.cols;
  var m = NEG_BIG;
  var s = 0.0;
  for (var k = lid; k < p.cols; k += WG) {
    let v = x[p.off_x + base + k];
    if (v > m) {
      s = s * exp_neg(m - v) + 1.0;
      m = v;
    } else {
      s += exp_neg(v - m);
    }
  }
  wm[lid] = m;
  ws[lid] = s;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st / 2u) {
    if (lid < st) {
      let m1 = wm[lid];
      let m2 = wm[lid + st];
      let mm = max(m1, m2);
      ws[lid] = ws[lid] * exp_neg(m1 - mm) + ws[lid + st] * exp_neg(m2 - mm);
      wm[lid] = mm;
    }
    workgroupBarrier();
  }
  let mx = wm[0];
  let sum = ws[0];
  let logsum = log(sum);
  let inv = 1.0 / sum;
  for (var k = lid; k < p.cols; k += WG) {
    let d = x[p.off_x + base + k] - mx;
    if (LOG == 1u) {
      out[base + k] = d - logsum;
    } else {
      out[base + k] = exp_neg(d) * inv;
    }
  }
}

@compute @workgroup_size(WG)
fn softmax_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = row * p.cols;
  var acc = 0.0;
  for (var k = lid; k < p.cols; k += WG) {
    let gv = g[p.off_g + base + k];
    if (LOG == 1u) { acc += gv; } else { acc += gv * x[p.off_x + base + k]; }
  }
  ws[lid] = acc;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st / 2u) {
    if (lid < st) { ws[lid] += ws[lid + st]; }
    workgroupBarrier();
  }
  let dot = ws[0];
  for (var k = lid; k < p.cols; k += WG) {
    let y = x[p.off_x + base + k];
    let gv = g[p.off_g + base + k];
    if (LOG == 1u) {
      out[base + k] = gv - exp(min(y, 0.0)) * dot;
    } else {
      out[base + k] = y * (gv - dot);
    }
  }
}
