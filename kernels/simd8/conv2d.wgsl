{{SUBGROUPS}}
// conv2d for a software adapter with subgroups of 8 (caps.simd8: lavapipe): the direct input
// gradient and narrow forward on uniform-window weights, the narrow weight gradient, and the
// gathers that lay the GEMM operands out for matmul's simd8 product (planConv's kinds simd8,
// simd8-direct, simd8-narrow, narrow; host code in src/engine/simd8/). The parameter block,
// bindings and geometry overrides are kernels/conv2d.wgsl's (kernels/conv2d-params.wgsl).
// include: activation
// include: conv2d-params

// The phase taps of a strided input gradient (as kernels/conv2d.wgsl's conv_dgrad_phased).
override NTH: u32 = 1u;
override NTW: u32 = 1u;

// ------------------------------------------- input gradient, 1- or 3-wide kernels, stride 1 (SIMD-8)

// dx of a stride-1 convolution with a kernel 3 wide (DW = 1) or 1 wide (KH and DH any: 3x3 and
// 1x1 above all) without im2col, for lavapipe
// (subgroups of exactly 8): a workgroup of 8 lanes computes 16 input channels x 32 positions of
// one row iy of one image, a lane 4 consecutive positions of each channel (16 vec4 accumulators).
// Per output channel co and kernel row ky, each lane loads the 6 dy values its 4 positions x 3
// taps need (one row of dy, zero outside it; 4 for 1 tap), the 8 lanes load the 12 (4) vec4s of
// weights [co][ky][kx][16 channels] from a 64 KiB uniform window in two gathers (one) and share
// them by subgroupBroadcast, then 48 (16) vec4 multiply-adds. The simd8 product (simd8/conv.ts)
// packs im2col of dy first, 9 texels per dy value: with 16 input channels that pack outweighed the product (bench/NOTES.md).
// Weights packed by `dgrad_w16` per block of 16 input channels (zero past C_in). Workgroups:
// x = block of 32 positions, y = image; p.batch = the block's first input channel.
override DG_FLAT: bool = false;

// The weights [co][ci][ky][kx] of input channels ci0 .. ci0 + 15 as dgrad_simd8 reads them,
// [co][ky][kx][16] (zero past C_in); p.n = OC * KH * KW * 16, p.batch = ci0.
@compute @workgroup_size(WG)
fn dgrad_w16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= p.n) { return; }
  let ci = p.batch + e % 16u;
  let tap = e / 16u;
  let kx = tap % KW;
  let ky = tap / KW % KH;
  let co = tap / (KW * KH);
  var v = 0.0;
  if (ci < IC) { v = a[p.off_a + ((co * IC + ci) * KH + ky) * KW + kx]; }
  out[p.off_out + e] = v;
}

// The first of a lane's 4 positions in workgroup block b of a rows x cols plane: (row, column,
// 1 if inside the plane). DG_FLAT (cols a multiple of 4): blocks of 32 consecutive positions of
// the plane, a lane's 4 in one row (16-wide planes fill every lane); else 32 positions of a row.
fn sg_block(b: u32, lane: u32, rows: u32, cols: u32) -> vec3<u32> {
  if (DG_FLAT) {
    let pos = b * 32u + lane * 4u;
    return vec3<u32>(pos / cols, pos % cols, select(0u, 1u, pos < rows * cols));
  }
  let xblocks = (cols + 31u) / 32u;
  return vec3<u32>(b / xblocks, b % xblocks * 32u + lane * 4u, 1u);
}

// a[row + col] for column col of a row `width` long at `row` (row_ok: the row exists), zero
// outside: the padding of the SIMD-8 direct kernels' loads (no branch around the load).
fn row_at(row: u32, row_ok: bool, col: i32, width: u32) -> f32 {
  let ok = row_ok && col >= 0 && col < i32(width);
  return select(0.0, a[select(0u, row + u32(col), ok)], ok);
}

// The dy value of output column ox of the row at yr (row_ok: the row exists), zero outside.
fn dg_dy(yr: u32, row_ok: bool, ox: i32) -> f32 { return row_at(yr, row_ok, ox, OW); }

// Stores a lane's 4 positions of channel ci0 + c (ob: channel ci0 of the row), those inside dx.
fn dg_store_at(ob: u32, ci0: u32, c: u32, v: vec4<f32>, ix: u32) {
  if (ci0 + c >= IC) { return; }
  let o = ob + c * IH * IW + ix;
  if (ix < IW) { out[o] = v.x; }
  if (ix + 1u < IW) { out[o + 1u] = v.y; }
  if (ix + 2u < IW) { out[o + 2u] = v.z; }
  if (ix + 3u < IW) { out[o + 3u] = v.w; }
}

