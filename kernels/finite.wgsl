// Divergence detection: does any value in the table's ranges have a biased f32 exponent of at
// least `min_exp`? 255 means Inf or NaN; 191 means |x| >= 2^64, a value whose square overflows
// f32 (a gradient Adam's second moment would turn into Inf).
//
// Values are read as bits: WGSL lets a compiler assume floats are finite, so a float test
// (x != x, isinf) may be folded away; the exponent field cannot be.
//
// A hit records the step (atomicMin keeps the first) and ORs the source's bit into the flag; a
// healthy scan writes nothing, so it costs one read of the data. The table rows are
// optimizers.wgsl's: (offset, -, -, length <= 2048), one workgroup per row.

struct Params {
  rows: u32,     // table rows in this dispatch
  step: u32,     // the training step being checked
  min_exp: u32,  // smallest biased exponent that counts as divergence
  source: u32,   // bit ORed into flag[1] on a hit
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> bits: array<u32>;
@group(0) @binding(3) var<storage, read_write> flag: array<atomic<u32>, 2>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let r = blocks[row];
  var worst = 0u;
  for (var k = lid.x; k < r.w; k += WG) {
    worst = max(worst, (bits[r.x + k] >> 23u) & 0xffu);
  }
  if (worst >= p.min_exp) {
    atomicMin(&flag[0], p.step);
    atomicOr(&flag[1], p.source);
  }
}
