{{SUBGROUPS}}
// 2-D convolution, NCHW, as implicit GEMM: no im2col buffer, the GEMM operands are gathered from
// the image and the weight while the workgroup tiles are loaded.
//
//   forward     y[n, co, oh, ow]  = sum_{ci, kh, kw} w[co, ci, kh, kw] * x[n, ci, oh*S - P + kh*D, ...]
//               GEMM rows co, columns (n, oh, ow), reduction (ci, kh, kw)
//   input grad  dx[n, ci, ih, iw] = sum_{co, kh, kw} w[co, ci, kh, kw] * dy[n, co, (ih + P - kh*D) / S, ...]
//               GEMM rows ci, columns (n, ih, iw), reduction (co, kh, kw); terms whose division
//               is not exact or falls outside the output are zero
//   weight grad dw[co, ci, kh, kw] = sum_{n, oh, ow} dy[n, co, oh, ow] * x[n, ci, oh*S - P + kh*D, ...]
//               GEMM rows co, columns (ci, kh, kw), reduction (n, oh, ow) split over SPLITS
//               workgroups along z; `sum_splits` then adds the partial products (deterministic,
//               no atomics)
//
// Every geometry value is an `override`: a pipeline is specialised per convolution shape, so the
// compiler folds the index divisions (by 9, by 3, by OH*OW) into multiplies and shifts and drops
// the padding tests of 1x1 kernels. This is where the 3x3 and 1x1 fast paths come from; integer
// division is the most expensive instruction of these loops (a software Vulkan scalarises it).
// Groups run along workgroup z. `direct_*` entry points serve depthwise and other convolutions
// whose groups are too narrow for a GEMM tile. The software adapter's kernels (SIMD-8 direct and
// narrow kernels, the gathers for matmul's simd8 product) are in kernels/simd8/conv2d.wgsl.
//
// Tiles: BM = 8*TY rows by BN = 8*TX columns, BK deep; each thread keeps an 8x8 block of
// outputs in sixteen vec4 accumulators (function-local): rows 4ty..4ty+3 and BM/2+4ty.., columns
// 4tx..4tx+3 and BN/2+4tx.., so a reduction step costs 4 vector loads for 64 multiply-adds.
// The B-tile loader gives each thread one column (TY >= 8) or 128 / (16 TY) of them (TY < 8).
//
// Subgroups: where the adapter has them the loader's template step fills the first line with
// `enable subgroups;` and SG_FIRST with subgroupBroadcastFirst (else both are empty and the file
// stays portable). With SG_ROWS (set by the host when every subgroup lies inside one row of TX
// threads: subgroups of at most TX consecutive invocations, llvmpipe's 8 with TX = 16) a thread's
// row group ty is declared uniform across its subgroup, so a software adapter loads the A
// fragment of each reduction step once per subgroup instead of gathering it lane by lane.
//
// The fused activation's math is kernels/activation.wgsl's; wg_sum (bias and direct weight
// gradients) is kernels/workgroup-sum.wgsl's:
// include: activation
// include: workgroup-sum

// The parameter block, bindings, geometry overrides, cig/cog and activate: kernels/conv2d-params.wgsl,
// shared with the software adapter's kernels (kernels/simd8/conv2d.wgsl).
// include: conv2d-params


// Tiles in workgroup memory as vec4s: a thread reads its 4 rows and its 4 columns of one
// reduction step with two vector loads.
var<workgroup> As: array<vec4<f32>, BK * TY * 2u>;   // [BK][BM/4]
var<workgroup> Bs: array<vec4<f32>, BK * TX * 2u>;   // [BK][BN/4]

// acc[2i + h]: row r(i) = (i < 4 ? 4ty + i : 4(TY + ty) + i - 4), columns c(h) = 4(h*TX + tx) + 0..3
alias Acc = array<vec4<f32>, 16>;


// ty, made subgroup-uniform when SG_ROWS (the identity without subgroups). Called only in
// workgroup-uniform control flow (between the barriers of the tile loop).
fn row_group(ty: u32) -> u32 {
  let first = {{SG_FIRST}}(ty);
  return select(ty, first, SG_ROWS);
}

