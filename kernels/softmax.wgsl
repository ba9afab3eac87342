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

// The online-softmax state, its merge and workgroup tree; the workgroup sum of the backward.
// include: online-softmax
// include: workgroup-sum

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
  var st = vec2<f32>(NEG_BIG, 0.0);
  for (var k = lid; k < p.cols; k += WG) { st = softmax_push(st, x[p.off_x + base + k]); }
  let row_st = wg_softmax(st, lid);
  let mx = row_st.x;
  let sum = row_st.y;
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
  let dot = wg_sum(acc, lid);
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
