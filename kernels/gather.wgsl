// Index ops: range checks, gather / index-select / embedding forward, one-hot, and the
// deterministic scatter-add their backward needs.
//
// No op here ever reads out of bounds: an index outside its range reads as 0 (one-hot: an
// all-zero row; backward: no contribution) and is recorded in the error register `flags`
// (i32: [0] count, [1] bits of the ops that saw one, [2] min bad value, [3] max bad value,
// [4] first bad position), which the host reads only on request (checkIndexErrors), so a
// training step never waits on the GPU.

override WG: u32 = 256;

// ---------------------------------------------------------------------------------- checks

struct CheckParams {
  n: u32,
  off: u32,
  hi: i32,          // valid values are [0, hi)
  ignore: i32,      // a value that is allowed anyway (when use_ignore)
  use_ignore: u32,
  op_bit: u32,
  _p0: u32,
  _p1: u32,
};

@group(0) @binding(0) var<uniform> pc: CheckParams;
@group(0) @binding(1) var<storage, read_write> ck_flags: array<atomic<i32>>;
@group(0) @binding(2) var<storage, read> ck_ids: array<i32>;

@compute @workgroup_size(WG)
fn check_range(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= pc.n) { return; }
  let v = ck_ids[pc.off + i];
  if (pc.use_ignore == 1u && v == pc.ignore) { return; }
  if (v < 0 || v >= pc.hi) {
    atomicAdd(&ck_flags[0], 1);
    atomicOr(&ck_flags[1], i32(pc.op_bit));
    atomicMin(&ck_flags[2], v);
    atomicMax(&ck_flags[3], v);
    atomicMin(&ck_flags[4], i32(i));
  }
}

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// ------------------------------------------------------------------ index_select / embedding

// out[o, k, i] = t[o, idx[k], i] over t viewed as [outer, D, inner] (row-major from off_t).
struct SelectParams {
  outer: u32,
  d: u32,
  inner: u32,
  k: u32,
  off_t: u32,
  off_idx: u32,
  op_bit: u32,
  _p: u32,
};

@group(0) @binding(0) var<uniform> psel: SelectParams;
@group(0) @binding(1) var<storage, read_write> sel_out: array<f32>;
@group(0) @binding(2) var<storage, read> sel_t: array<f32>;
@group(0) @binding(3) var<storage, read> sel_idx: array<i32>;
@group(0) @binding(4) var<storage, read_write> sel_flags: array<atomic<i32>>;

@compute @workgroup_size(WG)
fn index_select(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat(gid, nwg);
  if (e >= psel.outer * psel.k * psel.inner) { return; }
  let i = e % psel.inner;
  let k = (e / psel.inner) % psel.k;
  let o = e / (psel.inner * psel.k);
  let v = sel_idx[psel.off_idx + k];
  if (v >= 0 && u32(v) < psel.d) {
    sel_out[e] = sel_t[psel.off_t + (o * psel.d + u32(v)) * psel.inner + i];
  } else {
    sel_out[e] = 0.0;
    if (o == 0u && i == 0u) {   // once per bad index
      atomicAdd(&sel_flags[0], 1);
      atomicOr(&sel_flags[1], i32(psel.op_bit));
      atomicMin(&sel_flags[2], v);
      atomicMax(&sel_flags[3], v);
      atomicMin(&sel_flags[4], i32(k));
    }
  }
}

// ---------------------------------------------------------------------------------- gather

// torch.gather: out[c] = t[c with c[dim] replaced by index[c]], c running over index's shape.
// `st` holds t's strides (a view is read in place); the backward's key kernel passes row-major
// strides of t's shape instead, and gets flat destinations.
struct GatherParams {
  n: u32,
  rank: u32,
  dim: u32,
  off_t: u32,
  off_idx: u32,
  dsize: u32,      // t.shape[dim]: the valid index range
  op_bit: u32,
  sentinel: u32,   // keys_gather: the key of an invalid index
  shape: array<vec4<u32>, 2>,   // index's shape
  st: array<vec4<u32>, 2>,      // t's strides
};

@group(0) @binding(0) var<uniform> pg: GatherParams;
@group(0) @binding(1) var<storage, read_write> ga_out: array<f32>;
@group(0) @binding(2) var<storage, read> ga_t: array<f32>;
@group(0) @binding(3) var<storage, read> ga_idx: array<i32>;
@group(0) @binding(4) var<storage, read_write> ga_flags: array<atomic<i32>>;

fn dim_of(v: array<vec4<u32>, 2>, i: u32) -> u32 {
  return v[i / 4u][i % 4u];
}

// The source offset (relative to off_t) of index element e, and whether its index is valid.
fn gather_src(e: u32, idx_value: i32) -> vec2<u32> {
  var rem = e;
  var off = 0u;
  for (var d = i32(pg.rank) - 1; d >= 0; d--) {
    let ud = u32(d);
    let size = dim_of(pg.shape, ud);
    var c = rem % size;
    rem = rem / size;
    if (ud == pg.dim) { c = u32(idx_value); }
    off += c * dim_of(pg.st, ud);
  }
  let ok = idx_value >= 0 && u32(idx_value) < pg.dsize;
  return vec2<u32>(off, select(0u, 1u, ok));
}