// acc += As^T Bs over the BK slice in workgroup memory: 4 vector loads feed 64 multiply-adds.
fn mma(acc: ptr<function, Acc>, tx: u32, ty_lane: u32) {
  let ty = row_group(ty_lane);
  for (var kk = 0u; kk < BK; kk++) {
    let a0 = As[kk * 2u * TY + ty];
    let a1 = As[kk * 2u * TY + TY + ty];
    let b0 = Bs[kk * 2u * TX + tx];
    let b1 = Bs[kk * 2u * TX + TX + tx];
    let av = array<f32, 8>(a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
    for (var i = 0u; i < 8u; i++) {
      (*acc)[2u * i] = fma(vec4<f32>(av[i]), b0, (*acc)[2u * i]);
      (*acc)[2u * i + 1u] = fma(vec4<f32>(av[i]), b1, (*acc)[2u * i + 1u]);
    }
  }
}

fn acc_row(i: u32, ty: u32) -> u32 {
  return select(4u * ty + i, 4u * (TY + ty) + i - 4u, i >= 4u);
}

fn acc_col(h: u32, j: u32, tx: u32) -> u32 {
  return 4u * (h * TX + tx) + j;
}

fn store_a(e: u32, v: f32) {
  // element (k = e % BK, m = e / BK) of the A tile
  let m = e / BK;
  As[(e % BK) * 2u * TY + m / 4u][m % 4u] = v;
}

fn store_b(kk: u32, jj: u32, v: f32) {
  Bs[kk * 2u * TX + jj / 4u][jj % 4u] = v;
}

// ------------------------------------------------------------------------------------ forward

@compute @workgroup_size(TX, TY)
fn conv_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
  let g = wid.z;
  let bm = TY * 8u;
  let bn = TX * 8u;
  let nthreads = TX * TY;
  let row0 = wid.y * bm;
  let col0 = wid.x * bn;
  let kk_taps = KH * KW;
  let kdim = cig() * kk_taps;
  let ohw = OH * OW;
  let ihw = IH * IW;

  let wbase = p.off_b + g * cog() * kdim;

  var acc: Acc;
  for (var k0 = 0u; k0 < kdim; k0 += BK) {
    // A tile: weights, reduction index fastest (contiguous reads)
    for (var e = li; e < BK * bm; e += nthreads) {
      let k = k0 + e % BK;
      let m = row0 + e / BK;
      var v = 0.0;
      if (k < kdim && m < cog()) { v = b[wbase + m * kdim + k]; }
      store_a(e, v);
    }
    // B tile: the image gathered through the convolution window
    for (var sl = 0u; sl < max(bn / nthreads, 1u); sl++) {
      let jj = li % bn + sl * nthreads;
      let j = col0 + jj;
      let col_ok = j < p.cols;
      let jn = j / ohw;
      let jr = j % ohw;
      let ih0 = i32(jr / OW * SH) - i32(PH);
      let iw0 = i32(jr % OW * SW) - i32(PW);
      let xbase = p.off_a + (jn * IC + g * cig()) * ihw;
      for (var kk = li / bn; kk < BK; kk += max(nthreads / bn, 1u)) {
        let k = k0 + kk;
        var v = 0.0;
        let ci = k / kk_taps;
        let r = k % kk_taps;
        let ih = ih0 + i32(r / KW * DH);
        let iw = iw0 + i32(r % KW * DW);
        if (col_ok && k < kdim && ih >= 0 && ih < i32(IH) && iw >= 0 && iw < i32(IW)) {
          v = a[xbase + ci * ihw + u32(ih) * IW + u32(iw)];
        }
        store_b(kk, jj, v);
      }
    }
    workgroupBarrier();
    mma(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  for (var i = 0u; i < 8u; i++) {
    let m = row0 + acc_row(i, lid.y);
    if (m >= cog()) { continue; }
    let co = g * cog() + m;
    var bias = 0.0;
    if (HAS_BIAS) { bias = c[p.off_c + co]; }
    for (var jx = 0u; jx < 8u; jx++) {
      let col = col0 + acc_col(jx / 4u, jx % 4u, lid.x);
      if (col >= p.cols) { continue; }
      let n = col / ohw;
      let s = col % ohw;
      out[p.off_out + (n * OC + co) * ohw + s] = activate(acc[2u * i + jx / 4u][jx % 4u] + bias);
    }
  }
}

// --------------------------------------------------------------------------------- input grad

@compute @workgroup_size(TX, TY)
fn conv_dgrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
  let g = wid.z;
  let bm = TY * 8u;
  let bn = TX * 8u;
  let nthreads = TX * TY;
  let row0 = wid.y * bm;
  let col0 = wid.x * bn;
  let kk_taps = KH * KW;
  let kdim = cog() * kk_taps;
  let wrow = cig() * kk_taps;
  let ohw = OH * OW;
  let ihw = IH * IW;

  let wbase = p.off_b + g * cog() * wrow;

  var acc: Acc;
  for (var k0 = 0u; k0 < kdim; k0 += BK) {
    // A tile: A[ci, (co, kh, kw)] = w[co, ci, kh, kw]
    for (var e = li; e < BK * bm; e += nthreads) {
      let k = k0 + e % BK;
      let m = row0 + e / BK;
      var v = 0.0;
      if (k < kdim && m < cig()) {
        let co = k / kk_taps;
        let r = k % kk_taps;
        v = b[wbase + co * wrow + m * kk_taps + r];
      }
      store_a(e, v);
    }
    for (var sl = 0u; sl < max(bn / nthreads, 1u); sl++) {
      let jj = li % bn + sl * nthreads;
      let j = col0 + jj;
      let col_ok = j < p.cols;
      let jn = j / ihw;
      let jr = j % ihw;
      let th0 = i32(jr / IW + PH);
      let tw0 = i32(jr % IW + PW);
      let dybase = p.off_a + (jn * OC + g * cog()) * ohw;
      for (var kk = li / bn; kk < BK; kk += max(nthreads / bn, 1u)) {
        let k = k0 + kk;
        var v = 0.0;
        let co = k / kk_taps;
        let r = k % kk_taps;
        let th = th0 - i32(r / KW * DH);
        let tw = tw0 - i32(r % KW * DW);
        let oh = th / i32(SH);
        let ow = tw / i32(SW);
        if (col_ok && k < kdim && th >= 0 && tw >= 0 && th % i32(SH) == 0 && tw % i32(SW) == 0 &&
            oh < i32(OH) && ow < i32(OW)) {
          v = a[dybase + co * ohw + u32(oh) * OW + u32(ow)];
        }
        store_b(kk, jj, v);
      }
    }
    workgroupBarrier();
    mma(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  for (var i = 0u; i < 8u; i++) {
    let m = row0 + acc_row(i, lid.y);
    if (m >= cig()) { continue; }
    let ci = g * cig() + m;
    for (var jx = 0u; jx < 8u; jx++) {
      let col = col0 + acc_col(jx / 4u, jx % 4u, lid.x);
      if (col >= p.cols) { continue; }
      let n = col / ihw;
      let s = col % ihw;
      out[p.off_out + (n * IC + ci) * ihw + s] = acc[2u * i + jx / 4u][jx % 4u];
    }
  }
}

// -------------------------------------------------------------------------------- weight grad

@compute @workgroup_size(TX, TY)
fn conv_wgrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
  let g = wid.z / SPLITS;
  let split = wid.z % SPLITS;
  let bm = TY * 8u;
  let bn = TX * 8u;
  let nthreads = TX * TY;
  let row0 = wid.y * bm;
  let col0 = wid.x * bn;
  let kk_taps = KH * KW;
  let ncols = cig() * kk_taps;
  let ohw = OH * OW;
  let ihw = IH * IW;
  let kbeg = split * p.k_per_split;
  let kend = min(kbeg + p.k_per_split, p.kdim);


  var acc: Acc;
  for (var k0 = kbeg; k0 < kend; k0 += BK) {
    // A tile: A[co, (n, oh, ow)] = dy[n, co, oh, ow], reduction index fastest
    for (var e = li; e < BK * bm; e += nthreads) {
      let k = k0 + e % BK;
      let m = row0 + e / BK;
      var v = 0.0;
      if (k < kend && m < cog()) {
        let n = k / ohw;
        let s = k % ohw;
        v = a[p.off_a + (n * OC + g * cog() + m) * ohw + s];
      }
      store_a(e, v);
    }
    for (var sl = 0u; sl < max(bn / nthreads, 1u); sl++) {
      let jj = li % bn + sl * nthreads;
      let j = col0 + jj;
      let col_ok = j < ncols;
      let ci = j / kk_taps;
      let r = j % kk_taps;
      let dh = i32(r / KW * DH) - i32(PH);
      let dw = i32(r % KW * DW) - i32(PW);
      let xc = p.off_b + (g * cig() + ci) * ihw;
      for (var kk = li / bn; kk < BK; kk += max(nthreads / bn, 1u)) {
        let k = k0 + kk;
        var v = 0.0;
        let n = k / ohw;
        let s = k % ohw;
        let ih = i32(s / OW * SH) + dh;
        let iw = i32(s % OW * SW) + dw;
        if (col_ok && k < kend && ih >= 0 && ih < i32(IH) && iw >= 0 && iw < i32(IW)) {
          v = b[xc + n * IC * ihw + u32(ih) * IW + u32(iw)];
        }
        store_b(kk, jj, v);
      }
    }
    workgroupBarrier();
    mma(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  let total = OC * ncols;
  for (var i = 0u; i < 8u; i++) {
    let m = row0 + acc_row(i, lid.y);
    if (m >= cog()) { continue; }
    let co = g * cog() + m;
    for (var jx = 0u; jx < 8u; jx++) {
      let col = col0 + acc_col(jx / 4u, jx % 4u, lid.x);
      if (col >= ncols) { continue; }
      out[p.off_out + split * total + co * ncols + col] = acc[2u * i + jx / 4u][jx % 4u];
    }
  }
}

// out[i] = sum over s of part[s * len + i]: the split-K partial weight gradients, in a fixed order.
@compute @workgroup_size(WG)
fn sum_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.len) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.n; k++) { s += a[p.off_a + k * p.len + i]; }
  out[p.off_out + i] = s;
}

// ------------------------------------------------------------ direct kernels (narrow groups)

// One thread per output element.
@compute @workgroup_size(WG)
fn direct_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let ohw = OH * OW;
  let ihw = IH * IW;
  let s = i % ohw;
  let co = (i / ohw) % OC;
  let n = i / (ohw * OC);
  let g = co / cog();
  let ih0 = i32(s / OW * SH) - i32(PH);
  let iw0 = i32(s % OW * SW) - i32(PW);
  var v = 0.0;
  for (var ci = 0u; ci < cig(); ci++) {
    let xb = p.off_a + (n * IC + g * cig() + ci) * ihw;
    let wb = p.off_b + (co * cig() + ci) * KH * KW;
    for (var kh = 0u; kh < KH; kh++) {
      let ih = ih0 + i32(kh * DH);
      if (ih < 0 || ih >= i32(IH)) { continue; }
      for (var kw = 0u; kw < KW; kw++) {
        let iw = iw0 + i32(kw * DW);
        if (iw < 0 || iw >= i32(IW)) { continue; }
        v += a[xb + u32(ih) * IW + u32(iw)] * b[wb + kh * KW + kw];
      }
    }
  }
  if (HAS_BIAS) { v += c[p.off_c + co]; }
  out[p.off_out + i] = activate(v);
}

