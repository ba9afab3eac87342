// GRU: the parameter block (binding 0), the forward step's bindings and gru_fwd_finish, shared by
// kernels/gru.wgsl and kernels/simd8/gru.wgsl (`// include: gru-step`; the including file also
// includes activation: the gates are act_sigmoid and act_tanh, the unary ops' math).

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


// Forward step bindings (both step kernels; kernels/gru.wgsl's also binds W_hh^T at 5).
@group(0) @binding(1) var<storage, read_write> f_hs: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_gates: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(4) var<storage, read> f_gi: array<f32>;
@group(0) @binding(6) var<storage, read> f_bhh: array<f32>;
@group(0) @binding(7) var<storage, read> f_len: array<u32>;

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
    let r = act_sigmoid(f_gi[g + k] + gh.x);
    let z = act_sigmoid(f_gi[g + H + k] + gh.y);
    let n = act_tanh(f_gi[g + 2u * H + k] + r * gh.z);
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
