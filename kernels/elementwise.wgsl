// Elementwise kernels: fill, strided copy, and binary ops with NumPy broadcasting.
//
// Layout of the parameter block shared by the strided entry points: tensors up to rank 8; each
// operand has its own strides (0 along broadcast dimensions) and offset, so broadcasting and
// views (transpose, slice) cost no copy. The flat index of an output element is split into
// coordinates by the output shape, innermost dimension first.
//
// Specialisation: WG (workgroup size) and OP (which binary op) are `override`s; {{T}} is the
// element type (f32, i32 or u32) filled in by the loader's template step.
// include: index

struct Params {
  n: u32,
  rank: u32,
  off_out: u32,
  off_a: u32,
  off_b: u32,
  alpha_bits: u32,   // a scalar operand for ops that take one (leaky slope, clamp bounds...)
  beta_bits: u32,
  _pad: u32,
  shape: array<vec4<u32>, 2>,
  st_out: array<vec4<u32>, 2>,
  st_a: array<vec4<u32>, 2>,
  st_b: array<vec4<u32>, 2>,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> a: array<{{T}}>;
@group(0) @binding(3) var<storage, read> b: array<{{T}}>;

override WG: u32 = 256;
override OP: u32 = 0;

fn dim(v: array<vec4<u32>, 2>, i: u32) -> u32 {
  return v[i / 4u][i % 4u];
}

// Flat element index from the 2-D grid (large tensors need more than 65535 workgroups in x).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Offsets of output element i in out, a and b, following each one's strides.
fn offsets(i: u32) -> vec3<u32> {
  var rem = i;
  var o = vec3<u32>(p.off_out, p.off_a, p.off_b);
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let ud = u32(d);
    let size = dim(p.shape, ud);
    let q = div_u32(rem, size);
    let c = rem - q * size;
    rem = q;
    o += c * vec3<u32>(dim(p.st_out, ud), dim(p.st_a, ud), dim(p.st_b, ud));
  }
  return o;
}

fn binary_op(x: {{T}}, y: {{T}}) -> {{T}} {
  switch OP {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return max(x, y); }
    case 5u: { return min(x, y); }
    // comparisons give 1 or 0 in the operands' type
    case 6u: { return select({{T}}(0), {{T}}(1), x == y); }
    case 7u: { return select({{T}}(0), {{T}}(1), x != y); }
    case 8u: { return select({{T}}(0), {{T}}(1), x < y); }
    case 9u: { return select({{T}}(0), {{T}}(1), x <= y); }
    case 10u: { return select({{T}}(0), {{T}}(1), x > y); }
    case 11u: { return select({{T}}(0), {{T}}(1), x >= y); }
    default: { return x; }
  }
}

// out = a (op) b, every operand strided/broadcast.
@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[o.x] = binary_op(a[o.y], b[o.z]);
}

// The fast path: all three contiguous and of the output's shape (no index arithmetic).
@compute @workgroup_size(WG)
fn binary_flat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  out[p.off_out + i] = binary_op(a[p.off_a + i], b[p.off_b + i]);
}
