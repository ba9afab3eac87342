// conv2d's parameter block (binding 0), bindings, geometry overrides and helpers, shared by
// kernels/conv2d.wgsl and kernels/simd8/conv2d.wgsl (`// include: conv2d-params`; the including
// file also includes activation).

struct Params {
  cols: u32,          // GEMM columns
  kdim: u32,          // GEMM reduction length (weight grad: N*OH*OW)
  k_per_split: u32,   // weight grad: reduction elements per split (a multiple of BK)
  n: u32,             // elements (direct kernels, act_grad, sum_splits)
  off_out: u32,
  off_a: u32,
  off_b: u32,
  off_c: u32,
  alpha: f32,         // leaky ReLU slope of the fused epilogue
  batch: u32,
  len: u32,           // sum_splits: elements per split; bias_grad: N
  _pad: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;
// A 64 KiB uniform window in place of `b` (kernels that read their shared operand branch-free:
// direct_dgrad_u, wgrad_narrow, dgrad_simd8, fwd_narrow_simd8; see their comments for its layout).
@group(0) @binding(3) var<uniform> uwin: array<vec4<f32>, 4096>;

override IC: u32 = 1u;      // input channels (all groups)
override IH: u32 = 1u;
override IW: u32 = 1u;
override OC: u32 = 1u;      // output channels (all groups)
override OH: u32 = 1u;
override OW: u32 = 1u;
override KH: u32 = 1u;
override KW: u32 = 1u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override GROUPS: u32 = 1u;
override SPLITS: u32 = 1u;
override ACT: u32 = 0u;      // fused epilogue: an activation code of kernels/activation.wgsl (relu, leaky relu, tanh)
override HAS_BIAS: bool = false;
override TX: u32 = 16u;
override TY: u32 = 16u;
override BK: u32 = 16u;
override WG: u32 = 256u;
override SG_ROWS: bool = false;

fn cig() -> u32 { return IC / GROUPS; }
fn cog() -> u32 { return OC / GROUPS; }

fn activate(v: f32) -> f32 { return act_apply(ACT, v, p.alpha); }