@compute @workgroup_size(WG)
fn gather_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat(gid, nwg);
  if (e >= pg.n) { return; }
  let v = ga_idx[pg.off_idx + e];
  let src = gather_src(e, v);
  if (src.y == 1u) {
    ga_out[e] = ga_t[pg.off_t + src.x];
  } else {
    ga_out[e] = 0.0;
    atomicAdd(&ga_flags[0], 1);
    atomicOr(&ga_flags[1], i32(pg.op_bit));
    atomicMin(&ga_flags[2], v);
    atomicMax(&ga_flags[3], v);
    atomicMin(&ga_flags[4], i32(e));
  }
}

// ---------------------------------------------------------------------------------- one-hot

struct OneHotParams {
  n: u32,
  c: u32,
  off: u32,
  op_bit: u32,
};

@group(0) @binding(0) var<uniform> poh: OneHotParams;
@group(0) @binding(1) var<storage, read_write> oh_out: array<f32>;
@group(0) @binding(2) var<storage, read> oh_ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> oh_flags: array<atomic<i32>>;

@compute @workgroup_size(WG)
fn one_hot(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat(gid, nwg);
  if (e >= poh.n * poh.c) { return; }
  let r = e / poh.c;
  let c = e % poh.c;
  let v = oh_ids[poh.off + r];
  oh_out[e] = select(0.0, 1.0, v == i32(c));
  if (c == 0u && (v < 0 || u32(v) >= poh.c)) {
    atomicAdd(&oh_flags[0], 1);
    atomicOr(&oh_flags[1], i32(poh.op_bit));
    atomicMin(&oh_flags[2], v);
    atomicMax(&oh_flags[3], v);
    atomicMin(&oh_flags[4], i32(r));
  }
}

// ------------------------------------------------------------- deterministic scatter-add
//
// The backward of every gather-like op adds rows of g into buckets (embedding rows, selected
// slices, gathered positions), and an index may repeat any number of times. WebGPU has no
// float atomics, and a compare-exchange loop on the bits would add in whatever order threads
// arrive: results would change from run to run. Instead:
//   1. keys: each item's bucket (an invalid or padding index gets the sentinel bucket K, which
//      is dropped), values = the item's own position;
//   2. a stable LSD radix sort of (key, position), 4 bits per pass: per-block digit histograms,
//      one exclusive scan, a stable scatter (rank within the block = earlier lanes with the same
//      digit). Stable passes keep equal keys in increasing position;
//   3. segment bounds: start[k], end[k] of each bucket in the sorted order;
//   4. each output element sums its bucket's rows in that fixed order.
// The result is bit-identical from run to run, O(M log K) work; a bucket hit M times costs one
// thread a loop of M (fine for gradient rows, and never a race).

struct KeyParams {
  m: u32,
  k: u32,          // number of buckets; K is the sentinel
  off_idx: u32,
  pad: i32,
  use_pad: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
};

@group(0) @binding(0) var<uniform> pk: KeyParams;
@group(0) @binding(1) var<storage, read_write> ky_keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> ky_vals: array<u32>;
@group(0) @binding(3) var<storage, read> ky_idx: array<i32>;

@compute @workgroup_size(WG)
fn keys_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let m = flat(gid, nwg);
  if (m >= pk.m) { return; }
  let v = ky_idx[pk.off_idx + m];
  let ok = v >= 0 && u32(v) < pk.k && !(pk.use_pad == 1u && v == pk.pad);
  ky_keys[m] = select(pk.k, u32(v), ok);
  ky_vals[m] = m;
}

@group(0) @binding(1) var<storage, read_write> kg_keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> kg_vals: array<u32>;
@group(0) @binding(3) var<storage, read> kg_idx: array<i32>;

@compute @workgroup_size(WG)
fn keys_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat(gid, nwg);
  if (e >= pg.n) { return; }
  let src = gather_src(e, kg_idx[pg.off_idx + e]);
  kg_keys[e] = select(pg.sentinel, pg.off_t + src.x, src.y == 1u);
  kg_vals[e] = e;
}

struct RadixParams {
  m: u32,
  blocks: u32,
  shift: u32,
  n: u32,          // radix_scan: entries of the histogram table
};

@group(0) @binding(0) var<uniform> pr: RadixParams;
@group(0) @binding(1) var<storage, read_write> rh_hist: array<u32>;
@group(0) @binding(2) var<storage, read> rh_keys: array<u32>;

var<workgroup> w_count: array<atomic<u32>, 16>;

// hist[digit * blocks + block] = how many of the block's keys have that digit.
@compute @workgroup_size(WG)
fn radix_hist(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid3: vec3<u32>) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= pr.blocks) { return; }   // uniform per workgroup
  let lid = lid3.x;
  if (lid < 16u) { atomicStore(&w_count[lid], 0u); }
  workgroupBarrier();
  let j = b * WG + lid;
  if (j < pr.m) { atomicAdd(&w_count[(rh_keys[j] >> pr.shift) & 15u], 1u); }
  workgroupBarrier();
  if (lid < 16u) { rh_hist[lid * pr.blocks + b] = atomicLoad(&w_count[lid]); }
}