// The output row (column) whose window puts tap offset t = position + padding - tap * dilation
// on this input position: t / stride when t is a non-negative multiple of the stride inside the
// output, else -1 (direct_dgrad, direct_dgrad_u).
fn dg_source(t: i32, stride: u32, size: u32) -> i32 {
  if (t < 0 || t % i32(stride) != 0 || t / i32(stride) >= i32(size)) { return -1; }
  return t / i32(stride);
}

// One thread per input position and block of CIB (<= 8) input channels of one group: gathers the
// outputs whose window covers it. Each gathered dy value feeds CIB multiply-adds, and the weight
// addresses depend only on loop counters (the same for every lane).
override CIB: u32 = 1u;

@compute @workgroup_size(WG)
fn direct_dgrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let ohw = OH * OW;
  let ihw = IH * IW;
  let taps = KH * KW;
  let nchunk = (cig() + CIB - 1u) / CIB;
  let s = i % ihw;
  let q = i / ihw;
  let chunk = q % nchunk;
  let g = (q / nchunk) % GROUPS;
  let n = q / (nchunk * GROUPS);
  let ci0 = chunk * CIB;
  let th0 = i32(s / IW + PH);
  let tw0 = i32(s % IW + PW);
  var v: array<f32, 8>;
  for (var m = 0u; m < cog(); m++) {
    let co = g * cog() + m;
    let yb = p.off_a + (n * OC + co) * ohw;
    let wb = p.off_b + co * cig() * taps;
    for (var kh = 0u; kh < KH; kh++) {
      let oy = dg_source(th0 - i32(kh * DH), SH, OH);
      if (oy < 0) { continue; }
      for (var kw = 0u; kw < KW; kw++) {
        let ox = dg_source(tw0 - i32(kw * DW), SW, OW);
        if (ox < 0) { continue; }
        let y = a[yb + u32(oy) * OW + u32(ox)];
        for (var j = 0u; j < CIB; j++) {
          // channels past the group (last block) read a valid weight and are never stored
          let ci = min(ci0 + j, cig() - 1u);
          v[j] = fma(y, b[wb + ci * taps + kh * KW + kw], v[j]);
        }
      }
    }
  }
  for (var j = 0u; j < CIB; j++) {
    if (ci0 + j < cig()) { out[p.off_out + (n * IC + g * cig() + ci0 + j) * ihw + s] = v[j]; }
  }
}