@compute @workgroup_size(8)
fn dgrad_simd8(@builtin(workgroup_id) wgb: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let at = sg_block(wgb.x, lane, IH, IW);
  let iy = at.x;
  let ix = at.y;
  let in_plane = at.z == 1u;
  let n = wgb.y;
  let ci0 = p.batch;
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  var a8 = vec4<f32>(0.0); var a9 = vec4<f32>(0.0); var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0);
  var a12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0); var a14 = vec4<f32>(0.0); var a15 = vec4<f32>(0.0);
  // ox of position ix + j and tap kx: ix + j + PW - kx; the window starts at kx = KW - 1, j = 0
  let ox0 = i32(ix + PW) - i32(KW - 1u);
  for (var co = 0u; co < OC; co++) {
    for (var ky = 0u; ky < KH; ky++) {
      let oy = i32(iy + PH) - i32(ky * DH);
      let row_ok = in_plane && oy >= 0 && oy < i32(OH);
      let yr = p.off_a + ((n * OC + co) * OH + u32(max(oy, 0))) * OW;
      if (KW == 1u) {
        let t0 = vec4<f32>(dg_dy(yr, row_ok, ox0), dg_dy(yr, row_ok, ox0 + 1), dg_dy(yr, row_ok, ox0 + 2), dg_dy(yr, row_ok, ox0 + 3));
        let u0 = uwin[(co * KH + ky) * 4u + lane];
        let w00 = {{SG_BCAST}}(u0, 0u); let w01 = {{SG_BCAST}}(u0, 1u); let w02 = {{SG_BCAST}}(u0, 2u); let w03 = {{SG_BCAST}}(u0, 3u);
        a0 = fma(vec4<f32>(w00.x), t0, a0);
        a1 = fma(vec4<f32>(w00.y), t0, a1);
        a2 = fma(vec4<f32>(w00.z), t0, a2);
        a3 = fma(vec4<f32>(w00.w), t0, a3);
        a4 = fma(vec4<f32>(w01.x), t0, a4);
        a5 = fma(vec4<f32>(w01.y), t0, a5);
        a6 = fma(vec4<f32>(w01.z), t0, a6);
        a7 = fma(vec4<f32>(w01.w), t0, a7);
        a8 = fma(vec4<f32>(w02.x), t0, a8);
        a9 = fma(vec4<f32>(w02.y), t0, a9);
        a10 = fma(vec4<f32>(w02.z), t0, a10);
        a11 = fma(vec4<f32>(w02.w), t0, a11);
        a12 = fma(vec4<f32>(w03.x), t0, a12);
        a13 = fma(vec4<f32>(w03.y), t0, a13);
        a14 = fma(vec4<f32>(w03.z), t0, a14);
        a15 = fma(vec4<f32>(w03.w), t0, a15);
      } else {
        let e0 = dg_dy(yr, row_ok, ox0);
        let e1 = dg_dy(yr, row_ok, ox0 + 1);
        let e2 = dg_dy(yr, row_ok, ox0 + 2);
        let e3 = dg_dy(yr, row_ok, ox0 + 3);
        let e4 = dg_dy(yr, row_ok, ox0 + 4);
        let e5 = dg_dy(yr, row_ok, ox0 + 5);
        // tap kx reads window entries 2 - kx .. 5 - kx
        let t0 = vec4<f32>(e2, e3, e4, e5);
        let t1 = vec4<f32>(e1, e2, e3, e4);
        let t2 = vec4<f32>(e0, e1, e2, e3);
        let wb = (co * KH + ky) * 12u;
        let u0 = uwin[wb + lane];
        let u1 = uwin[wb + 8u + lane];
        let w00 = {{SG_BCAST}}(u0, 0u); let w01 = {{SG_BCAST}}(u0, 1u); let w02 = {{SG_BCAST}}(u0, 2u); let w03 = {{SG_BCAST}}(u0, 3u);
        let w10 = {{SG_BCAST}}(u0, 4u); let w11 = {{SG_BCAST}}(u0, 5u); let w12 = {{SG_BCAST}}(u0, 6u); let w13 = {{SG_BCAST}}(u0, 7u);
        let w20 = {{SG_BCAST}}(u1, 0u); let w21 = {{SG_BCAST}}(u1, 1u); let w22 = {{SG_BCAST}}(u1, 2u); let w23 = {{SG_BCAST}}(u1, 3u);
        a0 = fma(vec4<f32>(w00.x), t0, fma(vec4<f32>(w10.x), t1, fma(vec4<f32>(w20.x), t2, a0)));
        a1 = fma(vec4<f32>(w00.y), t0, fma(vec4<f32>(w10.y), t1, fma(vec4<f32>(w20.y), t2, a1)));
        a2 = fma(vec4<f32>(w00.z), t0, fma(vec4<f32>(w10.z), t1, fma(vec4<f32>(w20.z), t2, a2)));
        a3 = fma(vec4<f32>(w00.w), t0, fma(vec4<f32>(w10.w), t1, fma(vec4<f32>(w20.w), t2, a3)));
        a4 = fma(vec4<f32>(w01.x), t0, fma(vec4<f32>(w11.x), t1, fma(vec4<f32>(w21.x), t2, a4)));
        a5 = fma(vec4<f32>(w01.y), t0, fma(vec4<f32>(w11.y), t1, fma(vec4<f32>(w21.y), t2, a5)));
        a6 = fma(vec4<f32>(w01.z), t0, fma(vec4<f32>(w11.z), t1, fma(vec4<f32>(w21.z), t2, a6)));
        a7 = fma(vec4<f32>(w01.w), t0, fma(vec4<f32>(w11.w), t1, fma(vec4<f32>(w21.w), t2, a7)));
        a8 = fma(vec4<f32>(w02.x), t0, fma(vec4<f32>(w12.x), t1, fma(vec4<f32>(w22.x), t2, a8)));
        a9 = fma(vec4<f32>(w02.y), t0, fma(vec4<f32>(w12.y), t1, fma(vec4<f32>(w22.y), t2, a9)));
        a10 = fma(vec4<f32>(w02.z), t0, fma(vec4<f32>(w12.z), t1, fma(vec4<f32>(w22.z), t2, a10)));
        a11 = fma(vec4<f32>(w02.w), t0, fma(vec4<f32>(w12.w), t1, fma(vec4<f32>(w22.w), t2, a11)));
        a12 = fma(vec4<f32>(w03.x), t0, fma(vec4<f32>(w13.x), t1, fma(vec4<f32>(w23.x), t2, a12)));
        a13 = fma(vec4<f32>(w03.y), t0, fma(vec4<f32>(w13.y), t1, fma(vec4<f32>(w23.y), t2, a13)));
        a14 = fma(vec4<f32>(w03.z), t0, fma(vec4<f32>(w13.z), t1, fma(vec4<f32>(w23.z), t2, a14)));
        a15 = fma(vec4<f32>(w03.w), t0, fma(vec4<f32>(w13.w), t1, fma(vec4<f32>(w23.w), t2, a15)));
      }
    }
  }
  if (!in_plane) { return; }
  let ob = p.off_out + (n * IC + ci0) * IH * IW + iy * IW;
  dg_store_at(ob, ci0, 0u, a0, ix);
  dg_store_at(ob, ci0, 1u, a1, ix);
  dg_store_at(ob, ci0, 2u, a2, ix);
  dg_store_at(ob, ci0, 3u, a3, ix);
  dg_store_at(ob, ci0, 4u, a4, ix);
  dg_store_at(ob, ci0, 5u, a5, ix);
  dg_store_at(ob, ci0, 6u, a6, ix);
  dg_store_at(ob, ci0, 7u, a7, ix);
  dg_store_at(ob, ci0, 8u, a8, ix);
  dg_store_at(ob, ci0, 9u, a9, ix);
  dg_store_at(ob, ci0, 10u, a10, ix);
  dg_store_at(ob, ci0, 11u, a11, ix);
  dg_store_at(ob, ci0, 12u, a12, ix);
  dg_store_at(ob, ci0, 13u, a13, ix);
  dg_store_at(ob, ci0, 14u, a14, ix);
  dg_store_at(ob, ci0, 15u, a15, ix);
}

