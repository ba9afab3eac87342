// The online softmax state of a row (or of a slice of it): vec2(m, s), the running maximum m and
// the sum s of exp(x - m). softmax_push folds one value in, softmax_merge two states (the tree
// step across a workgroup), so a row is read once and no exp overflows. The empty state is
// vec2(NEG_BIG, 0). log-sum-exp = m + log(s).
const NEG_BIG: f32 = -3.402823466e38;

// exp of a non-positive argument; flushes what underflows anyway (some drivers misbehave on
// huge negative arguments, e.g. -inf - finite).
fn exp_neg(d: f32) -> f32 {
  return select(exp(d), 0.0, d < -88.0);
}

fn softmax_push(st: vec2<f32>, v: f32) -> vec2<f32> {
  if (v > st.x) { return vec2<f32>(v, st.y * exp_neg(st.x - v) + 1.0); }
  return vec2<f32>(st.x, st.y + exp_neg(v - st.x));
}

fn softmax_merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp_neg(a.x - m) + b.y * exp_neg(b.x - m));
}

// The states of a workgroup's WG invocations merged in a fixed tree (WG: the including file's
// `override`, a power of two); every invocation calls and gets the row's state.
var<workgroup> wg_softmax_st: array<vec2<f32>, WG>;

fn wg_softmax(st: vec2<f32>, lid: u32) -> vec2<f32> {
  wg_softmax_st[lid] = st;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { wg_softmax_st[lid] = softmax_merge(wg_softmax_st[lid], wg_softmax_st[lid + s]); }
    workgroupBarrier();
  }
  let r = wg_softmax_st[0];
  workgroupBarrier();
  return r;
}