// direct_dgrad for one group of at most 8 input channels with the weights in a uniform buffer,
// rearranged by `dgrad_wpack` to [co][kh][kw][WV vec4s of input channels]: a tap's weights are
// one or two branch-free uniform loads instead of CIB lane-by-lane storage gathers (llvmpipe
// loads storage inside a loop one lane at a time; kernels/simd8/matmul.wgsl). Needs
// OC * KH * KW * 4 WV <= 16384 floats (the host checks).
override WV: u32 = 1u;

@compute @workgroup_size(WG)
fn direct_dgrad_u(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let ohw = OH * OW;
  let ihw = IH * IW;
  let s = i % ihw;
  let n = i / ihw;
  let th0 = i32(s / IW + PH);
  let tw0 = i32(s % IW + PW);
  var v0 = vec4<f32>(0.0);
  var v1 = vec4<f32>(0.0);
  for (var co = 0u; co < OC; co++) {
    let yb = p.off_a + (n * OC + co) * ohw;
    for (var kh = 0u; kh < KH; kh++) {
      let oy = dg_source(th0 - i32(kh * DH), SH, OH);
      if (oy < 0) { continue; }
      for (var kw = 0u; kw < KW; kw++) {
        let ox = dg_source(tw0 - i32(kw * DW), SW, OW);
        if (ox < 0) { continue; }
        let y = a[yb + u32(oy) * OW + u32(ox)];
        let wi = ((co * KH + kh) * KW + kw) * WV;
        v0 = fma(vec4<f32>(y), uwin[wi], v0);
        if (WV > 1u) { v1 = fma(vec4<f32>(y), uwin[wi + 1u], v1); }
      }
    }
  }
  let ob = p.off_out + n * IC * ihw + s;
  out[ob] = v0.x;
  if (IC > 1u) { out[ob + ihw] = v0.y; }
  if (IC > 2u) { out[ob + 2u * ihw] = v0.z; }
  if (IC > 3u) { out[ob + 3u * ihw] = v0.w; }
  if (IC > 4u) { out[ob + 4u * ihw] = v1.x; }
  if (IC > 5u) { out[ob + 5u * ihw] = v1.y; }
  if (IC > 6u) { out[ob + 6u * ihw] = v1.z; }
  if (IC > 7u) { out[ob + 7u * ihw] = v1.w; }
}

