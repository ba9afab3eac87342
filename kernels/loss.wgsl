// Fused losses over logits x [rows, cols] (row-major from off_x).
//
// Cross-entropy (one workgroup per row): an online (max m, sum s of exp(x - m)) fold
// (kernels/online-softmax.wgsl) gives lse = m + log s with every exponent <= 0, so no logit
// scale overflows; the same sweep sums x (label smoothing, the uniform target) and, for soft
// targets, q and q * x.
//   hard target t, smoothing e: loss = (1 - e) (lse - x_t) + e (lse - mean_c x_c)
//   soft q, q' = (1 - e) q + e / C: loss = lse * sum q' - sum q' x
//   uniform target (MODE 2):        loss = lse - mean_c x_c
// A target equal to `ignore` gives loss 0 and weight 0. A target outside [0, C) is never used
// as an index: it is treated as ignored and recorded in the error register (`flags`), which the
// host reads only when asked (checkIndexErrors / validateTargets), so no step waits on the GPU.
// The backward is (softmax - target distribution) * w[row], the softmax rebuilt from the saved
// lse; w folds the incoming gradient, the ignore mask and the 1/count of a mean.
//
// Error register (i32): [0] count of bad indices, [1] bits of the ops that saw one, [2] min bad
// value, [3] max bad value, [4] first bad position (atomicMin).

struct Params {
  rows: u32,
  cols: u32,
  off_x: u32,
  off_t: u32,
  ignore: i32,
  smooth_bits: u32,   // label smoothing e
  op_bit: u32,        // this op's bit in flags[1]
  off_q: u32,
};

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256;
// 0 hard targets, 2 uniform target (targets not read)
override MODE: u32 = 0;

// The online-softmax state, its merge and workgroup tree; workgroup sums.
// include: online-softmax
// include: workgroup-sum

// The row's log-sum-exp and sum of x, in every invocation of the workgroup.
fn fold_row(lid: u32, base: u32) -> vec2<f32> {
  var st = vec2<f32>(NEG_BIG, 0.0);
  var sx = 0.0;
  for (var k = lid; k < p.cols; k += WG) {
    let v = ce_x[p.off_x + base + k];
    st = softmax_push(st, v);
    sx += v;
  }
  let row_st = wg_softmax(st, lid);
  return vec2<f32>(row_st.x + log(row_st.y), wg_sum(sx, lid));
}

// ------------------------------------------------------------------ hard targets / uniform

@group(0) @binding(1) var<storage, read_write> ce_loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> ce_lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> ce_w: array<f32>;
@group(0) @binding(4) var<storage, read> ce_x: array<f32>;
@group(0) @binding(5) var<storage, read> ce_t: array<i32>;
@group(0) @binding(6) var<storage, read_write> flags: array<atomic<i32>>;

fn record_bad(value: i32, pos: u32) {
  atomicAdd(&flags[0], 1);
  atomicOr(&flags[1], i32(p.op_bit));
  atomicMin(&flags[2], value);
  atomicMax(&flags[3], value);
  atomicMin(&flags[4], i32(pos));
}

@compute @workgroup_size(WG)
fn ce_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }   // uniform per workgroup
  let lid = lid3.x;
  let base = row * p.cols;
  let folded = fold_row(lid, base);
  if (lid != 0u) { return; }
  let lse = folded.x;
  let mean_x = folded.y / f32(p.cols);
  let e = bitcast<f32>(p.smooth_bits);
  var loss = 0.0;
  var w = 0.0;
  if (MODE == 2u) {
    loss = lse - mean_x;
    w = 1.0;
  } else {
    let t = ce_t[p.off_t + row];
    if (t != p.ignore) {
      if (t >= 0 && u32(t) < p.cols) {
        loss = (1.0 - e) * (lse - ce_x[p.off_x + base + u32(t)]) + e * (lse - mean_x);
        w = 1.0;
      } else {
        record_bad(t, row);
      }
    }
  }
  ce_loss[row] = loss;
  ce_lse[row] = lse;
  ce_w[row] = w;
}

