// Batch normalisation over 2-D feature maps (NCHW): statistics per channel over batch and space.
//
// Fused forward: one workgroup per channel computes the mean, then the variance about that mean
// (two passes over the channel: no catastrophic cancellation of E[x^2] - E[x]^2), updates the
// running estimates (unbiased variance, as PyTorch does), saves mean and 1/std for the backward,
// and writes the normalised, scaled and shifted output, all in one dispatch.
// Fused backward: one workgroup per channel folds the four sums the gradient needs, then writes
// the input gradient in the same dispatch:
//   gh = g * gamma,  xhat = (x - mean) * invstd
//   dx = invstd * (gh - mean(gh) - xhat * mean(gh * xhat))     (training: batch statistics)
//   dx = invstd * gh                                           (evaluation: fixed statistics)
//   dgamma = sum g * xhat,  dbeta = sum g
// The affine transform is per channel ([C], BatchNorm2d) or per sample ([N, C], the conditional
// batch norm of BigGAN, whose gain and bias come from a class embedding). gamma and beta are read
// at element offsets from the parameter block (parameters live inside an arena; storage binding
// offsets would have to be 256-byte aligned), so no copy of them is made.
// ACT applies an activation to the output (activation.wgsl's codes; the unary op's bits); the
// backward multiplies g by act'(y) from the saved output y first, so only codes whose derivative
// the output determines are allowed (relu, leaky_relu with a positive slope, tanh, sigmoid).
//
// HW (the spatial size) is an override so that index divisions fold into multiplies.

// include: activation

struct Params {
  n: u32,
  c: u32,
  off_a: u32,
  off_b: u32,
  eps: f32,
  momentum: f32,
  shift: f32,       // class_gather: added to every value (1 for BigGAN's gain = 1 + embedding)
  k: u32,           // class tables: number of classes
  off_gamma: u32,   // element offsets of gamma, beta and the saved output y
  off_beta: u32,
  off_y: u32,
  alpha: f32,       // leaky_relu's slope (ACT 2)
};

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256u;
override HW: u32 = 1u;
override AFFINE: u32 = 1u;        // 0 none, 1 per channel [C], 2 per sample [N, C]
override TRAIN: bool = true;       // batch statistics (true) or the running estimates (false)
override UPDATE_RUNNING: bool = true;
override ACT: u32 = 0u;            // activation applied to the output, activation.wgsl's codes

// wg_sum, wg_sum4: sums over the workgroup.
// include: workgroup-sum
var<workgroup> shared_stats: vec2<f32>;

// Element `i` of channel `ch` (i runs over batch and space).
fn at(ch: u32, i: u32) -> u32 {
  return (i / HW * p.c + ch) * HW + i % HW;
}

fn affine_index(ch: u32, i: u32) -> u32 {
  if (AFFINE == 2u) { return i / HW * p.c + ch; }
  return ch;
}

// ---------------------------------------------------------------------------------- forward

@group(0) @binding(1) var<storage, read_write> f_y: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_stats: array<f32>;     // [2, C]: mean, invstd
@group(0) @binding(3) var<storage, read_write> f_rmean: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_rvar: array<f32>;
@group(0) @binding(5) var<storage, read> f_x: array<f32>;
@group(0) @binding(6) var<storage, read> f_gamma: array<f32>;
@group(0) @binding(7) var<storage, read> f_beta: array<f32>;

@compute @workgroup_size(WG)
fn bn_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ch = wid.x;
  let cnt = p.n * HW;
  let xo = p.off_a;
  if (TRAIN) {
    var s = 0.0;
    for (var i = li; i < cnt; i += WG) { s += f_x[xo + at(ch, i)]; }
    let mean = wg_sum(s, li) / f32(cnt);
    var q = 0.0;
    for (var i = li; i < cnt; i += WG) {
      let d = f_x[xo + at(ch, i)] - mean;
      q += d * d;
    }
    let v = wg_sum(q, li) / f32(cnt);
    if (li == 0u) {
      shared_stats = vec2<f32>(mean, inverseSqrt(v + p.eps));
      f_stats[ch] = mean;
      f_stats[p.c + ch] = inverseSqrt(v + p.eps);
      if (UPDATE_RUNNING) {
        let unbiased = v * f32(cnt) / f32(max(cnt, 2u) - 1u);
        f_rmean[ch] = (1.0 - p.momentum) * f_rmean[ch] + p.momentum * mean;
        f_rvar[ch] = (1.0 - p.momentum) * f_rvar[ch] + p.momentum * unbiased;
      }
    }
  } else {
    if (li == 0u) {
      let m = f_rmean[ch];
      let is = inverseSqrt(f_rvar[ch] + p.eps);
      shared_stats = vec2<f32>(m, is);
      f_stats[ch] = m;
      f_stats[p.c + ch] = is;
    }
  }
  workgroupBarrier();
  let st = shared_stats;
  for (var i = li; i < cnt; i += WG) {
    let e = at(ch, i);
    var v = (f_x[xo + e] - st.x) * st.y;
    if (AFFINE != 0u) {
      let ai = affine_index(ch, i);
      v = v * f_gamma[p.off_gamma + ai] + f_beta[p.off_beta + ai];
    }
    f_y[e] = act_apply(ACT, v, p.alpha);
  }
}