@group(0) @binding(1) var<storage, read_write> rs_hist: array<u32>;

var<workgroup> w_sum: array<u32, WG>;

// Exclusive prefix sum of the whole table in one workgroup: each thread scans a contiguous run.
@compute @workgroup_size(WG)
fn radix_scan(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let per = (pr.n + WG - 1u) / WG;
  let start = lid * per;
  let end = min(start + per, pr.n);
  var s = 0u;
  for (var k = start; k < end; k++) { s += rs_hist[k]; }
  w_sum[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var run = 0u;
    for (var j = 0u; j < WG; j++) {
      let v = w_sum[j];
      w_sum[j] = run;
      run += v;
    }
  }
  workgroupBarrier();
  var run = w_sum[lid];
  for (var k = start; k < end; k++) {
    let v = rs_hist[k];
    rs_hist[k] = run;
    run += v;
  }
}

@group(0) @binding(1) var<storage, read_write> rx_keys_out: array<u32>;
@group(0) @binding(2) var<storage, read_write> rx_vals_out: array<u32>;
@group(0) @binding(3) var<storage, read> rx_hist: array<u32>;
@group(0) @binding(4) var<storage, read> rx_keys: array<u32>;
@group(0) @binding(5) var<storage, read> rx_vals: array<u32>;

var<workgroup> w_digit: array<u32, WG>;

@compute @workgroup_size(WG)
fn radix_scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid3: vec3<u32>) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= pr.blocks) { return; }
  let lid = lid3.x;
  let j = b * WG + lid;
  var key = 0u;
  var d = 16u;   // lanes past the end match no digit
  if (j < pr.m) {
    key = rx_keys[j];
    d = (key >> pr.shift) & 15u;
  }
  w_digit[lid] = d;
  workgroupBarrier();
  if (j < pr.m) {
    var rank = 0u;
    for (var l = 0u; l < lid; l++) {
      rank += select(0u, 1u, w_digit[l] == d);
    }
    let dest = rx_hist[d * pr.blocks + b] + rank;
    rx_keys_out[dest] = key;
    rx_vals_out[dest] = rx_vals[j];
  }
}

// start[k] / end[k]: the bucket's run in the sorted keys (both stay 0 for an empty bucket).
struct SegParams {
  m: u32,
  k: u32,
  _p0: u32,
  _p1: u32,
};

@group(0) @binding(0) var<uniform> psg: SegParams;
@group(0) @binding(1) var<storage, read_write> sg_start: array<u32>;
@group(0) @binding(2) var<storage, read_write> sg_end: array<u32>;
@group(0) @binding(3) var<storage, read> sg_keys: array<u32>;

@compute @workgroup_size(WG)
fn segments(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = flat(gid, nwg);
  if (p >= psg.m) { return; }
  let k = sg_keys[p];
  if (k >= psg.k) { return; }   // the sentinel bucket (invalid or padding) is dropped
  if (p == 0u || sg_keys[p - 1u] != k) { sg_start[k] = p; }
  if (p + 1u == psg.m || sg_keys[p + 1u] != k) { sg_end[k] = p + 1u; }
}

// out[o, k, i] = sum over p in [start[k], end[k]) of g[o, perm[p], i], g viewed [outer, M, inner].
struct SumParams {
  outer: u32,
  k: u32,
  inner: u32,
  m: u32,
};

@group(0) @binding(0) var<uniform> pss: SumParams;
@group(0) @binding(1) var<storage, read_write> ss_out: array<f32>;
@group(0) @binding(2) var<storage, read> ss_g: array<f32>;
@group(0) @binding(3) var<storage, read> ss_start: array<u32>;
@group(0) @binding(4) var<storage, read> ss_end: array<u32>;
@group(0) @binding(5) var<storage, read> ss_perm: array<u32>;

@compute @workgroup_size(WG)
fn segment_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat(gid, nwg);
  if (e >= pss.outer * pss.k * pss.inner) { return; }
  let i = e % pss.inner;
  let k = (e / pss.inner) % pss.k;
  let o = e / (pss.inner * pss.k);
  var acc = 0.0;
  for (var p = ss_start[k]; p < ss_end[k]; p++) {
    acc += ss_g[(o * pss.m + ss_perm[p]) * pss.inner + i];
  }
  ss_out[e] = acc;
}

// Reads and resets the error register in stream order (no race with ops recorded meanwhile):
// snapshot[i] = flags[i], flags[i] = init[i].
struct TakeParams {
  init: array<vec4<i32>, 2>,
};

@group(0) @binding(0) var<uniform> ptk: TakeParams;
@group(0) @binding(1) var<storage, read_write> tk_snapshot: array<i32>;
@group(0) @binding(2) var<storage, read_write> tk_flags: array<atomic<i32>>;

@compute @workgroup_size(8)
fn take_errors(@builtin(local_invocation_id) lid: vec3<u32>) {
  let i = lid.x;
  tk_snapshot[i] = atomicExchange(&tk_flags[i], ptk.init[i / 4u][i % 4u]);
}