// Forward of a stride-1 convolution with at most 4 output channels (BigGAN's RGB output), kernel
// 3 wide (DW = 1) or 1 wide, on dgrad_simd8's layout: a lane computes 4 consecutive positions,
// each a vec4 of the output channels. Per input channel ci and kernel row ky a lane loads the 6
// (4) x values its positions x 3 (1) taps need, lanes 0 .. KW - 1 load the KW vec4s of weights
// [ci][ky][kx][4 outputs] in one gather shared by subgroupBroadcast, then 12 (4) vec4
// multiply-adds; bias and activation as conv_fwd's. simd8 pads the 3 rows to 16 and packs im2col of
// x (2304 texels per 4 positions at 256 channels). Weights packed by `fwd_narrow_w`.

// x[.., ix] of the row at xr (row_ok: the row exists), zero outside.
fn nf_x(xr: u32, row_ok: bool, ix: i32) -> f32 { return row_at(xr, row_ok, ix, IW); }

// The weights [co][ci][ky][kx] as fwd_narrow_simd8 reads them, [ci][ky][kx][4] (zero past C_out);
// p.n = IC * KH * KW * 4. NF_FLIP: the kernel runs the input gradient of a stride-1 convolution
// with at most 4 input channels, a forward convolution of dy (its IC = the convolution's C_out)
// with the weight transposed and flipped: w'[o][c][ky][kx] = w[c][o][KH-1-ky][KW-1-kx].
override NF_FLIP: bool = false;

@compute @workgroup_size(WG)
fn fwd_narrow_w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= p.n) { return; }
  let o = e % 4u;
  let tap = e / 4u;
  var v = 0.0;
  if (o < OC && !NF_FLIP) { v = a[p.off_a + o * IC * KH * KW + tap]; }
  if (o < OC && NF_FLIP) {
    let kx = tap % KW;
    let ky = tap / KW % KH;
    let c = tap / (KW * KH);
    v = a[p.off_a + ((c * OC + o) * KH + KH - 1u - ky) * KW + KW - 1u - kx];
  }
  out[p.off_out + e] = v;
}

// act(acc[o] + bias[o]) into y[n, o, oy, ox] for o < C_out, when ox lies inside the row.
fn nf_store(n: u32, oy: u32, ox: u32, acc: vec4<f32>) {
  if (ox >= OW) { return; }
  for (var o = 0u; o < OC; o++) {
    var v = acc[o];
    if (HAS_BIAS) { v += c[p.off_c + o]; }
    out[p.off_out + ((n * OC + o) * OH + oy) * OW + ox] = activate(v);
  }
}

@compute @workgroup_size(8)
fn fwd_narrow_simd8(@builtin(workgroup_id) wgb: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let at = sg_block(wgb.x, lane, OH, OW);
  let oy = at.x;
  let ox = at.y;
  let in_plane = at.z == 1u;
  let n = wgb.y;
  var y0 = vec4<f32>(0.0);
  var y1 = vec4<f32>(0.0);
  var y2 = vec4<f32>(0.0);
  var y3 = vec4<f32>(0.0);
  // position j and tap kx read x column ox + j - PW + kx: window entry j + kx
  let ix0 = i32(ox) - i32(PW);
  for (var ci = 0u; ci < IC; ci++) {
    for (var ky = 0u; ky < KH; ky++) {
      let iy = i32(oy + ky * DH) - i32(PH);
      let row_ok = in_plane && iy >= 0 && iy < i32(IH);
      let xr = p.off_a + ((n * IC + ci) * IH + u32(max(iy, 0))) * IW;
      let u = uwin[(ci * KH + ky) * KW + lane];
      if (KW == 1u) {
        let w0 = {{SG_BCAST}}(u, 0u);
        y0 = fma(vec4<f32>(nf_x(xr, row_ok, ix0)), w0, y0);
        y1 = fma(vec4<f32>(nf_x(xr, row_ok, ix0 + 1)), w0, y1);
        y2 = fma(vec4<f32>(nf_x(xr, row_ok, ix0 + 2)), w0, y2);
        y3 = fma(vec4<f32>(nf_x(xr, row_ok, ix0 + 3)), w0, y3);
      } else {
        let e0 = vec4<f32>(nf_x(xr, row_ok, ix0));
        let e1 = vec4<f32>(nf_x(xr, row_ok, ix0 + 1));
        let e2 = vec4<f32>(nf_x(xr, row_ok, ix0 + 2));
        let e3 = vec4<f32>(nf_x(xr, row_ok, ix0 + 3));
        let e4 = vec4<f32>(nf_x(xr, row_ok, ix0 + 4));
        let e5 = vec4<f32>(nf_x(xr, row_ok, ix0 + 5));
        let w0 = {{SG_BCAST}}(u, 0u);
        let w1 = {{SG_BCAST}}(u, 1u);
        let w2 = {{SG_BCAST}}(u, 2u);
        y0 = fma(e0, w0, fma(e1, w1, fma(e2, w2, y0)));
        y1 = fma(e1, w0, fma(e2, w1, fma(e3, w2, y1)));
        y2 = fma(e2, w0, fma(e3, w1, fma(e4, w2, y2)));
        y3 = fma(e3, w0, fma(e4, w1, fma(e5, w2, y3)));
      }
    }
  }
  if (!in_plane) { return; }
  nf_store(n, oy, ox, y0);
  nf_store(n, oy, ox + 1u, y1);
  nf_store(n, oy, ox + 2u, y2);
  nf_store(n, oy, ox + 3u, y3);
}