// --------------------------------------------------------------------------------- backward

// dgamma and dbeta [C] each, in buffers of their own (autograd copies a leaf's gradient that
// sits at an offset).
@group(0) @binding(1) var<storage, read_write> b_dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dbeta: array<f32>;
@group(0) @binding(4) var<storage, read> b_g: array<f32>;
@group(0) @binding(5) var<storage, read> b_x: array<f32>;
@group(0) @binding(6) var<storage, read> b_stats: array<f32>;
@group(0) @binding(7) var<storage, read> b_gamma: array<f32>;
@group(0) @binding(8) var<storage, read> b_y: array<f32>;              // the forward's output (ACT != 0)

// The output gradient through the fused activation: g * act'(y).
fn bwd_grad(e: u32) -> f32 {
  let gv = b_g[p.off_a + e];
  if (ACT == 0u) { return gv; }
  return gv * act_deriv_from_output(ACT, b_y[p.off_y + e], p.alpha);
}

@compute @workgroup_size(WG)
fn bn_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ch = wid.x;
  let cnt = p.n * HW;
  let mean = b_stats[ch];
  let invstd = b_stats[p.c + ch];
  // sums: x = gh, y = gh * xhat, z = g * xhat, w = g
  var acc = vec4<f32>(0.0);
  for (var i = li; i < cnt; i += WG) {
    let e = at(ch, i);
    let gv = bwd_grad(e);
    let xh = (b_x[p.off_b + e] - mean) * invstd;
    var gh = gv;
    if (AFFINE != 0u) { gh = gv * b_gamma[p.off_gamma + affine_index(ch, i)]; }
    acc += vec4<f32>(gh, gh * xh, gv * xh, gv);
  }
  let s = wg_sum4(acc, li);
  if (li == 0u) {
    b_dgamma[ch] = s.z;
    b_dbeta[ch] = s.w;
  }
  let inv_cnt = 1.0 / f32(cnt);
  for (var i = li; i < cnt; i += WG) {
    let e = at(ch, i);
    let gv = bwd_grad(e);
    var gh = gv;
    if (AFFINE != 0u) { gh = gv * b_gamma[p.off_gamma + affine_index(ch, i)]; }
    if (TRAIN) {
      let xh = (b_x[p.off_b + e] - mean) * invstd;
      b_dx[e] = invstd * (gh - s.x * inv_cnt - xh * s.y * inv_cnt);
    } else {
      b_dx[e] = invstd * gh;
    }
  }
}

// Per-sample affine gradients: one workgroup per (n, c), sums over space.
@group(0) @binding(1) var<storage, read_write> a_out: array<f32>;     // [2, N, C]: dgamma, dbeta
@group(0) @binding(2) var<storage, read> a_g: array<f32>;
@group(0) @binding(3) var<storage, read> a_x: array<f32>;
@group(0) @binding(4) var<storage, read> a_stats: array<f32>;
@group(0) @binding(5) var<storage, read> a_y: array<f32>;              // the forward's output (ACT != 0)

@compute @workgroup_size(WG)
fn bn_affine_grad_ns(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let nc = wid.x + wid.y * 32768u;
  let valid = nc < p.n * p.c;    // uniform per workgroup
  let ch = nc % p.c;
  let mean = a_stats[ch];
  let invstd = a_stats[p.c + ch];
  var acc = vec4<f32>(0.0);
  if (valid) {
    for (var s = li; s < HW; s += WG) {
      let e = nc * HW + s;
      var gv = a_g[p.off_a + e];
      if (ACT != 0u) { gv *= act_deriv_from_output(ACT, a_y[p.off_y + e], p.alpha); }
      let xh = (a_x[p.off_b + e] - mean) * invstd;
      acc += vec4<f32>(gv * xh, gv, 0.0, 0.0);
    }
  }
  let r = wg_sum4(acc, li);
  if (valid && li == 0u) {
    a_out[nc] = r.x;
    a_out[p.n * p.c + nc] = r.y;
  }
}

// --------------------------------------------------------------------- class embedding tables

@group(0) @binding(1) var<storage, read_write> e_out: array<f32>;
@group(0) @binding(2) var<storage, read> e_table: array<f32>;
@group(0) @binding(3) var<storage, read> e_cls: array<i32>;

// out[n, c] = table[cls[n], c] + shift
@compute @workgroup_size(WG)
fn class_gather(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= p.n * p.c) { return; }
  let n = i / p.c;
  let cls = u32(e_cls[p.off_b + n]);
  e_out[i] = e_table[p.off_a + cls * p.c + i % p.c] + p.shift;
}

// dtable[k, c] = sum over n with cls[n] == k of g[n, c] (one thread per table entry: no atomics)
@compute @workgroup_size(WG)
fn class_scatter(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= p.k * p.c) { return; }
  let k = i / p.c;
  let ch = i % p.c;
  var s = 0.0;
  for (var n = 0u; n < p.n; n++) {
    if (u32(e_cls[p.off_b + n]) == k) { s += e_table[p.off_a + n * p.c + ch]; }
  }
  e_out[i] = s;
}