// The weights [co][ci][kh][kw] as direct_dgrad_u reads them, [co][kh][kw][4 WV] (zero past IC);
// p.n = OC * KH * KW * 4 WV.
@compute @workgroup_size(WG)
fn dgrad_wpack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= p.n) { return; }
  let ci = e % (4u * WV);
  let tap = e / (4u * WV);
  var v = 0.0;
  if (ci < IC) { v = a[p.off_a + (tap / (KH * KW) * IC + ci) * KH * KW + tap % (KH * KW)]; }
  out[p.off_out + e] = v;
}

// One workgroup per weight element, reducing over batch and space.
@compute @workgroup_size(WG)
fn direct_wgrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
  let widx = wid.x + wid.y * nwg.x;
  let valid = widx < p.n;                     // uniform per workgroup
  let ohw = OH * OW;
  let ihw = IH * IW;
  let kw = widx % KW;
  let kh = (widx / KW) % KH;
  let ci = (widx / (KW * KH)) % cig();
  let co = widx / (KW * KH * cig());
  let g = co / cog();
  var v = 0.0;
  if (valid) {
    for (var k = lid.x; k < p.kdim; k += WG) {
      let n = k / ohw;
      let s = k % ohw;
      let ih = i32(s / OW * SH + kh * DH) - i32(PH);
      let iw = i32(s % OW * SW + kw * DW) - i32(PW);
      if (ih < 0 || ih >= i32(IH) || iw < 0 || iw >= i32(IW)) { continue; }
      v += a[p.off_a + (n * OC + co) * ohw + s] * b[p.off_b + (n * IC + g * cig() + ci) * ihw + u32(ih) * IW + u32(iw)];
    }
  }
  let total = wg_sum(v, lid.x);
  if (valid && lid.x == 0u) { out[p.off_out + widx] = total; }
}