// ------------------------------------------------------- weight gradient, one narrow side

// The weight gradient when one side has at most 8 channels (BigGAN's RGB output convolution:
// C_out = 3; its discriminator's 1x1 shortcut from RGB: C_in = 3). A GEMM tile or simd8's 16-row
// blocks would be over 80% padding there, and im2col's pack dominates. Instead the narrow
// operand of a group of images is laid out by `wgrad_narrow_pack` as vec4s of its channels per
// output position, uwin[(n, oy, ox) * NV + j] (zero past the channels, NV = 1 or 2), and bound as
// a 64 KiB uniform window; one thread per column of the wide side loops over the positions with
// one storage load and NV uniform vec4 loads per multiply-add of up to 8 channels at once.
//
//   NW_MODE 0: C_out <= 8. Column = (ci, ky, kx); wide value x[n, ci, oy SH - PH + ky DH, ...]
//              over the positions where it lies inside x (ranges computed once per thread, no
//              test in the inner loop); narrow = dy[n, 0..C_out, oy, ox].
//   NW_MODE 1: C_in <= 8, 1x1 kernel. Column = co; wide value dy[n, co, oy, ox]; narrow =
//              x[n, 0..C_in, oy SH - PH, ox SW - PW] (zero in the padding).
// p.n = columns, p.batch = images of the window, p.len = 1 to add to `out` (later windows),
// p.off_a = the window's first image of the wide operand (wgrad_narrow) or of the narrow one
// (wgrad_narrow_pack).
override NV: u32 = 1u;
override NW_MODE: u32 = 0u;

@compute @workgroup_size(WG)
fn wgrad_narrow_pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= p.n) { return; }
  let ohw = OH * OW;
  let j = e % (4u * NV);
  let q = e / (4u * NV);
  let s = q % ohw;
  let n = q / ohw;
  var v = 0.0;
  if (NW_MODE == 0u) {
    if (j < OC) { v = a[p.off_a + (n * OC + j) * ohw + s]; }
  } else {
    let iy = i32(s / OW * SH) - i32(PH);
    let ix = i32(s % OW * SW) - i32(PW);
    if (j < IC && iy >= 0 && iy < i32(IH) && ix >= 0 && ix < i32(IW)) {
      v = a[p.off_a + ((n * IC + j) * IH + u32(iy)) * IW + u32(ix)];
    }
  }
  out[p.off_out + e] = v;
}

// First output position o in [0, count) whose input o * S - P + t lies inside [0, size), and the
// end of that range (the positions in between are consecutive).
fn narrow_range(t: u32, s: u32, pad: u32, size: u32, count: u32) -> vec2<u32> {
  let off = i32(t) - i32(pad);
  let lo = select(0u, (u32(-off) + s - 1u) / s, off < 0);
  let last = i32(size) - 1 - off;
  let hi = select(0u, min(count, u32(max(last, 0)) / s + 1u), last >= 0);
  return vec2<u32>(lo, max(lo, hi));
}

// With NW_SG (subgroups of exactly 8 consecutive invocations, one vec4 of narrow channels) the
// 8 lanes load 8 positions' narrow vec4s at once and share them by subgroupBroadcast: on
// llvmpipe a uniform-buffer load is a gather even when every lane reads the same address
// (measured on biggan-d-sc-in: ~0.7 of 1.4 ms), so one gather now serves 8 positions. Every lane
// then runs the same loop (no early return; the last columns repeat one and do not store).
override NW_SG: bool = false;

fn sg_unavailable(v: vec4<f32>, lane: u32) -> vec4<f32> { return v; }

// x[n, ci, iy, ox SW - PW + kx DW] for the row at xr (row_ok: iy inside x), zero outside.
fn narrow_x(xr: u32, row_ok: bool, ox: u32, kx: u32) -> f32 {
  return row_at(xr, row_ok, i32(ox * SW + kx * DW) - i32(PW), IW);
}

// NW_K3 (with NW_SG, mode 0, a kernel 3 wide, stride and dilation 1 across): a column is
// (ci, ky) and keeps the 3 taps' accumulators, so 8 positions need 10 loads of x instead of 24
// (x's storage loads bound this kernel: biggan-g-out-wgrad). p.n = IC * KH.
override NW_K3: bool = false;

