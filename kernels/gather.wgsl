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
