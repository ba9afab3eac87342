// Spectral normalisation of a weight viewed as a matrix W [H, K] (H = output channels), as
// torch.nn.utils.spectral_norm: one power-iteration step per training forward,
//   v = normalize(W^T u),  u = normalize(W v),  sigma = u . (W v),  W_sn = W / sigma,
// normalize(x) = x / max(|x|, eps). u and v are state (updated in place, no gradient), so
//   dW = (G - (sum G * W_sn) u v^T) / sigma.
// The power iteration is two matrix-vector products of a few hundred thousand multiply-adds:
// one workgroup does it (no grid-wide synchronisation needed between the steps).

struct Params {
  h: u32,
  k: u32,
  n: u32,           // elements (elementwise entries)
  eps: f32,
};

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256u;
override DO_POWER: bool = true;

// wg_sum: sums over the workgroup.
// include: workgroup-sum

@group(0) @binding(1) var<storage, read_write> pi_u: array<f32>;
@group(0) @binding(2) var<storage, read_write> pi_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> pi_sigma: array<f32>;
@group(0) @binding(4) var<storage, read> pi_w: array<f32>;

@compute @workgroup_size(WG)
fn power_iter(@builtin(local_invocation_index) li: u32) {
  if (DO_POWER) {
    // v = normalize(W^T u): thread j-strided, neighbouring threads read neighbouring columns
    var q = 0.0;
    for (var j = li; j < p.k; j += WG) {
      var s = 0.0;
      for (var i = 0u; i < p.h; i++) { s += pi_w[i * p.k + j] * pi_u[i]; }
      pi_v[j] = s;
      q += s * s;
    }
    let nv = max(sqrt(wg_sum(q, li)), p.eps);
    for (var j = li; j < p.k; j += WG) { pi_v[j] = pi_v[j] / nv; }
    storageBarrier();
    workgroupBarrier();
    // u = normalize(W v)
    q = 0.0;
    for (var i = li; i < p.h; i += WG) {
      var s = 0.0;
      for (var j = 0u; j < p.k; j++) { s += pi_w[i * p.k + j] * pi_v[j]; }
      pi_u[i] = s;
      q += s * s;
    }
    let nu = max(sqrt(wg_sum(q, li)), p.eps);
    for (var i = li; i < p.h; i += WG) { pi_u[i] = pi_u[i] / nu; }
    storageBarrier();
    workgroupBarrier();
  }
  // sigma = u . (W v)
  var t = 0.0;
  for (var i = li; i < p.h; i += WG) {
    var s = 0.0;
    for (var j = 0u; j < p.k; j++) { s += pi_w[i * p.k + j] * pi_v[j]; }
    t += pi_u[i] * s;
  }
  let sigma = wg_sum(t, li);
  if (li == 0u) { pi_sigma[0] = sigma; }
}

// out = W / sigma
@group(0) @binding(1) var<storage, read_write> sc_out: array<f32>;
@group(0) @binding(2) var<storage, read> sc_w: array<f32>;
@group(0) @binding(3) var<storage, read> sc_sigma: array<f32>;

@compute @workgroup_size(WG)
fn sn_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  sc_out[i] = sc_w[i] / sc_sigma[0];
}

// c = sum G * W_sn (one workgroup)
@group(0) @binding(1) var<storage, read_write> d_c: array<f32>;
@group(0) @binding(2) var<storage, read> d_g: array<f32>;
@group(0) @binding(3) var<storage, read> d_wsn: array<f32>;

@compute @workgroup_size(WG)
fn sn_dot(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < p.n; i += WG) { s += d_g[i] * d_wsn[i]; }
  let c = wg_sum(s, li);
  if (li == 0u) { d_c[0] = c; }
}

// dW = (G - c u v^T) / sigma
@group(0) @binding(1) var<storage, read_write> b_dw: array<f32>;
@group(0) @binding(2) var<storage, read> b_g: array<f32>;
@group(0) @binding(3) var<storage, read> b_c: array<f32>;
@group(0) @binding(4) var<storage, read> b_sigma: array<f32>;
@group(0) @binding(5) var<storage, read> b_u: array<f32>;
@group(0) @binding(6) var<storage, read> b_v: array<f32>;

@compute @workgroup_size(WG)
fn sn_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  b_dw[i] = (b_g[i] - b_c[0] * b_u[i / p.k] * b_v[i % p.k]) / b_sigma[0];
}