// --------------------------------------------------------------------------- epilogue helpers

// Bias gradient: one workgroup per channel, sum of dy over batch and space (len = N).
@compute @workgroup_size(WG)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let co = wid.x;
  let ohw = OH * OW;
  var v = 0.0;
  for (var k = lid.x; k < p.len * ohw; k += WG) {
    let n = k / ohw;
    v += a[p.off_a + (n * OC + co) * ohw + k % ohw];
  }
  let total = wg_sum(v, lid.x);
  if (lid.x == 0u) { out[p.off_out + co] = total; }
}

// Gradient through the fused activation, from the activated output y: g * act'(y).
@compute @workgroup_size(WG)
fn act_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let gv = a[p.off_a + i];
  let y = b[p.off_b + i];
  out[p.off_out + i] = gv * act_deriv_from_output(ACT, y, p.alpha);
}

// ------------------------------------------------------------ input grad, strided (phases)
//
// With stride S > 1 (dilation 1), an input row ih only receives taps kh = (ih + PH) mod S + S t:
// the other taps' divisions are not exact. Input positions are split into the S_h * S_w phases
// (ih mod S_h, iw mod S_w), one per workgroup z-slice; each phase runs the GEMM over its own taps
// only (NTH = ceil(KH / SH) by NTW = ceil(KW / SW), those past the kernel masked), so a 3x3
// stride-2 gradient does 4 taps' work per position instead of 9, and no zero tiles.

override NTH: u32 = 1u;
override NTW: u32 = 1u;

