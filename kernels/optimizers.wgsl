// Fused optimizer updates and gradient clipping over many parameters at once ("multi-tensor
// apply", as apex and torch._foreach do it).
//
// The host packs the parameters it updates into a table of blocks: each row is
// (param offset, grad offset, state offset, length <= BLOCK) into the buffers bound to this
// dispatch, and one workgroup updates one row. Parameters created by nn live as slices of a few
// large arena buffers (src/engine/nn/parameter.ts) and their gradients as slices of a mirror
// arena, so one dispatch updates every parameter of an arena; the table is uploaded once and
// reused every step. Hyper-parameters (lr, betas, the step's bias corrections) come through the
// uniform block, so a learning-rate schedule never builds a new pipeline.
//
// Update formulas follow PyTorch's single-tensor implementations (torch/optim/sgd.py, adam.py,
// adamw.py), in the same order of operations.

struct Params {
  rows: u32,         // table rows in this dispatch
  first: u32,        // SGD: 1 on a parameter's first step (momentum buffer = d_p)
  n_partials: u32,   // clip_finish: partial sums to fold
  part_base: u32,    // sumsq: index of this dispatch's first partial sum
  lr: f32,
  wd: f32,
  a: f32,            // SGD momentum | Adam beta1
  b: f32,            // SGD dampening | Adam beta2
  eps: f32,
  step_size: f32,    // Adam: lr / (1 - beta1^step)
  bc2_sqrt: f32,     // Adam: sqrt(1 - beta2^step)
  max_norm: f32,     // clip_finish
};

@group(0) @binding(0) var<uniform> p: Params;

// optimizer steps: sgd (1..4), sgd_plain (1..3), adam (1..5), adam_amsgrad (1..6)
@group(0) @binding(1) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> s1: array<f32>;
@group(0) @binding(5) var<storage, read_write> s2: array<f32>;
@group(0) @binding(6) var<storage, read_write> s3: array<f32>;

// clipping: sumsq (blocks, partials, grad), clip_finish (partials_in, info), scale (blocks,
// gw, info_in). Entry points may share binding numbers: each one's layout
// holds only the variables it uses.
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> info: array<f32>;
@group(0) @binding(2) var<storage, read_write> gw: array<f32>;
@group(0) @binding(3) var<storage, read> info_in: array<f32>;

override WG: u32 = 256;
override NESTEROV: bool = false;
override DECOUPLED: bool = false;   // AdamW: weight decay applied to the parameter, not the grad

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// d_p = g + wd*p; buf = momentum*buf + (1-dampening)*d_p (buf = d_p on the first step);
// d_p = nesterov ? d_p + momentum*buf : buf; p -= lr*d_p.
@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let r = blocks[row];
  for (var k = lid.x; k < r.w; k += WG) {
    let pi = r.x + k;
    let w = param[pi];
    var d = grad[r.y + k];
    if (p.wd != 0.0) { d = d + p.wd * w; }
    var buf = d;
    if (p.first == 0u) { buf = p.a * s1[r.z + k] + (1.0 - p.b) * d; }
    s1[r.z + k] = buf;
    if (NESTEROV) { d = d + p.a * buf; } else { d = buf; }
    param[pi] = w - p.lr * d;
  }
}

// SGD without momentum: p -= lr * (g + wd*p).
@compute @workgroup_size(WG)
fn sgd_plain(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let r = blocks[row];
  for (var k = lid.x; k < r.w; k += WG) {
    let pi = r.x + k;
    let w = param[pi];
    var d = grad[r.y + k];
    if (p.wd != 0.0) { d = d + p.wd * w; }
    param[pi] = w - p.lr * d;
  }
}

// One Adam/AdamW element: returns the new parameter given the second-moment value to divide by.
fn adam_moments(pi: u32, gi: u32, si: u32) -> vec3<f32> {
  var w = param[pi];
  var g = grad[gi];
  if (DECOUPLED) { w = w * (1.0 - p.lr * p.wd); } else if (p.wd != 0.0) { g = g + p.wd * w; }
  let m = p.a * s1[si] + (1.0 - p.a) * g;
  let v = p.b * s2[si] + (1.0 - p.b) * g * g;
  s1[si] = m;
  s2[si] = v;
  return vec3<f32>(w, m, v);
}

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let r = blocks[row];
  for (var k = lid.x; k < r.w; k += WG) {
    let wmv = adam_moments(r.x + k, r.y + k, r.z + k);
    let denom = sqrt(wmv.z) / p.bc2_sqrt + p.eps;
    param[r.x + k] = wmv.x - p.step_size * (wmv.y / denom);
  }
}

@compute @workgroup_size(WG)
fn adam_amsgrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let r = blocks[row];
  for (var k = lid.x; k < r.w; k += WG) {
    let wmv = adam_moments(r.x + k, r.y + k, r.z + k);
    let vmax = max(s3[r.z + k], wmv.z);
    s3[r.z + k] = vmax;
    let denom = sqrt(vmax) / p.bc2_sqrt + p.eps;
    param[r.x + k] = wmv.x - p.step_size * (wmv.y / denom);
  }
}

// ------------------------------------------------------------------ clipping by global norm

// wg_sum: sums over the workgroup.
// include: workgroup-sum

// partials[part_base + row] = sum of g^2 over the row's block (grad offset in .y, length in .w).
@compute @workgroup_size(WG)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }   // uniform per workgroup: safe before the barriers
  let r = blocks[row];
  var s = 0.0;
  for (var k = lid.x; k < r.w; k += WG) {
    let g = grad[r.y + k];
    s = s + g * g;
  }
  let total = wg_sum(s, lid.x);
  if (lid.x == 0u) { partials[p.part_base + row] = total; }
}

// One workgroup: info[0] = sqrt(sum of partials) (the total norm), info[1] = the factor
// min(1, max_norm / (norm + 1e-6)) that torch.nn.utils.clip_grad_norm_ multiplies by.
@compute @workgroup_size(WG)
fn clip_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var k = lid.x; k < p.n_partials; k += WG) { s = s + partials_in[k]; }
  let total = wg_sum(s, lid.x);
  if (lid.x == 0u) {
    let norm = sqrt(total);
    info[0] = norm;
    info[1] = min(1.0, p.max_norm / (norm + 1e-6));
  }
}

// g *= info[1] over the row's block.
@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = row_of(wid, nwg);
  if (row >= p.rows) { return; }
  let r = blocks[row];
  let c = info_in[1];
  for (var k = lid.x; k < r.w; k += WG) { gw[r.y + k] = gw[r.y + k] * c; }
}
