// out[off + i] = value for i < n (fill), or start + i * step (arange). {{T}} is the element type;
// WG the workgroup size.
struct Params {
  n: u32,
  off_out: u32,
  value_bits: u32,   // fill's value; arange's start
  step_bits: u32,    // arange's step (unused by fill)
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  out[p.off_out + i] = bitcast<{{T}}>(p.value_bits);
}

// start + i * step in the element type (f32: i is exact below 2^24; a product and a sum round).
@compute @workgroup_size(WG)
fn arange(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  out[p.off_out + i] = bitcast<{{T}}>(p.value_bits) + {{T}}(i) * bitcast<{{T}}>(p.step_bits);
}