// dx[r, c] = w[r] * (softmax - (1 - e) [c == t] - e / C); MODE 2: w[r] * (softmax - 1 / C).
@group(0) @binding(1) var<storage, read_write> cb_dx: array<f32>;
@group(0) @binding(2) var<storage, read> cb_x: array<f32>;
@group(0) @binding(3) var<storage, read> cb_t: array<i32>;
@group(0) @binding(4) var<storage, read> cb_lse: array<f32>;
@group(0) @binding(5) var<storage, read> cb_w: array<f32>;

@compute @workgroup_size(WG)
fn ce_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i % p.cols;
  let e = bitcast<f32>(p.smooth_bits);
  let soft = exp_neg(min(cb_x[p.off_x + i] - cb_lse[r], 0.0));
  var tgt = e / f32(p.cols);
  if (MODE == 2u) {
    tgt = 1.0 / f32(p.cols);
  } else if (cb_t[p.off_t + r] == i32(c)) {   // compared, never used as an index
    tgt += 1.0 - e;
  }
  cb_dx[i] = cb_w[r] * (soft - tgt);
}

// ------------------------------------------------------------------------------ soft targets

@group(0) @binding(1) var<storage, read_write> cs_loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> cs_sumq: array<f32>;
@group(0) @binding(4) var<storage, read> cs_x: array<f32>;
@group(0) @binding(5) var<storage, read> cs_q: array<f32>;

@compute @workgroup_size(WG)
fn ce_soft_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid3: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = row * p.cols;
  var st = vec2<f32>(NEG_BIG, 0.0);
  var sums = vec4<f32>(0.0);   // x, q, q x
  for (var k = lid; k < p.cols; k += WG) {
    let v = cs_x[p.off_x + base + k];
    let q = cs_q[p.off_q + base + k];
    st = softmax_push(st, v);
    sums += vec4<f32>(v, q, q * v, 0.0);
  }
  let row_st = wg_softmax(st, lid);
  let row_sums = wg_sum4(sums, lid);
  if (lid != 0u) { return; }
  let e = bitcast<f32>(p.smooth_bits);
  let lse = row_st.x + log(row_st.y);
  let n = f32(p.cols);
  // q' = (1 - e) q + e / C: sum q' = (1 - e) sum q + e, sum q' x = (1 - e) sum q x + e mean x
  let sum_q = (1.0 - e) * row_sums.y + e;
  let sum_qx = (1.0 - e) * row_sums.z + e * row_sums.x / n;
  cs_loss[row] = lse * sum_q - sum_qx;
  cs_lse[row] = lse;
  cs_sumq[row] = sum_q;
}

// dx = w[r] (softmax * sum q' - q'); dq = w[r] (1 - e) (lse - x) (the targets' gradient, when
// they require one: DQ = 1).
@group(0) @binding(1) var<storage, read_write> sb_dx: array<f32>;
@group(0) @binding(2) var<storage, read> sb_x: array<f32>;
@group(0) @binding(3) var<storage, read> sb_q: array<f32>;
@group(0) @binding(4) var<storage, read> sb_lse: array<f32>;
@group(0) @binding(5) var<storage, read> sb_sumq: array<f32>;
@group(0) @binding(6) var<storage, read> sb_w: array<f32>;

override DQ: u32 = 0;

@compute @workgroup_size(WG)
fn ce_soft_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let e = bitcast<f32>(p.smooth_bits);
  let d = sb_x[p.off_x + i] - sb_lse[r];
  if (DQ == 1u) {
    sb_dx[i] = sb_w[r] * (1.0 - e) * (-d);
  } else {
    let q = (1.0 - e) * sb_q[p.off_q + i] + e / f32(p.cols);
    sb_dx[i] = sb_w[r] * (exp_neg(min(d, 0.0)) * sb_sumq[r] - q);
  }
}

