// Unary elementwise ops and their derivatives, `where`, and tensor ^ tensor (kernels/elementwise.wgsl's
// strided scheme, extended to a fourth operand).
//
// Parameter block: the one of elementwise.wgsl, with the last header word holding the fourth
// operand's offset and one more stride array. Operands: out, a, b, c (c is where's condition;
// unused operands get zero strides). Each entry point binds only the buffers it reads, in order.
// alpha/beta carry the op's scalars (leaky slope, softplus beta/threshold, clamp bounds, exponent).
//
// Numerics: WGSL's exp/tanh/log are only loosely specified at the edges (overflow, 0, infinities),
// and some drivers return garbage there, so every op uses a form that never feeds exp a large
// positive argument: tanh and sigmoid through e = exp(-|x|) (in (0, 1]), softplus as
// max(z, 0) + log1p(exp(-|z|)) with a series log1p, the normal CDF of the exact GELU through
// erfc of |x| (relative accuracy in the tails), and explicit infinities for log(0), rsqrt(0) and
// exp overflow.
//
// OP selects the op for `unary`/`unary_flat` (forward) and `unary_grad`/`unary_grad_flat`
// (out = g * f'(x), a = x, b = g): 0 neg, 1 abs, 2 exp, 3 log, 4 sqrt, 5 rsqrt, 6 relu,
// 7 leaky_relu(alpha = slope), 8 tanh, 9 sigmoid, 10 gelu (erf), 11 gelu (tanh approximation),
// 12 softplus(alpha = beta, beta = threshold), 13 clamp(alpha = min, beta = max), 14 pow(alpha =
// exponent), 15 square, 16 reciprocal, 17 sin, 18 cos.
// The activations (relu .. gelu) come from kernels/activation.wgsl.
// The element type placeholder is where's value type; the other entry points run with f32 only
// (their conversions make the module valid for any element type).

// include: activation

struct Params {
  n: u32,
  rank: u32,
  off_out: u32,
  off_a: u32,
  off_b: u32,
  alpha_bits: u32,
  beta_bits: u32,
  off_c: u32,
  shape: array<vec4<u32>, 2>,
  st_out: array<vec4<u32>, 2>,
  st_a: array<vec4<u32>, 2>,
  st_b: array<vec4<u32>, 2>,
  st_c: array<vec4<u32>, 2>,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> a: array<{{T}}>;
@group(0) @binding(3) var<storage, read> b: array<{{T}}>;
// where's condition, read as raw bits whatever its dtype (f32, i32, u32)
@group(0) @binding(4) var<storage, read> cond: array<u32>;

override WG: u32 = 256;
override OP: u32 = 0;

const LN_FLT_MAX: f32 = 88.72283;

fn dim(v: array<vec4<u32>, 2>, i: u32) -> u32 {
  return v[i / 4u][i % 4u];
}

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Offsets of output element i in out, a, b and c.
// The host coalesces dimensions first, so rank 1 (no division) is common.
fn offsets(i: u32) -> vec4<u32> {
  var o = vec4<u32>(p.off_out, p.off_a, p.off_b, p.off_c);
  if (p.rank == 1u) {
    return o + i * vec4<u32>(p.st_out[0].x, p.st_a[0].x, p.st_b[0].x, p.st_c[0].x);
  }
  var rem = i;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let ud = u32(d);
    let size = dim(p.shape, ud);
    let k = rem % size;
    rem = rem / size;
    o += k * vec4<u32>(dim(p.st_out, ud), dim(p.st_a, ud), dim(p.st_b, ud), dim(p.st_c, ud));
  }
  return o;
}

fn alpha() -> f32 { return bitcast<f32>(p.alpha_bits); }
fn beta() -> f32 { return bitcast<f32>(p.beta_bits); }

// Infinity and NaN built at run time (a constant infinity is a shader-creation error in WGSL).
fn inf() -> f32 { return bitcast<f32>(0x7f800000u | (p.n & 0u)); }
fn nan() -> f32 { return bitcast<f32>(0x7fc00000u | (p.n & 0u)); }

// On the bits: compilers may fold x != x to false.
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn exp_safe(x: f32) -> f32 {
  return select(exp(min(x, LN_FLT_MAX)), inf(), x > LN_FLT_MAX);
}

fn log_safe(x: f32) -> f32 {
  if (x == 0.0) { return -inf(); }
  if (x < 0.0) { return nan(); }
  return log(x);
}

// log(1 + e) for e in [0, 1] with relative accuracy (WGSL's log is only absolutely accurate near
// 1, which loses softplus's tail): 2 atanh(s), s = e / (2 + e) <= 1/3, by its odd series.
fn log1p_unit(e: f32) -> f32 {
  let s = e / (2.0 + e);
  let s2 = s * s;
  return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 +
    s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0 + s2 * (1.0 / 17.0)))))))));
}

// x^y following C pow / PyTorch: integer exponents of negative bases keep their sign, other
// exponents of negative bases give NaN, 0^y is 0, 1 or inf, x^0 is 1.
fn pow_safe(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (is_nan(x) || is_nan(y)) { return nan(); }
  if (y == 1.0) { return x; }
  if (y == 2.0) { return x * x; }
  if (x == 0.0) { return select(inf(), 0.0, y > 0.0); }
  if (floor(y) == y && abs(y) <= 64.0) {
    // small integer exponents by repeated squaring: exact for exactly representable results
    var e = u32(abs(y));
    var base = x;
    var r = 1.0;
    loop {
      if ((e & 1u) == 1u) { r *= base; }
      e = e >> 1u;
      if (e == 0u) { break; }
      base *= base;
    }
    return select(r, 1.0 / r, y < 0.0);
  }
  if (y == 0.5 && x > 0.0) { return sqrt(x); }
  let ax = abs(x);
  let r = exp2(y * log2(ax));
  if (x > 0.0) { return r; }
  if (floor(y) != y) { return nan(); }
  // an odd integer exponent keeps the sign (y/2 is exact, so this test is exact)
  let odd = floor(y * 0.5) != y * 0.5;
  return select(r, -r, odd);
}