// The K3 path's 8 positions o0 .. o0 + 7 of the row at xr: window e_m = x[o0 - PW + m], tap kx of
// position j reads e_(j + kx); w: lane j holds position o0 + j's narrow vec4.
fn narrow_k3(acc: ptr<function, array<vec4<f32>, 3>>, xr: u32, row_ok: bool, o0: u32, w: vec4<f32>) {
  let c0 = i32(o0) - i32(PW);
  let e0 = vec4<f32>(row_at(xr, row_ok, c0, IW));
  let e1 = vec4<f32>(row_at(xr, row_ok, c0 + 1, IW));
  let e2 = vec4<f32>(row_at(xr, row_ok, c0 + 2, IW));
  let e3 = vec4<f32>(row_at(xr, row_ok, c0 + 3, IW));
  let e4 = vec4<f32>(row_at(xr, row_ok, c0 + 4, IW));
  let e5 = vec4<f32>(row_at(xr, row_ok, c0 + 5, IW));
  let e6 = vec4<f32>(row_at(xr, row_ok, c0 + 6, IW));
  let e7 = vec4<f32>(row_at(xr, row_ok, c0 + 7, IW));
  let e8 = vec4<f32>(row_at(xr, row_ok, c0 + 8, IW));
  let e9 = vec4<f32>(row_at(xr, row_ok, c0 + 9, IW));
  let w0 = {{SG_BCAST}}(w, 0u); let w1 = {{SG_BCAST}}(w, 1u); let w2 = {{SG_BCAST}}(w, 2u); let w3 = {{SG_BCAST}}(w, 3u);
  let w4 = {{SG_BCAST}}(w, 4u); let w5 = {{SG_BCAST}}(w, 5u); let w6 = {{SG_BCAST}}(w, 6u); let w7 = {{SG_BCAST}}(w, 7u);
  (*acc)[0] = fma(e0, w0, fma(e1, w1, fma(e2, w2, fma(e3, w3, fma(e4, w4, fma(e5, w5, fma(e6, w6, fma(e7, w7, (*acc)[0]))))))));
  (*acc)[1] = fma(e1, w0, fma(e2, w1, fma(e3, w2, fma(e4, w3, fma(e5, w4, fma(e6, w5, fma(e7, w6, fma(e8, w7, (*acc)[1]))))))));
  (*acc)[2] = fma(e2, w0, fma(e3, w1, fma(e4, w2, fma(e5, w3, fma(e6, w4, fma(e7, w5, fma(e8, w6, fma(e9, w7, (*acc)[2]))))))));
}

@compute @workgroup_size(WG)
fn wgrad_narrow(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
  let i_raw = gid.x + gid.y * nwg.x * WG;
  let i = min(i_raw, p.n - 1u);
  let lane = li % 8u;
  let ohw = OH * OW;
  if (NW_K3) {
    let ky = i % KH;
    let ci = i / KH;
    var acc = array<vec4<f32>, 3>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var n = 0u; n < p.batch; n++) {
      for (var oy = 0u; oy < OH; oy++) {
        let iy = i32(oy * SH + ky * DH) - i32(PH);
        let row_ok = iy >= 0 && iy < i32(IH);
        let xr = p.off_a + ((n * IC + ci) * IH + u32(max(iy, 0))) * IW;
        let qb = (n * OH + oy) * OW;
        var o0 = 0u;
        for (; o0 + 8u <= OW; o0 += 8u) { narrow_k3(&acc, xr, row_ok, o0, uwin[qb + o0 + lane]); }
        for (; o0 < OW; o0++) {
          let w = uwin[qb + o0];
          let c0 = i32(o0) - i32(PW);
          acc[0] = fma(vec4<f32>(row_at(xr, row_ok, c0, IW)), w, acc[0]);
          acc[1] = fma(vec4<f32>(row_at(xr, row_ok, c0 + 1, IW)), w, acc[1]);
          acc[2] = fma(vec4<f32>(row_at(xr, row_ok, c0 + 2, IW)), w, acc[2]);
        }
      }
    }
    // (no early return: the uniformity analysis would count the paths below as divergent)
    for (var o = 0u; o < OC && i_raw < p.n; o++) {
      for (var kx = 0u; kx < 3u; kx++) {
        let at = p.off_out + o * IC * KH * 3u + i * 3u + kx;
        var v = acc[kx][o];
        if (p.len == 1u) { v += out[at]; }
        out[at] = v;
      }
    }
    return;
  }
  let kx = i % KW;
  let ky = i / KW % KH;
  let ci = i / (KW * KH);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  if (NW_SG && NW_MODE == 0u) {
    for (var n = 0u; n < p.batch; n++) {
      for (var oy = 0u; oy < OH; oy++) {
        let iy = i32(oy * SH + ky * DH) - i32(PH);
        let row_ok = iy >= 0 && iy < i32(IH);
        let xr = p.off_a + ((n * IC + ci) * IH + u32(max(iy, 0))) * IW;
        let qb = (n * OH + oy) * OW;
        var o0 = 0u;
        for (; o0 + 8u <= OW; o0 += 8u) {
          let w = uwin[qb + o0 + lane];
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0, kx)), {{SG_BCAST}}(w, 0u), acc0);
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0 + 1u, kx)), {{SG_BCAST}}(w, 1u), acc0);
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0 + 2u, kx)), {{SG_BCAST}}(w, 2u), acc0);
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0 + 3u, kx)), {{SG_BCAST}}(w, 3u), acc0);
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0 + 4u, kx)), {{SG_BCAST}}(w, 4u), acc0);
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0 + 5u, kx)), {{SG_BCAST}}(w, 5u), acc0);
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0 + 6u, kx)), {{SG_BCAST}}(w, 6u), acc0);
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0 + 7u, kx)), {{SG_BCAST}}(w, 7u), acc0);
        }
        for (; o0 < OW; o0++) {
          acc0 = fma(vec4<f32>(narrow_x(xr, row_ok, o0, kx)), uwin[qb + o0], acc0);
        }
      }
    }
  } else if (NW_SG) {
    for (var n = 0u; n < p.batch; n++) {
      let yb = p.off_a + (n * OC + i) * ohw;
      var s0 = 0u;
      for (; s0 + 8u <= ohw; s0 += 8u) {
        let w = uwin[n * ohw + s0 + lane];
        acc0 = fma(vec4<f32>(a[yb + s0]), {{SG_BCAST}}(w, 0u), acc0);
        acc0 = fma(vec4<f32>(a[yb + s0 + 1u]), {{SG_BCAST}}(w, 1u), acc0);
        acc0 = fma(vec4<f32>(a[yb + s0 + 2u]), {{SG_BCAST}}(w, 2u), acc0);
        acc0 = fma(vec4<f32>(a[yb + s0 + 3u]), {{SG_BCAST}}(w, 3u), acc0);
        acc0 = fma(vec4<f32>(a[yb + s0 + 4u]), {{SG_BCAST}}(w, 4u), acc0);
        acc0 = fma(vec4<f32>(a[yb + s0 + 5u]), {{SG_BCAST}}(w, 5u), acc0);
        acc0 = fma(vec4<f32>(a[yb + s0 + 6u]), {{SG_BCAST}}(w, 6u), acc0);
        acc0 = fma(vec4<f32>(a[yb + s0 + 7u]), {{SG_BCAST}}(w, 7u), acc0);
      }
      for (; s0 < ohw; s0++) {
        acc0 = fma(vec4<f32>(a[yb + s0]), uwin[n * ohw + s0], acc0);
      }
    }
  } else if (i_raw < p.n && NW_MODE == 0u) {
    let ry = narrow_range(ky * DH, SH, PH, IH, OH);
    let rx = narrow_range(kx * DW, SW, PW, IW, OW);
    for (var n = 0u; n < p.batch; n++) {
      let xb = p.off_a + (n * IC + ci) * IH * IW;
      for (var oy = ry.x; oy < ry.y; oy++) {
        // the row's first valid input, then SW apart
        let x0 = xb + (oy * SH + ky * DH - PH) * IW + rx.x * SW + kx * DW - PW;
        let q0 = (n * OH + oy) * OW + rx.x;
        for (var d = 0u; d < rx.y - rx.x; d++) {
          let v = vec4<f32>(a[x0 + d * SW]);
          acc0 = fma(v, uwin[(q0 + d) * NV], acc0);
          if (NV > 1u) { acc1 = fma(v, uwin[(q0 + d) * NV + 1u], acc1); }
        }
      }
    }
  } else if (i_raw < p.n) {
    for (var n = 0u; n < p.batch; n++) {
      let yb = p.off_a + (n * OC + i) * ohw;
      for (var s = 0u; s < ohw; s++) {
        let v = vec4<f32>(a[yb + s]);
        acc0 = fma(v, uwin[(n * ohw + s) * NV], acc0);
        if (NV > 1u) { acc1 = fma(v, uwin[(n * ohw + s) * NV + 1u], acc1); }
      }
    }
  }
  if (i_raw >= p.n) { return; }
  // mode 0: dw[j, i] for j < C_out (i = (ci, ky, kx)); mode 1: dw[i, j] for j < C_in
  let narrow = select(IC, OC, NW_MODE == 0u);
  for (var j = 0u; j < narrow; j++) {
    let o = p.off_out + select(i * IC + j, j * IC * KH * KW + i, NW_MODE == 0u);
    var v = select(acc1[j % 4u], acc0[j % 4u], j < 4u);
    if (p.len == 1u) { v += out[o]; }
    out[o] = v;
  }
}


