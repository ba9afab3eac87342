// 2-D pooling (average, sum, max) and nearest-neighbour upsampling over NCHW planes, with their
// backward passes.
//
// Forward: one thread per output element. Backward: one thread per input element that gathers
// from every output whose window covers it, so no atomics are needed and results do not depend
// on scheduling. The max pool records the flat in-plane index of its (first) maximum; its
// backward routes each output gradient to that index.
//
// Geometry is in overrides (a pipeline per shape): divisions by the plane sizes fold.

struct Params {
  n: u32,           // threads (elements written)
  off_in: u32,      // offset of the input operand (x or the output gradient)
  _a: u32,
  _b: u32,
};

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256u;
override IH: u32 = 1u;
override IW: u32 = 1u;
override OH: u32 = 1u;
override OW: u32 = 1u;
override KH: u32 = 1u;
override KW: u32 = 1u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override OP: u32 = 0u;            // 0 average, 1 sum
override COUNT_PAD: bool = true;  // average: divide by the window including padding (PyTorch's default)
override SCALE: u32 = 2u;         // upsampling factor

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// PyTorch's divisor for the average of output (oh, ow).
fn divisor(oh: u32, ow: u32) -> f32 {
  let hs = i32(oh * SH) - i32(PH);
  let ws = i32(ow * SW) - i32(PW);
  let he = min(hs + i32(KH), i32(IH + PH));
  let we = min(ws + i32(KW), i32(IW + PW));
  if (COUNT_PAD) { return f32((he - hs) * (we - ws)); }
  return f32((min(he, i32(IH)) - max(hs, 0)) * (min(we, i32(IW)) - max(ws, 0)));
}

// ------------------------------------------------------------------------- average and sum

@group(0) @binding(1) var<storage, read_write> s_out: array<f32>;
@group(0) @binding(2) var<storage, read> s_in: array<f32>;

@compute @workgroup_size(WG)
fn pool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let plane = i / (OH * OW);
  let s = i % (OH * OW);
  let oh = s / OW;
  let ow = s % OW;
  let hs = i32(oh * SH) - i32(PH);
  let ws = i32(ow * SW) - i32(PW);
  let base = p.off_in + plane * IH * IW;
  var acc = 0.0;
  for (var kh = 0u; kh < KH; kh++) {
    let ih = hs + i32(kh);
    if (ih < 0 || ih >= i32(IH)) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let iw = ws + i32(kw);
      if (iw < 0 || iw >= i32(IW)) { continue; }
      acc += s_in[base + u32(ih) * IW + u32(iw)];
    }
  }
  if (OP == 0u) { acc = acc / divisor(oh, ow); }
  s_out[i] = acc;
}

// First and last output index (inclusive, may be empty) whose window covers input index t.
fn cover(t: u32, k: u32, s: u32, pad: u32, osize: u32) -> vec2<i32> {
  let lo_num = i32(t + pad) - i32(k) + 1;
  var lo = 0;
  if (lo_num > 0) { lo = (lo_num + i32(s) - 1) / i32(s); }
  let hi = min(i32(t + pad) / i32(s), i32(osize) - 1);
  return vec2<i32>(lo, hi);
}

@compute @workgroup_size(WG)
fn pool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let plane = i / (IH * IW);
  let s = i % (IH * IW);
  let ih = s / IW;
  let iw = s % IW;
  let rh = cover(ih, KH, SH, PH, OH);
  let rw = cover(iw, KW, SW, PW, OW);
  let base = p.off_in + plane * OH * OW;
  var acc = 0.0;
  for (var oh = rh.x; oh <= rh.y; oh++) {
    for (var ow = rw.x; ow <= rw.y; ow++) {
      var g = s_in[base + u32(oh) * OW + u32(ow)];
      if (OP == 0u) { g = g / divisor(u32(oh), u32(ow)); }
      acc += g;
    }
  }
  s_out[i] = acc;
}

// ------------------------------------------------------------------------------------- max

@group(0) @binding(1) var<storage, read_write> m_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> m_arg: array<i32>;
@group(0) @binding(3) var<storage, read> m_in: array<f32>;

@compute @workgroup_size(WG)
fn max_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let plane = i / (OH * OW);
  let s = i % (OH * OW);
  let hs = i32(s / OW * SH) - i32(PH);
  let ws = i32(s % OW * SW) - i32(PW);
  let base = p.off_in + plane * IH * IW;
  var best = 0.0;
  var arg = -1;            // no element yet: padding never wins
  for (var kh = 0u; kh < KH; kh++) {
    let ih = hs + i32(kh);
    if (ih < 0 || ih >= i32(IH)) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let iw = ws + i32(kw);
      if (iw < 0 || iw >= i32(IW)) { continue; }
      let v = m_in[base + u32(ih) * IW + u32(iw)];
      // strictly greater keeps the first maximum (PyTorch's rule); a NaN wins once
      if (arg < 0 || v > best || (v != v && best == best)) {
        best = v;
        arg = ih * i32(IW) + iw;
      }
    }
  }
  m_out[i] = best;
  m_arg[i] = arg;
}

@group(0) @binding(1) var<storage, read_write> mb_dx: array<f32>;
@group(0) @binding(2) var<storage, read> mb_g: array<f32>;
@group(0) @binding(3) var<storage, read> mb_arg: array<i32>;

@compute @workgroup_size(WG)
fn max_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let plane = i / (IH * IW);
  let s = i % (IH * IW);
  let ih = s / IW;
  let iw = s % IW;
  let rh = cover(ih, KH, SH, PH, OH);
  let rw = cover(iw, KW, SW, PW, OW);
  let base = plane * OH * OW;
  var acc = 0.0;
  for (var oh = rh.x; oh <= rh.y; oh++) {
    for (var ow = rw.x; ow <= rw.y; ow++) {
      let o = base + u32(oh) * OW + u32(ow);
      if (mb_arg[o] == i32(s)) { acc += mb_g[p.off_in + o]; }
    }
  }
  mb_dx[i] = acc;
}

// ------------------------------------------------------------------ nearest upsampling by SCALE

@compute @workgroup_size(WG)
fn up_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let ow_all = IW * SCALE;
  let oplane = IH * SCALE * ow_all;
  let plane = i / oplane;
  let s = i % oplane;
  let ih = s / ow_all / SCALE;
  let iw = s % ow_all / SCALE;
  s_out[i] = s_in[p.off_in + plane * IH * IW + ih * IW + iw];
}

@compute @workgroup_size(WG)
fn up_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let plane = i / (IH * IW);
  let s = i % (IH * IW);
  let ih = s / IW;
  let iw = s % IW;
  let ow_all = IW * SCALE;
  let base = p.off_in + plane * IH * SCALE * ow_all;
  var acc = 0.0;
  for (var a = 0u; a < SCALE; a++) {
    for (var b = 0u; b < SCALE; b++) {
      acc += s_in[base + (ih * SCALE + a) * ow_all + iw * SCALE + b];
    }
  }
  s_out[i] = acc;
}