// ------------------------------------------------------------------------------------ NLL

// loss[r] = -x[r, t_r] (0 and weight 0 when ignored or out of range; out of range recorded).
@group(0) @binding(1) var<storage, read_write> nl_loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> nl_w: array<f32>;
@group(0) @binding(3) var<storage, read> nl_x: array<f32>;
@group(0) @binding(4) var<storage, read> nl_t: array<i32>;
@group(0) @binding(5) var<storage, read_write> nl_flags: array<atomic<i32>>;

@compute @workgroup_size(WG)
fn nll_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) { return; }
  let t = nl_t[p.off_t + r];
  var loss = 0.0;
  var w = 0.0;
  if (t != p.ignore) {
    if (t >= 0 && u32(t) < p.cols) {
      loss = -nl_x[p.off_x + r * p.cols + u32(t)];
      w = 1.0;
    } else {
      atomicAdd(&nl_flags[0], 1);
      atomicOr(&nl_flags[1], i32(p.op_bit));
      atomicMin(&nl_flags[2], t);
      atomicMax(&nl_flags[3], t);
      atomicMin(&nl_flags[4], i32(r));
    }
  }
  nl_loss[r] = loss;
  nl_w[r] = w;
}

// dx[r, c] = -w[r] [c == t_r]
@group(0) @binding(1) var<storage, read_write> nb_dx: array<f32>;
@group(0) @binding(2) var<storage, read> nb_t: array<i32>;
@group(0) @binding(3) var<storage, read> nb_w: array<f32>;

@compute @workgroup_size(WG)
fn nll_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  nb_dx[i] = select(0.0, -nb_w[r], nb_t[p.off_t + r] == i32(i % p.cols));
}

// ------------------------------------------------------------------------------------ BCE

// Binary cross-entropy with logits, elementwise over n = rows values (x from off_x, y from
// off_q): loss = max(x, 0) - x y + log(1 + exp(-|x|)), which never overflows; its gradient is
// sigmoid(x) - y, with sigmoid in the branch that only exponentiates -|x|.
@group(0) @binding(1) var<storage, read_write> bc_out: array<f32>;
@group(0) @binding(2) var<storage, read> bc_x: array<f32>;
@group(0) @binding(3) var<storage, read> bc_y: array<f32>;

fn log1p_small(e: f32) -> f32 {
  // log(1 + e) for e in [0, 1]: the series where 1 + e would round e away
  return select(log(1.0 + e), e * (1.0 - e * (0.5 - e / 3.0)), e < 1e-3);
}

@compute @workgroup_size(WG)
fn bce_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows) { return; }
  let x = bc_x[p.off_x + i];
  let y = bc_y[p.off_q + i];
  bc_out[i] = max(x, 0.0) - x * y + log1p_small(exp_neg(-abs(x)));
}

// dx = g[i * cols] * scale * (sigmoid(x) - y); dy = -g * scale * x (DQ = 1). `cols` is the
// stride of g (0 when g is the scalar of a reduced loss), `off_t` carries the scale's bits.
@group(0) @binding(1) var<storage, read_write> bb_out: array<f32>;
@group(0) @binding(2) var<storage, read> bb_x: array<f32>;
@group(0) @binding(3) var<storage, read> bb_y: array<f32>;
@group(0) @binding(4) var<storage, read> bb_g: array<f32>;

@compute @workgroup_size(WG)
fn bce_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows) { return; }
  let x = bb_x[p.off_x + i];
  let gs = bb_g[i * p.cols] * bitcast<f32>(p.off_t);
  if (DQ == 1u) {
    bb_out[i] = -gs * x;
  } else {
    let e = exp_neg(-abs(x));
    let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
    bb_out[i] = gs * (sig - bb_y[p.off_q + i]);
  }
}