// ------------------------------------------------------------ SIMD-8 packing (lavapipe)
//
// Gathers that lay a convolution's GEMM operands out as matmul's simd8 product
// (kernels/simd8/matmul.wgsl) reads them, straight from the NCHW tensors (no im2col buffer): U (the
// rows, an rgba32float array texture of 16-row panes) and T (one of 32-column panels, texel
// (lane, y, layer) = T[k][panel * 32 + 4 lane .. + 3]). matmul's simd8 product then runs
// (src/engine/simd8/conv.ts). Why that layout: on llvmpipe a loop's storage loads go
// one lane at a time with a bounds check each, while texel fetches gather all 8 lanes at once.
//
//   PK_MODE 0, forward      U = w [C_out, (ci, ky, kx)]      T[(ci, ky, kx)][(n, oy, ox)] = x[...]
//   PK_MODE 1, input grad   U = w as [C_in, (co, ty, tx)]    T[(co, ty, tx)][(n, iy, ix)] = dy[...]
//   PK_MODE 2, weight grad  U = dy as [C_out, (n, oy, ox)]   T[(n, oy, ox)][(ci, ky, kx)] = x[...]
//                           (K in groups of images: later groups add into dw in the product)
//
// Input gradient by stride phases (QH = SH, QW = SW, dilation 1): one product per phase
// sp.phase = py * QW + px, whose columns are the positions (iy, ix) = (QH iy' + py, QW ix' + px)
// on a HQ x WQ grid and whose taps are ky = (py + PH) mod QH + QH ty, NTH x NTW of them (the
// phase's own counts: a pipeline per phase shape); phases no tap reaches have no product (their
// dx is zero) and `simd_scatter` moves the phases' [slot][n][ci][HQ*WQ] products into dx.
// Unphased: QH = QW = 1, taps = the whole kernel, the stride's divisibility tested per element.

struct PackParams {
  rows: u32,        // U rows
  cols: u32,        // T columns (of this group of images)
  K: u32,
  kc: u32,          // the simd8 plan (src/engine/simd8/matmul.ts, Simd8Plan)
  win_rows: u32,
  n_chunks: u32,
  kh: u32,
  n_kt: u32,
  panels: u32,
  off_src: u32,
  n0: u32,          // first image of this group of images (forward and input gradient: of T's
                    // columns; weight gradient: of K; simd_scatter)
  phase: u32,       // input gradient: the stride phase py * QW + px this product computes
  off_dst: u32,     // simd_scatter: offset of dx
  u_per: u32,       // simd_pack_u: U's panes per texture layer (matmul.wgsl's SimdParams.u_per)
  _s1: u32,
  _s2: u32,
  slot: array<vec4<u32>, 4>,   // simd_scatter: phase -> its slot in the scratch + 1 (0: no tap)
};

@group(0) @binding(0) var<uniform> sp: PackParams;
@group(0) @binding(1) var tpack: texture_storage_2d_array<rgba32float, write>;

override PK_MODE: u32 = 0u;
override QH: u32 = 1u;
override QW: u32 = 1u;
override HQ: u32 = 1u;   // ceil(IH / QH)
override WQ: u32 = 1u;   // ceil(IW / QW)
override NKT: u32 = 1u;  // texture layers per panel (the plan's n_kt)