fn forward(x: f32) -> f32 {
  // NaN in, NaN out (the stable forms below would turn it into a number); pow decides for itself
  // because NaN^0 is 1.
  if (is_nan(x) && OP != 14u) { return x; }
  switch OP {
    case 0u: { return -x; }
    case 1u: { return abs(x); }
    case 2u: { return exp_safe(x); }
    case 3u: { return log_safe(x); }
    case 4u: { return select(sqrt(x), nan(), x < 0.0); }
    case 5u: {
      if (x == 0.0) { return inf(); }
      return select(inverseSqrt(x), nan(), x < 0.0);
    }
    // the activations: kernels/activation.wgsl, as matmul's and conv's fused epilogues apply them
    case 6u: { return act_apply(1u, x, 0.0); }
    case 7u: { return act_apply(2u, x, alpha()); }
    case 8u: { return act_apply(3u, x, 0.0); }
    case 9u: { return act_apply(4u, x, 0.0); }
    case 10u: { return act_apply(5u, x, 0.0); }
    case 11u: { return act_apply(6u, x, 0.0); }
    case 12u: {
      let z = x * alpha();
      if (z > beta()) { return x; }
      return (max(z, 0.0) + log1p_unit(act_exp_neg(abs(z)))) / alpha();
    }
    case 13u: { return select(select(x, alpha(), x < alpha()), beta(), x > beta()); }
    case 14u: { return pow_safe(x, alpha()); }
    case 15u: { return x * x; }
    case 16u: { return 1.0 / x; }
    case 17u: { return sin(x); }
    case 18u: { return cos(x); }
    default: { return x; }
  }
}

// g * f'(x), as PyTorch defines the derivative at the kinks (relu'(0) = 0, abs'(0) = 0).
fn backward(x: f32, g: f32) -> f32 {
  switch OP {
    case 0u: { return -g; }
    case 1u: { return g * sign(x); }
    case 2u: { return g * exp_safe(x); }
    case 3u: { return g / x; }
    case 4u: { return g * 0.5 / sqrt(x); }
    case 5u: {
      let r = forward(x);
      return -0.5 * g * r * r * r;
    }
    case 6u: { return select(0.0, g, x > 0.0); }
    case 7u: { return select(g * alpha(), g, x > 0.0); }
    case 8u: { return g * act_deriv(3u, x, 0.0); }
    case 9u: { return g * act_sigmoid_deriv(x); }
    case 10u: { return g * act_deriv(5u, x, 0.0); }
    case 11u: {
      if (abs(x) > 20.0) { return select(0.0, g, x > 0.0); }
      return g * act_deriv(6u, x, 0.0);
    }
    case 12u: {
      let z = x * alpha();
      if (z > beta()) { return g; }
      return g * act_sigmoid(z);
    }
    case 13u: { return select(0.0, g, x >= alpha() && x <= beta()); }
    case 14u: {
      let y = alpha();
      if (y == 0.0) { return 0.0; }
      return g * y * pow_safe(x, y - 1.0);
    }
    case 15u: { return 2.0 * x * g; }
    case 16u: { return -g / (x * x); }
    case 17u: { return g * cos(x); }
    case 18u: { return -g * sin(x); }
    default: { return g; }
  }
}

@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[o.x] = {{T}}(forward(f32(a[o.y])));
}

@compute @workgroup_size(WG)
fn unary_flat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  out[p.off_out + i] = {{T}}(forward(f32(a[p.off_a + i])));
}

// out = b * f'(a): a is the forward's input, b the incoming gradient.
@compute @workgroup_size(WG)
fn unary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[o.x] = {{T}}(backward(f32(a[o.y]), f32(b[o.z])));
}

@compute @workgroup_size(WG)
fn unary_grad_flat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  out[p.off_out + i] = {{T}}(backward(f32(a[p.off_a + i]), f32(b[p.off_b + i])));
}

// where(cond, a, b): cond's bits are read raw; alpha_bits = 1 when cond is f32 (then -0.0 is
// false too), 0 for integer conditions. A NaN condition counts as true (as bool(nan) does).
@compute @workgroup_size(WG)
fn where_select(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  var bits = cond[o.w];
  if (p.alpha_bits == 1u) { bits = bits & 0x7fffffffu; }
  out[o.x] = select(b[o.z], a[o.y], bits != 0u);
}

// Tensor ^ tensor with broadcasting. OP 0: a^b; 1: d(a^b)/da = b a^(b-1); 2: d(a^b)/db =
// a^b log a, taken as 0 where a == 0 and b >= 0 (PyTorch's convention, where the limit is 0).
@compute @workgroup_size(WG)
fn pow_tt(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  let x = f32(a[o.y]);
  let y = f32(b[o.z]);
  var r: f32;
  switch OP {
    case 1u: { r = select(y * pow_safe(x, y - 1.0), 0.0, y == 0.0); }
    case 2u: { r = select(pow_safe(x, y) * log_safe(x), 0.0, x == 0.0 && y >= 0.0); }
    default: { r = pow_safe(x, y); }
  }
  out[o.x] = {{T}}(r);
}
