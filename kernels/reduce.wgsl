// Row reductions: out[r] = reduce(x[r * cols + c] for c < cols) over a row-major [rows, cols]
// input (the host permutes the reduced axes innermost first).
//
// One workgroup per row, WG threads each folding a strided slice of the row, then a tree in
// workgroup memory.
//
// OP: 0 sum, 1 max, 2 min. f32 only (integer reductions are not needed by the models).

struct Params {
  rows: u32,
  cols: u32,
  off_in: u32,
  scale_bits: u32,   // the result is multiplied by this (1 for sum, 1/cols for mean)
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

override WG: u32 = 256;
override OP: u32 = 0;

var<workgroup> acc: array<f32, WG>;

fn identity() -> f32 {
  switch OP {
    case 1u: { return -3.402823466e38; }
    case 2u: { return 3.402823466e38; }
    default: { return 0.0; }
  }
}

fn combine(u: f32, v: f32) -> f32 {
  switch OP {
    case 1u: { return max(u, v); }
    case 2u: { return min(u, v); }
    default: { return u + v; }
  }
}

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }   // uniform per workgroup: safe before the barriers
  let base = p.off_in + row * p.cols;
  var v = identity();
  for (var c = lid.x; c < p.cols; c += WG) {
    v = combine(v, x[base + c]);
  }
  acc[lid.x] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid.x < s) { acc[lid.x] = combine(acc[lid.x], acc[lid.x + s]); }
    workgroupBarrier();
  }
  if (lid.x == 0u) { out[row] = acc[0] * bitcast<f32>(p.scale_bits); }
}