// The kernel tap (ky, kx) of reduction index t = ty * NTW + tx of this phase (input grad).
fn pk_tap(t: u32) -> vec2<u32> {
  let py = sp.phase / QW;
  let px = sp.phase % QW;
  return vec2<u32>((py + PH) % QH + t / NTW * QH, (px + PW) % QW + t % NTW * QW);
}

// x[n, ci, oy * SH - PH + ky * DH, ox * SW - PW + kx * DW] for tap t = (ky, kx) and output position s.
fn pk_x(n: u32, ci: u32, t: u32, s: u32) -> f32 {
  let iy = i32(s / OW * SH + t / KW * DH) - i32(PH);
  let ix = i32(s % OW * SW + t % KW * DW) - i32(PW);
  if (iy < 0 || iy >= i32(IH) || ix < 0 || ix >= i32(IW)) { return 0.0; }
  return a[sp.off_src + ((n * IC + ci) * IH + u32(iy)) * IW + u32(ix)];
}

// U[row][k], zero beyond the rows and K.
fn pk_u(row: u32, k: u32) -> f32 {
  if (row >= sp.rows || k >= sp.K) { return 0.0; }
  if (PK_MODE == 0u) { return a[sp.off_src + row * sp.K + k]; }
  if (PK_MODE == 1u) {
    let ntap = NTH * NTW;
    let tap = pk_tap(k % ntap);
    if (tap.x >= KH || tap.y >= KW) { return 0.0; }
    return a[sp.off_src + ((k / ntap * IC + row) * KH + tap.x) * KW + tap.y];
  }
  let ohw = OH * OW;
  return a[sp.off_src + ((sp.n0 + k / ohw) * OC + row) * ohw + k % ohw];
}

// T[k][c] (c counted from this group's first column), zero beyond K and the columns.
fn pk_t(k: u32, c: u32) -> f32 {
  if (k >= sp.K || c >= sp.cols) { return 0.0; }
  if (PK_MODE == 0u) {
    let taps = KH * KW;
    let ohw = OH * OW;
    return pk_x(sp.n0 + c / ohw, k / taps, k % taps, c % ohw);
  }
  if (PK_MODE == 1u) {
    let ntap = NTH * NTW;
    let tap = pk_tap(k % ntap);
    let hw = HQ * WQ;
    let s = c % hw;
    let iy = s / WQ * QH + sp.phase / QW;
    let ix = s % WQ * QW + sp.phase % QW;
    let th = i32(iy + PH) - i32(tap.x * DH);
    let tw = i32(ix + PW) - i32(tap.y * DW);
    if (tap.x >= KH || tap.y >= KW || iy >= IH || ix >= IW || th < 0 || tw < 0) { return 0.0; }
    let oy = u32(th) / SH;
    let ox = u32(tw) / SW;
    if (oy * SH != u32(th) || ox * SW != u32(tw) || oy >= OH || ox >= OW) { return 0.0; }
    return a[sp.off_src + (((sp.n0 + c / hw) * OC + k / ntap) * OH + oy) * OW + ox];
  }
  let taps = KH * KW;
  let ohw = OH * OW;
  return pk_x(sp.n0 + k / ohw, c / taps, c % taps, k % ohw);
}

// U's panes as kernels/simd8/matmul.wgsl's pack_u lays them out (one batch entry): pane
// p = block * n_kt + kt. A thread writes the 8 texels of one texture row y (8 rows of U at k =
// 4 y' .. + 3): the 8 lanes of a subgroup take 8 consecutive rows y, so each of their loads reads
// 32 consecutive floats of a U row (a lane per row of U: a WRN-40-2 step's U packs 532 ms against
// 500, bench/NOTES.md, "Host cost per step, session 9").
@compute @workgroup_size(8, 8)
fn simd_pack_u(@builtin(global_invocation_id) gid: vec3<u32>) {
  let layer = gid.z;
  let uh = sp.kh / 4u;
  let y = gid.y * 8u + gid.x;
  if (y >= uh * sp.u_per) { return; }
  let pane = layer / 2u * sp.u_per + y / uh;
  if (pane >= (sp.rows + 15u) / 16u * sp.n_kt) { return; }
  let row0 = pane / sp.n_kt * 16u + layer % 2u * 8u;
  let k = pane % sp.n_kt * sp.kh + y % uh * 4u;
  for (var x = 0u; x < 8u; x++) {
    let row = row0 + x;
    textureStore(tpack, vec2<u32>(x, y), layer, vec4<f32>(pk_u(row, k), pk_u(row, k + 1u), pk_u(row, k + 2u), pk_u(row, k + 3u)));
  }
}

// Texel (x, y, layer), layer = panel * NKT + kt: T[kt * kh + y][panel * 32 + 4x ..].
// workgroup_id.z = the layer; a workgroup is the 8
// lanes of one panel (lane = texture column x) and walks PK_ROWS texel rows, or PK_GROUPS tap rows
// on the window path. Measured on lavapipe (wrn-g1-fwd's T, CPU time per element): one texel per
// thread 9 ns, 16 rows per thread 5.6 (llvmpipe derives the invocation ids with a division per
// lane, and a division by a run-time value is scalarised: every division here is by an override).
override PK_ROWS: u32 = 16u;
override PK_WIN: bool = false;   // the window path (the host checks that it applies)
override PK_GROUPS: u32 = 4u;    // window path: tap rows per workgroup
override WN: u32 = 1u;           // window path: taps (texel rows) per tap row: KW, or NTW
override WC: u32 = 1u;           // window path: source step between the 4 columns
override WT: u32 = 1u;           // window path: source step between taps
override WLEN: u32 = 4u;         // window path: 3 WC + (WN - 1) WT + 1 <= 16

