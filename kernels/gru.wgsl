{{SUBGROUPS}}
// GRU recurrence with PyTorch's gate equations, one fused dispatch per time step:
//   r = sigmoid(gi_r + W_hr h + b_hr)      z = sigmoid(gi_z + W_hz h + b_hz)
//   n = tanh(gi_n + r * (W_hn h + b_hn))   h' = (1 - z) * n + z * h
// where gi = x W_ih^T + b_ih for every step was computed beforehand by one GEMM. Each step fuses
// the recurrent product h W_hh^T with the gate arithmetic (no [B, 3H] intermediate in memory).
//
// Layout (time-major): gi [T, B, 3H]; hs [T+1, B, H] holds h0 and every state (the backward's
// h_{t-1}); gates [T, B, 4H] saves (r, z, n, W_hn h + b_hn) for the backward; out [T+1, B, H]
// holds y_0..y_{T-1} (zeros at padded steps, as packed sequences give) and h_T last.
// Variable lengths: at t >= len[b] the state is carried unchanged, so padded steps leave the
// state and (in the backward) the gradients untouched.
//
// Workgroup: WG consecutive hidden units x BB batch rows. The BB rows of h_{t-1} are staged in
// workgroup memory; the weights are read as W_hh^T [H, 3H] so consecutive threads read
// consecutive addresses, and each weight load is reused for the BB rows.

// The parameter block and the forward step's outputs (gru_fwd_finish), and the gates' math:
// kernels/gru-step.wgsl (shared with kernels/simd8/gru.wgsl) and kernels/activation.wgsl.
// include: gru-step
// include: activation

override WG: u32 = 64;
override HS: u32 = 128;   // hidden size
override BB: u32 = 4;     // batch rows per workgroup (<= 4)

var<workgroup> sh: array<f32, BB * HS * 4u>;

// ------------------------------------------------------------------------------ forward step

@group(0) @binding(5) var<storage, read> f_whhT: array<f32>;

@compute @workgroup_size(WG)
fn gru_fwd_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let H = HS;
  let B = p.B;
  let t = p.t;
  let b0 = wid.y * BB;
  let k = wid.x * WG + lid;
  for (var e = lid; e < BB * H; e += WG) {
    let b = b0 + e / H;
    var v = 0.0;
    if (b < B) { v = f_hs[(t * B + b) * H + e % H]; }
    sh[e] = v;
  }
  workgroupBarrier();
  if (k >= H) { return; }
  var ar = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var az = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var an = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var c = 0u; c < H; c++) {
    let wr = f_whhT[c * 3u * H + k];
    let wz = f_whhT[c * 3u * H + H + k];
    let wn = f_whhT[c * 3u * H + 2u * H + k];
    for (var bb = 0u; bb < BB; bb++) {
      let hv = sh[bb * H + c];
      ar[bb] += wr * hv;
      az[bb] += wz * hv;
      an[bb] += wn * hv;
    }
  }
  let bhr = f_bhh[k];
  let bhz = f_bhh[H + k];
  let bhn = f_bhh[2u * H + k];
  for (var bb = 0u; bb < BB; bb++) {
    let b = b0 + bb;
    if (b >= B) { break; }
    gru_fwd_finish(b, k, sh[bb * H + k], vec3<f32>(ar[bb], az[bb], an[bb]) + vec3<f32>(bhr, bhz, bhn));
  }
}

// ----------------------------------------------------------------------------- backward step

@group(0) @binding(1) var<storage, read_write> b_carry: array<f32>;   // [2, B, H] ping-pong
@group(0) @binding(2) var<storage, read_write> b_dgi: array<f32>;     // [T, B, 3H]
@group(0) @binding(3) var<storage, read_write> b_dgh: array<f32>;     // [T, B, 3H]
@group(0) @binding(4) var<storage, read> b_gout: array<f32>;          // [T+1, B, H]
@group(0) @binding(5) var<storage, read> b_hs: array<f32>;
@group(0) @binding(6) var<storage, read> b_gates: array<f32>;
@group(0) @binding(7) var<storage, read> b_whh: array<f32>;           // [3H, H]
@group(0) @binding(8) var<storage, read> b_len: array<u32>;

// dh_t = carry + dy_t; gate gradients for the BB rows (every workgroup of the row block computes
// them, the first one stores them), then dh_{t-1} = dh_t * z + dgh W_hh for this block's columns.
@compute @workgroup_size(WG)
fn gru_bwd_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let lid = lidv.x;
  let H = HS;
  let B = p.B;
  let t = p.t;
  let b0 = wid.y * BB;
  let inH = p.parity * B * H;
  let outH = (1u - p.parity) * B * H;
  let dbase = BB * 3u * H;
  for (var e = lid; e < BB * H; e += WG) {
    let bb = e / H;
    let k = e % H;
    let b = b0 + bb;
    var dr = 0.0;
    var dz = 0.0;
    var dn = 0.0;
    var dnh = 0.0;
    var direct = 0.0;
    if (b < B) {
      let row = t * B + b;
      var dh = 0.0;
      if (p.first != 0u) { dh = b_gout[(p.T * B + b) * H + k]; } else { dh = b_carry[inH + b * H + k]; }
      if (t < b_len[b]) {
        dh += b_gout[row * H + k];
        let r = b_gates[row * 4u * H + k];
        let z = b_gates[row * 4u * H + H + k];
        let n = b_gates[row * 4u * H + 2u * H + k];
        let ghn = b_gates[row * 4u * H + 3u * H + k];
        let hp = b_hs[row * H + k];
        let dan = dh * (1.0 - z) * (1.0 - n * n);
        dr = dan * ghn * r * (1.0 - r);
        dz = dh * (hp - n) * z * (1.0 - z);
        dn = dan;
        dnh = dan * r;
        direct = dh * z;
      } else {
        direct = dh;
      }
      if (wid.x == 0u) {
        let g = row * 3u * H;
        b_dgi[g + k] = dr;
        b_dgi[g + H + k] = dz;
        b_dgi[g + 2u * H + k] = dn;
        b_dgh[g + k] = dr;
        b_dgh[g + H + k] = dz;
        b_dgh[g + 2u * H + k] = dnh;
      }
    }
    sh[bb * 3u * H + k] = dr;
    sh[bb * 3u * H + H + k] = dz;
    sh[bb * 3u * H + 2u * H + k] = dnh;
    sh[dbase + bb * H + k] = direct;
  }
  workgroupBarrier();
  let c = wid.x * WG + lid;
  if (c >= H) { return; }
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var bb = 0u; bb < BB; bb++) { acc[bb] = sh[dbase + bb * H + c]; }
  for (var kk = 0u; kk < 3u * H; kk++) {
    let w = b_whh[kk * H + c];
    for (var bb = 0u; bb < BB; bb++) { acc[bb] += sh[bb * 3u * H + kk] * w; }
  }
  for (var bb = 0u; bb < BB; bb++) {
    let b = b0 + bb;
    if (b < B) { b_carry[outH + b * H + c] = acc[bb]; }
  }
}

// --------------------------------------------------------------------------- column sums

@group(0) @binding(1) var<storage, read_write> cs_out: array<f32>;
@group(0) @binding(2) var<storage, read> cs_in: array<f32>;

@compute @workgroup_size(WG)
fn gru_colsum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < p.rows; r++) { s += cs_in[r * p.cols + c]; }
  cs_out[c] = s;
}
