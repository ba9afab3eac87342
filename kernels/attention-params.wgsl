// Attention's parameter block (binding 0), head dimension, masks' sentinel and the dropout hash,
// shared by kernels/attention.wgsl and kernels/simd8/attention.wgsl (`// include: attention-params`).

struct Params {
  B: u32,
  H: u32,
  Tq: u32,
  Tk: u32,
  scale: f32,
  causal: u32,
  has_mask: u32,
  use_drop: u32,
  drop_thr: u32,     // keep iff hash >= drop_thr (= p * 2^32)
  drop_scale: f32,   // 1 / (1 - p)
  seed: u32,
  bh: u32,           // the SIMD-8 kernels: the (batch, head) of this dispatch
  q_st: vec4<u32>,   // strides of q along b, h, t, d
  k_st: vec4<u32>,
  v_st: vec4<u32>,
  offs: vec4<u32>,   // offsets of q, k, v, mask (elements)
};

@group(0) @binding(0) var<uniform> p: Params;

override DH: u32 = 64;    // head dimension (<= DMAX)
const DMAX: u32 = 128u;
const NEG: f32 = -3.0e38;

fn hash(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn row_key(bh: u32, i: u32) -> u32 {
  return hash(hash(hash(p.seed) ^ bh) ^ i);
}

/** 1/(1-p) for a kept weight, 0 for a dropped one, 1 without dropout. */
fn drop_factor(rk: u32, j: u32) -> f32 {
  if (p.use_drop == 0u) { return 1.0; }
  return select(0.0, p.drop_scale, hash(rk ^ (j * 0x9e3779b9u)) >= p.drop_thr);
}