@compute @workgroup_size(TX, TY)
fn conv_dgrad_phased(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                     @builtin(local_invocation_index) li: u32) {
  let nph = SH * SW;
  let g = wid.z / nph;
  let phase = wid.z % nph;
  let ph = phase / SW;
  let pw = phase % SW;
  let kh0 = (ph + PH) % SH;
  let kw0 = (pw + PW) % SW;
  let bm = TY * 8u;
  let bn = TX * 8u;
  let nthreads = TX * TY;
  let row0 = wid.y * bm;
  let col0 = wid.x * bn;
  let kk_taps = KH * KW;
  let ntaps = NTH * NTW;
  // a phase no tap reaches (odd rows of a 1x1 stride-2 convolution) only writes zeros
  let kdim = select(cog() * ntaps, 0u, kh0 >= KH || kw0 >= KW);
  let wrow = cig() * kk_taps;
  let ohw = OH * OW;
  let ihw = IH * IW;
  // positions of this phase, on a grid of ceil(IH / SH) x ceil(IW / SW) (the excess masked)
  let ihp = (IH + SH - 1u) / SH;
  let iwp = (IW + SW - 1u) / SW;
  let phw = ihp * iwp;
  let wbase = p.off_b + g * cog() * wrow;

  var acc: Acc;
  for (var k0 = 0u; k0 < kdim; k0 += BK) {
    for (var e = li; e < BK * bm; e += nthreads) {
      let k = k0 + e % BK;
      let m = row0 + e / BK;
      let co = k / ntaps;
      let t = k % ntaps;
      let kh = kh0 + t / NTW * SH;
      let kw = kw0 + t % NTW * SW;
      var v = 0.0;
      if (k < kdim && m < cig() && kh < KH && kw < KW) {
        v = b[wbase + co * wrow + m * kk_taps + kh * KW + kw];
      }
      store_a(e, v);
    }
    for (var sl = 0u; sl < max(bn / nthreads, 1u); sl++) {
      let jj = li % bn + sl * nthreads;
      let j = col0 + jj;
      let jn = j / phw;
      let jr = j % phw;
      let ih = ph + jr / iwp * SH;
      let iw = pw + jr % iwp * SW;
      let col_ok = j < p.cols && ih < IH && iw < IW;
      let dybase = p.off_a + (jn * OC + g * cog()) * ohw;
      for (var kk = li / bn; kk < BK; kk += max(nthreads / bn, 1u)) {
        let k = k0 + kk;
        let co = k / ntaps;
        let t = k % ntaps;
        let kh = kh0 + t / NTW * SH;
        let kw = kw0 + t % NTW * SW;
        // exact divisions: ih + PH - kh is a multiple of SH by the choice of kh0
        let th = i32(ih + PH) - i32(kh);
        let tw = i32(iw + PW) - i32(kw);
        let oh = th / i32(SH);
        let ow = tw / i32(SW);
        var v = 0.0;
        if (col_ok && k < kdim && kh < KH && kw < KW && th >= 0 && tw >= 0 && oh < i32(OH) && ow < i32(OW)) {
          v = a[dybase + co * ohw + u32(oh) * OW + u32(ow)];
        }
        store_b(kk, jj, v);
      }
    }
    workgroupBarrier();
    mma(&acc, lid.x, lid.y);
    workgroupBarrier();
  }

  for (var i = 0u; i < 8u; i++) {
    let m = row0 + acc_row(i, lid.y);
    if (m >= cig()) { continue; }
    let ci = g * cig() + m;
    for (var jx = 0u; jx < 8u; jx++) {
      let col = col0 + acc_col(jx / 4u, jx % 4u, lid.x);
      let n = col / phw;
      let r = col % phw;
      let ih = ph + r / iwp * SH;
      let iw = pw + r % iwp * SW;
      if (col >= p.cols || ih >= IH || iw >= IW) { continue; }
      out[p.off_out + (n * IC + ci) * ihw + ih * IW + iw] = acc[2u * i + jx / 4u][jx % 4u];
    }
  }
}