@compute @workgroup_size(8)
fn simd_pack_t(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let kt = wg.z % NKT;
  let panel = wg.z / NKT;
  let layer = wg.z;
  let c = panel * 32u + lane * 4u;
  if (PK_WIN) {
    for (var r = 0u; r < PK_GROUPS; r++) {
      let gi = wg.y * PK_GROUPS + r;
      if (gi * WN >= sp.kh) { break; }
      pk_window(gi, c, lane, layer);
    }
    return;
  }
  for (var r = 0u; r < PK_ROWS; r++) {
    let y = wg.y * PK_ROWS + r;
    if (y >= sp.kh) { break; }
    let k = kt * sp.kh + y;
    textureStore(tpack, vec2<u32>(lane, y), layer, vec4<f32>(pk_t(k, c), pk_t(k, c + 1u), pk_t(k, c + 2u), pk_t(k, c + 3u)));
  }
}

// The window path (one texture layer per panel; forward, or input gradient by phases or at
// stride 1): the WN texels of tap row gi, k = gi * WN + t, for the columns c .. c + 3, which lie
// in one row of the output (forward) or of the phase's grid (input gradient). Their sources lie
// in one row of x (dy) at positions pos0 + e, e = j WC + t WT (forward) or j + (WN - 1 - t) WT,
// so one window of WLEN loads feeds 4 WN elements (3x3, stride 1: 6 loads for 12).
fn pk_window(gi: u32, c: u32, lane: u32, layer: u32) {
  var row_ok = c < sp.cols;
  var rowbase = 0u;
  var pos0 = 0i;
  var width = 0u;
  var colmask = vec4<bool>(true);
  var rx = 0u;
  if (PK_MODE == 0u) {
    let ci = gi / KH;
    let ky = gi % KH;
    let s = c % (OH * OW);
    let iy = i32(s / OW * SH + ky * DH) - i32(PH);
    row_ok = row_ok && ci < IC && iy >= 0 && iy < i32(IH);
    rowbase = sp.off_src + ((sp.n0 + c / (OH * OW)) * IC + ci) * IH * IW + u32(max(iy, 0)) * IW;
    pos0 = i32(s % OW * SW) - i32(PW);
    width = IW;
  } else {
    let py = sp.phase / QW;
    let px = sp.phase % QW;
    rx = (px + PW) % QW;
    let co = gi / NTH;
    let ky = (py + PH) % QH + gi % NTH * QH;
    let s = c % (HQ * WQ);
    let iy = s / WQ * QH + py;
    let ixq = s % WQ;
    let th = i32(iy + PH) - i32(ky * DH);
    let oy = u32(max(th, 0)) / SH;
    row_ok = row_ok && co < OC && ky < KH && iy < IH && th >= 0 && oy < OH;
    rowbase = sp.off_src + ((sp.n0 + c / (HQ * WQ)) * OC + co) * OH * OW + oy * OW;
    // ox of column j and tap t: ixq + j + (px + PW - rx) / SW - t WT (phases: SW = QW, WT = 1;
    // stride 1: rx = 0, WT = DW)
    pos0 = i32(ixq + (px + PW - rx) / SW) - i32((WN - 1u) * WT);
    width = OW;
    colmask = vec4<u32>(ixq) * QW + vec4<u32>(0u, 1u, 2u, 3u) * QW + px < vec4<u32>(IW);
  }
  var win: array<f32, 16>;
  for (var e = 0u; e < WLEN; e++) {
    let pos = pos0 + i32(e);
    let ok = row_ok && pos >= 0 && pos < i32(width);
    win[e] = select(0.0, a[select(0u, rowbase + u32(pos), ok)], ok);
  }
  for (var t = 0u; t < WN; t++) {
    let y = gi * WN + t;
    if (y < sp.kh) {
      var v: vec4<f32>;
      if (PK_MODE == 0u) {
        v = vec4<f32>(win[t * WT], win[WC + t * WT], win[2u * WC + t * WT], win[3u * WC + t * WT]);
      } else {
        let e = (WN - 1u - t) * WT;
        v = select(vec4<f32>(0.0), vec4<f32>(win[e], win[e + 1u], win[e + 2u], win[e + 3u]), colmask & vec4<bool>(rx + t * QW < KW));
      }
      textureStore(tpack, vec2<u32>(lane, y), layer, v);
    }
  }
}

// dx of this group's images from the phases' products (`a`: [slot][n][ci][HQ * WQ]); sp.cols =
// images x HQ x WQ. A thread writes 4 consecutive positions of a row with one vec4 store (IW a
// multiple of 4, dx aligned: the host checks; 13 -> ~3 ns per element on wrn-g2-sc): on
// llvmpipe a store goes lane by lane, so 4 scalar stores cost about 4 vector ones.
@group(0) @binding(1) var<storage, read_write> dx4: array<vec4<f32>>;

fn scatter_at(i: u32, ng: u32) -> f32 {
  let ihw = IH * IW;
  let s = i % ihw;
  let iy = s / IW;
  let ix = s % IW;
  let phase = iy % QH * QW + ix % QW;
  let zp = sp.slot[phase / 4u][phase % 4u];
  if (zp == 0u) { return 0.0; }
  return a[sp.off_src + ((zp - 1u) * ng * IC + i / ihw) * HQ * WQ + iy / QH * WQ + ix / QW];
}

@compute @workgroup_size(WG)
fn simd_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let ng = sp.cols / (HQ * WQ);
  if (i >= ng * IC * IH * IW) { return; }
  out[sp.off_dst + sp.n0 * IC * IH * IW + i] = scatter_at(i, ng);
}

@compute @workgroup_size(WG)
fn simd_scatter4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i4 = gid.x + gid.y * nwg.x * WG;
  let ng = sp.cols / (HQ * WQ);
  if (i4 * 4u >= ng * IC * IH * IW) { return; }
  let i = i4 * 4u;
  let v = vec4<f32>(scatter_at(i, ng), scatter_at(i + 1u, ng), scatter_at(i + 2u, ng), scatter_at(i + 3u, ng));
  dx4[(sp.off_dst + sp.n0 * IC * IH * IW) / 4u + i4] = v;
}
