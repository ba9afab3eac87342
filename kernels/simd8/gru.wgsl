{{SUBGROUPS}}
// include: gru-step
// include: activation
// The GRU forward step for a software adapter with subgroups of 8 (caps.simd8: lavapipe;
// planGruStep's kind `simd8`). There (a workgroup of 8 = one 8-lane CPU vector; see
// kernels/simd8/matmul.wgsl for what its compiler does with loads) a storage or workgroup-memory
// load inside a loop is emitted lane by lane with a branch each, which made kernels/gru.wgsl's
// gru_fwd_step ~3 ms at B32 H128. Here the three gate blocks of W_hh ([H, H] each, 64 KiB at
// H = 128) and h_{t-1} are bound as uniform buffers, read branch-free; a lane owns one hidden unit k and 16 batch rows, and the 16 rows of
// h are gathered two per lane and shared with subgroupBroadcast. h_t goes to hs (history) and
// to the other of two 64 KiB ping-pong buffers that the next step binds as its h_{t-1}.
// The host runs it where simd8 applies (H % 8 == 0, H <= 128, 16-padded B x H <= 16384).

@group(0) @binding(5) var<uniform> s_wr: array<vec4<f32>, 4096>;   // W_hr [k][c], c as vec4
@group(0) @binding(8) var<uniform> s_wz: array<vec4<f32>, 4096>;
@group(0) @binding(9) var<uniform> s_wn: array<vec4<f32>, 4096>;
@group(0) @binding(10) var<uniform> s_hprev: array<vec4<f32>, 4096>; // h_{t-1} [b][c]
@group(0) @binding(11) var<storage, read_write> s_hnext: array<f32>;

var<workgroup> s_tile: array<f32, 384>; // [gate][16 rows][8 lanes]

// Placeholder where the adapter has no subgroups: the host never runs this kernel there.
fn sg_unavailable(v: vec4<f32>, lane: u32) -> vec4<f32> { return v; }

@compute @workgroup_size(8)
fn gru_fwd_step_simd8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let H = p.H;
  let B = p.B;
  let t = p.t;
  let H4 = H / 4u;
  let k = wid.x * 8u + lane;
  let b0 = wid.y * 16u;
  var ar: array<f32, 16>;
  var az: array<f32, 16>;
  var an: array<f32, 16>;
  for (var c4 = 0u; c4 < H4; c4++) {
    let wr = s_wr[k * H4 + c4];
    let wz = s_wz[k * H4 + c4];
    let wn = s_wn[k * H4 + c4];
    let h0 = s_hprev[(b0 + lane) * H4 + c4];
    let h1 = s_hprev[(b0 + lane + 8u) * H4 + c4];
    { let hv = {{SG_BCAST}}(h0, 0u); ar[0] += dot(wr, hv); az[0] += dot(wz, hv); an[0] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 1u); ar[1] += dot(wr, hv); az[1] += dot(wz, hv); an[1] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 2u); ar[2] += dot(wr, hv); az[2] += dot(wz, hv); an[2] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 3u); ar[3] += dot(wr, hv); az[3] += dot(wz, hv); an[3] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 4u); ar[4] += dot(wr, hv); az[4] += dot(wz, hv); an[4] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 5u); ar[5] += dot(wr, hv); az[5] += dot(wz, hv); an[5] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 6u); ar[6] += dot(wr, hv); az[6] += dot(wz, hv); an[6] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h0, 7u); ar[7] += dot(wr, hv); az[7] += dot(wz, hv); an[7] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 0u); ar[8] += dot(wr, hv); az[8] += dot(wz, hv); an[8] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 1u); ar[9] += dot(wr, hv); az[9] += dot(wz, hv); an[9] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 2u); ar[10] += dot(wr, hv); az[10] += dot(wz, hv); an[10] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 3u); ar[11] += dot(wr, hv); az[11] += dot(wz, hv); an[11] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 4u); ar[12] += dot(wr, hv); az[12] += dot(wz, hv); an[12] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 5u); ar[13] += dot(wr, hv); az[13] += dot(wz, hv); an[13] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 6u); ar[14] += dot(wr, hv); az[14] += dot(wz, hv); an[14] += dot(wn, hv); }
    { let hv = {{SG_BCAST}}(h1, 7u); ar[15] += dot(wr, hv); az[15] += dot(wz, hv); an[15] += dot(wn, hv); }
  }
  // Gate arithmetic in a loop the compiler keeps a loop (trip count p.rows = 16 at run time):
  // unrolled for 16 rows it would be most of the kernel's machine code.
  for (var r = 0u; r < 16u; r++) {
    s_tile[r * 8u + lane] = ar[r];
    s_tile[(16u + r) * 8u + lane] = az[r];
    s_tile[(32u + r) * 8u + lane] = an[r];
  }
  workgroupBarrier();
  let bhr = f_bhh[k];
  let bhz = f_bhh[H + k];
  let bhn = f_bhh[2u * H + k];
  for (var r = 0u; r < p.rows; r++) {
    let b = b0 + r;
    if (b >= B) { break; }
    let gh = vec3<f32>(s_tile[r * 8u + lane], s_tile[(16u + r) * 8u + lane], s_tile[(32u + r) * 8u + lane]);
    s_hnext[b * H + k] = gru_fwd_finish(b, k, f_hs[(t * B + b) * H + k], gh + vec3<f32>(bhr, bhz, bhn));
  }
}
