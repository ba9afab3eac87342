// Sums over the WG invocations of a workgroup: a tree in workgroup memory in a fixed order, so a
// result does not depend on timing. WG is the including file's `override` (a power of two). Every
// invocation of the workgroup calls (there are barriers inside) and gets the total; the last
// barrier lets the next call reuse the scratch. Only the arrays an entry point's calls touch
// count against its workgroup memory.
var<workgroup> wg_sum_f32: array<f32, WG>;
var<workgroup> wg_sum_vec2: array<vec2<f32>, WG>;
var<workgroup> wg_sum_vec4: array<vec4<f32>, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  wg_sum_f32[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { wg_sum_f32[lid] += wg_sum_f32[lid + s]; }
    workgroupBarrier();
  }
  let r = wg_sum_f32[0];
  workgroupBarrier();
  return r;
}

fn wg_sum2(v: vec2<f32>, lid: u32) -> vec2<f32> {
  wg_sum_vec2[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { wg_sum_vec2[lid] += wg_sum_vec2[lid + s]; }
    workgroupBarrier();
  }
  let r = wg_sum_vec2[0];
  workgroupBarrier();
  return r;
}

fn wg_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
  wg_sum_vec4[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { wg_sum_vec4[lid] += wg_sum_vec4[lid + s]; }
    workgroupBarrier();
  }
  let r = wg_sum_vec4[0];
  workgroupBarrier();
  return r;
}
