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

struct Params {
  B: u32,
  H: u32,
  T: u32,
  t: u32,
  first: u32,    // backward: this is step T-1, the incoming gradient is out's last row (dh_T)
  parity: u32,   // backward: which half of the carry buffer holds dh_{t+1}
  rows: u32,     // colsum
  cols: u32,     // colsum
};

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64;
override HS: u32 = 128;   // hidden size
override BB: u32 = 4;     // batch rows per workgroup (<= 4)

var<workgroup> sh: array<f32, BB * HS * 4u>;

fn sigm(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-clamp(x, -40.0, 40.0)));
}

fn tanh_c(x: f32) -> f32 {
  return tanh(clamp(x, -15.0, 15.0));
}

// ------------------------------------------------------------------------------ forward step

@group(0) @binding(1) var<storage, read_write> f_hs: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_gates: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(4) var<storage, read> f_gi: array<f32>;
@group(0) @binding(5) var<storage, read> f_whhT: array<f32>;
@group(0) @binding(6) var<storage, read> f_bhh: array<f32>;
@group(0) @binding(7) var<storage, read> f_len: array<u32>;

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

// The gate arithmetic of one output (batch row b, hidden unit k) at step p.t, given h_{t-1}
// and gh = W_hh h + b_hh for the three gates: stores the gates (saved for the backward), the
// output and h_t; returns h_t. Padded steps (t >= len[b]) carry the state and store zeros.
fn gru_fwd_finish(b: u32, k: u32, hp: f32, gh: vec3<f32>) -> f32 {
  let H = p.H;
  let B = p.B;
  let t = p.t;
  let row = t * B + b;
  var hn = hp;
  if (t < f_len[b]) {
    let g = row * 3u * H;
    let r = sigm(f_gi[g + k] + gh.x);
    let z = sigm(f_gi[g + H + k] + gh.y);
    let n = tanh_c(f_gi[g + 2u * H + k] + r * gh.z);
    hn = (1.0 - z) * n + z * hp;
    f_gates[row * 4u * H + k] = r;
    f_gates[row * 4u * H + H + k] = z;
    f_gates[row * 4u * H + 2u * H + k] = n;
    f_gates[row * 4u * H + 3u * H + k] = gh.z;
    f_out[row * H + k] = hn;
  } else {
    for (var q = 0u; q < 4u; q++) { f_gates[row * 4u * H + q * H + k] = 0.0; }
    f_out[row * H + k] = 0.0;
  }
  f_hs[(row + B) * H + k] = hn;
  if (t + 1u == p.T) { f_out[(p.T * B + b) * H + k] = hn; }
  return hn;
}

// ------------------------------------------------------------------ forward step, SIMD-8 layout
// For lavapipe (a workgroup of 8 = one 8-lane CPU vector; see kernels/simd8/matmul.wgsl for what
// its compiler does with loads): there a storage or workgroup-memory load inside a loop is
// emitted lane by lane with a branch each, which made the step above ~3 ms at B32 H128. Here the
// three gate blocks of W_hh ([H, H] each, 64 KiB at H = 128) and h_{t-1} are bound as uniform
// buffers, read branch-free; a lane owns one hidden unit k and 16 batch rows, and the 16 rows of
// h are gathered two per lane and shared with subgroupBroadcast. h_t goes to hs (history) and
// to the other of two 64 KiB ping-pong buffers that the next step binds as its h_{t-1}.
// The host runs it where simd8 applies (H % 8 == 0, H <= 128, 16-padded B x H <= 16384).

@group(0) @binding(5) var<uniform> s_wr: array<vec4<f32>, 4096>;   // W_hr [k][c], c as vec4
@group(0) @binding(8) var<uniform> s_wz: array<vec4<f32>, 4096>;
@group(0) @binding(9) var<uniform> s_wn: array<vec4<f32>, 4096>;
@group(0) @binding(10) var<uniform> s_hprev: array<vec4<f32>, 4096>; // h_{t-1} [b][c]
@group(0) @binding(11) var<storage, read_write> s_hnext: array<f32>;

var<workgroup> s_tile: array<f32, 384>; // [gate][16 rows][8 lanes]

// Placeholder where the adapter has no subgroups: the host never runs this kernel there.
fn sg_unavailable(v: vec4<f32>, lane: u32) -> vec4<f32> { return v; }

@compute @workgroup_size(8)
fn gru_fwd_step_simd8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let H = p.H;
  let B = p.B;
  let t = p.t;
  let H4 = H / 4u;
  let k = wid.x * 8u + lane;
  let b0 = wid.y * 16u;
  var ar: array<f32, 16>;
  var az: array<f32, 16>;
  var an: array<f32, 16>;
  for (var c4 = 0u; c4 < H4; c4++) {
    let wr = s_wr[k * H4 + c4];
    let wz = s_wz[k * H4 + c4];
    let wn = s_wn[k * H4 + c4];
    let h0 = s_hprev[(b0 + lane) * H4 + c4];
    let h1 = s_hprev[(b0 + lane + 8u) * H4 + c4];
    { let hv = {{SG_BCAST}}(h0, 0u); ar[0] += dot(wr, hv); az[0] += dot(wz, hv); an[0] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 1u); ar[1] += dot(wr, hv); az[1] += dot(wz, hv); an[1] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 2u); ar[2] += dot(wr, hv); az[2] += dot(wz, hv); an[2] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 3u); ar[3] += dot(wr, hv); az[3] += dot(wz, hv); an[3] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 4u); ar[4] += dot(wr, hv); az[4] += dot(wz, hv); an[4] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 5u); ar[5] += dot(wr, hv); az[5] += dot(wz, hv); an[5] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 6u); ar[6] += dot(wr, hv); az[6] += dot(wz, hv); an[6] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 7u); ar[7] += dot(wr, hv); az[7] += dot(wz, hv); an[7] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 0u); ar[8] += dot(wr, hv); az[8] += dot(wz, hv); an[8] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 1u); ar[9] += dot(wr, hv); az[9] += dot(wz, hv); an[9] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 2u); ar[10] += dot(wr, hv); az[10] += dot(wz, hv); an[10] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 3u); ar[11] += dot(wr, hv); az[11] += dot(wz, hv); an[11] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 4u); ar[12] += dot(wr, hv); az[12] += dot(wz, hv); an[12] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 5u); ar[13] += dot(wr, hv); az[13] += dot(wz, hv); an[13] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 6u); ar[14] += dot(wr, hv); az[14] += dot(wz, hv); an[14] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 7u); ar[15] += dot(wr, hv); az[15] += dot(wz, hv); an[15] += dot(wn, hv); }
  }
  // Gate arithmetic in a loop the compiler keeps a loop (trip count p.rows = 16 at run time):
  // unrolled for 16 rows it would be most of the kernel's machine code.
  for (var r = 0u; r < 16u; r++) {
    s_tile[r * 8u + lane] = ar[r];
    s_tile[(16u + r) * 8u + lane] = az[r];
    s_tile[(32u + r) * 8u + lane] = an[r];
  }
  workgroupBarrier();
  let bhr = f_bhh[k];
  let bhz = f_bhh[H + k];
  let bhn = f_bhh[2u * H + k];
  for (var r = 0u; r < p.rows; r++) {
    let b = b0 + r;
    if (b >= B) { break; }
    let gh = vec3<f32>(s_tile[r * 8u + lane], s_tile[(16u + r) * 8u + lane], s_tile[(32u + r) * 8u + lane]);
    s_hnext[b * H + k] = gru_fwd_finish(b, k, f_hs[(t * B + b) * H + k], gh + vec3<f32>(bhr, bhz, bhn));
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
