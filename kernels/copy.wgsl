// Strided copy: what `contiguous` and the movement ops (transpose, slice, concat, pad) need.
// {{T}} is the element type; WG the workgroup size.
// include: index

struct Params {
  n: u32,
  rank: u32,
  off_out: u32,
  off_a: u32,
  _p0: u32,
  _p3: u32,
  _p1: u32,
  _p2: u32,
  shape: array<vec4<u32>, 2>,
  st_out: array<vec4<u32>, 2>,
  st_a: array<vec4<u32>, 2>,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> a: array<{{T}}>;

override WG: u32 = 256;

fn dim(v: array<vec4<u32>, 2>, i: u32) -> u32 {
  return v[i / 4u][i % 4u];
}

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// out (strided) = a (strided): gathers a view into contiguous memory, or scatters into a view.
// A thread copies RUN consecutive elements: the index is decomposed into per-dimension
// coordinates once, then stepped along the innermost dimension (decomposed again only where a
// row ends). The decomposition, not the copy, is what costs on a CPU adapter.
const RUN: u32 = 8u;

// Offsets in out and a of flat element i, and i's coordinate along the innermost dimension.
fn copy_offsets(i: u32) -> vec3<u32> {
  var rem = i;
  var oo = p.off_out;
  var oa = p.off_a;
  var inner = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let ud = u32(d);
    let size = dim(p.shape, ud);
    let q = div_u32(rem, size);
    let c = rem - q * size;
    if (ud + 1u == p.rank) { inner = c; }
    rem = q;
    oo += c * dim(p.st_out, ud);
    oa += c * dim(p.st_a, ud);
  }
  return vec3<u32>(oo, oa, inner);
}

@compute @workgroup_size(WG)
fn copy_strided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i0 = flat_index(gid, nwg) * RUN;
  if (i0 >= p.n || p.rank == 0u) {
    if (i0 < p.n) { out[p.off_out] = a[p.off_a]; }
    return;
  }
  let last = p.rank - 1u;
  let size = dim(p.shape, last);
  let so = dim(p.st_out, last);
  let sa = dim(p.st_a, last);
  var o = copy_offsets(i0);
  let i1 = min(p.n, i0 + RUN);
  for (var i = i0; i < i1; i++) {
    if (i > i0) {
      if (o.z + 1u < size) {
        o = vec3<u32>(o.x + so, o.y + sa, o.z + 1u);
      } else {
        o = copy_offsets(i);
      }
    }
    out[o.x] = a[o.y];
  }
}
