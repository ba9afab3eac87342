// Activations: the one copy of their math, appended by `// include: activation` to every family
// that applies one (unary, matmul's and conv's fused epilogues, the GRU step's gates), so a fused
// epilogue and the unary op give the same bits on the same input (test/engine/activation.test.ts).
//
// Codes (the ACT overrides; src/engine/ops/activation.ts holds the same table for the host):
//   0 none, 1 relu, 2 leaky_relu (slope alpha), 3 tanh, 4 sigmoid, 5 gelu (erf form),
//   6 gelu (tanh approximation).
//
// Numerics: WGSL's exp/tanh are loosely specified at the edges and some drivers return garbage
// there, so nothing feeds exp a large positive argument: tanh and sigmoid go through
// e = exp(-|x|) (in (0, 1]), tanh by its Taylor series below |x| = 1/16 (where (1 - e)/(1 + e)
// would cancel), the exact GELU through the normal CDF from erfc of |x| (relative accuracy in the
// tails), the tanh GELU as x * sigmoid(2u) (no cancellation for negative x). NaN in, NaN out.

const ACT_SQRT1_2: f32 = 0.70710678118654752;
const ACT_INV_SQRT_2PI: f32 = 0.39894228040143268;
const ACT_SQRT_2_OVER_PI: f32 = 0.79788456080286536;
const ACT_GELU_C: f32 = 0.044715;

// On the bits: compilers may fold x != x to false.
fn act_is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// exp(-z) for z >= 0 (or +inf): never overflows; arguments past f32's underflow give 0.
fn act_exp_neg(z: f32) -> f32 {
  return exp(-min(z, 104.0));
}

fn act_tanh(x: f32) -> f32 {
  let ax = abs(x);
  if (ax < 0.0625) {
    let x2 = x * x;
    return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
  }
  let e = act_exp_neg(2.0 * ax);
  let t = (1.0 - e) / (1.0 + e);
  return select(t, -t, x < 0.0);
}

fn act_sigmoid(x: f32) -> f32 {
  let e = act_exp_neg(abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// sigmoid'(x) = e / (1 + e)^2 with e = exp(-|x|) (symmetric, no cancellation).
fn act_sigmoid_deriv(x: f32) -> f32 {
  let e = act_exp_neg(abs(x));
  let d = 1.0 + e;
  return e / (d * d);
}

// erfc(z) for z >= 0 with relative error below 1.2e-7 (Numerical Recipes' Chebyshev fit erfcc).
fn act_erfc_pos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * act_exp_neg(z * z - poly);
}

// Standard normal CDF: 0.5 * erfc(-x / sqrt 2), relative accuracy in the lower tail.
fn act_normal_cdf(x: f32) -> f32 {
  let h = 0.5 * act_erfc_pos(abs(x) * ACT_SQRT1_2);
  return select(1.0 - h, h, x < 0.0);
}

fn act_gelu_tanh_u(x: f32) -> f32 {
  return ACT_SQRT_2_OVER_PI * (x + ACT_GELU_C * x * x * x);
}

// act(x) for an activation code; alpha is leaky_relu's slope.
fn act_apply(code: u32, x: f32, alpha: f32) -> f32 {
  if (code == 0u || act_is_nan(x)) { return x; }
  switch code {
    case 1u: { return select(x, 0.0, x < 0.0); }
    case 2u: { return select(x, x * alpha, x < 0.0); }
    case 3u: { return act_tanh(x); }
    case 4u: { return act_sigmoid(x); }
    case 5u: { return x * act_normal_cdf(x); }
    case 6u: { return x * act_sigmoid(2.0 * act_gelu_tanh_u(x)); }
    default: { return x; }
  }
}

// act'(x) from the activation's input, as PyTorch defines it at the kinks (relu'(0) = 0).
fn act_deriv(code: u32, x: f32, alpha: f32) -> f32 {
  switch code {
    case 1u: { return select(0.0, 1.0, x > 0.0); }
    case 2u: { return select(alpha, 1.0, x > 0.0); }
    case 3u: {
      // 1 - tanh^2 = 4e / (1 + e)^2, e = exp(-2|x|)
      let e = act_exp_neg(2.0 * abs(x));
      let d = 1.0 + e;
      return 4.0 * e / (d * d);
    }
    case 4u: { return act_sigmoid_deriv(x); }
    case 5u: { return act_normal_cdf(x) + x * ACT_INV_SQRT_2PI * act_exp_neg(0.5 * x * x); }
    case 6u: {
      // past |x| = 20 the second term underflows, and x^3 could overflow to inf * 0
      if (abs(x) > 20.0) { return select(0.0, 1.0, x > 0.0); }
      let u = act_gelu_tanh_u(x);
      let du = ACT_SQRT_2_OVER_PI * (1.0 + 3.0 * ACT_GELU_C * x * x);
      return act_sigmoid(2.0 * u) + x * act_sigmoid_deriv(2.0 * u) * 2.0 * du;
    }
    default: { return 1.0; }
  }
}

// act'(x) from the activation's output y = act(x), for the codes where y determines it (relu,
// leaky_relu with alpha > 0, tanh, sigmoid); the others return 1 (callers save the input instead).
fn act_deriv_from_output(code: u32, y: f32, alpha: f32) -> f32 {
  switch code {
    case 1u: { return select(0.0, 1.0, y > 0.0); }
    case 2u: { return select(alpha, 1.0, y > 0.0); }
    case 3u: { return 1.0 - y * y; }
    case 4u: { return y * (1.0 - y); }
    default: { return 1.0; }
  }
}
