// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011), the generator of JAX, cuRAND and PyTorch's CUDA backend.
// Each thread turns one 128-bit counter into four independent 32-bit words under a 64-bit key,
// so the numbers depend only on (key, counter): the same seed gives the same bits on any adapter,
// in any dispatch order, with no state on the GPU.
//
// Thread t handles block t: counter = (ctr0, ctr1, ctr2, ctr3) + t as a 128-bit integer, and
// writes elements 4t .. 4t+3 of the output (those below n). Words become floats through their top
// 24 bits, which an f32 holds exactly: uniforms are k * 2^-24, in [0, 1), never 1.
//
// Entry points: philox_bits (the raw words, u32), uniform_f32 (alpha + (beta - alpha) u), normal
// (Box-Muller on word pairs: alpha + beta z), bernoulli (beta where u < alpha, else 0: beta = 1 is
// the 1/0 mask, beta = 1/(1-p) dropout's scaled keep mask in the same dispatch).
// Float results are stored as their bits: the output buffer is declared u32 for all of them.
//
// Dropout (dropout_fwd, dropout_bwd) keeps its mask as bits, one u32 word per 32 elements, instead
// of an f32 per element (32x less memory held from forward to backward). A thread owns one word:
// thread t of W = ceil(n / 32) handles the Philox blocks t, t + W, .., t + 7W, so at each step the
// threads touch consecutive blocks (coalesced on a GPU, 16 bytes a thread), no two threads share a
// word (no barrier, no atomics: a workgroup barrier to combine 8 threads' bits made the forward
// 4x slower on lavapipe, bench/NOTES.md, session 10), and every block's four words are used by
// the thread that draws them. Element i still comes from word i % 4 of block i / 4, as in
// bernoulli, so the keep decisions are bernoulli's at the same counter, and
// y = x * select(0, beta, u < alpha) is the product x * bernoulli-mask rounded the same way (a
// dropped NaN or infinity gives NaN, as 0 * x does).

struct Params {
  n: u32,
  off_out: u32,
  key0: u32,
  key1: u32,
  ctr0: u32,
  ctr1: u32,
  ctr2: u32,
  ctr3: u32,
  alpha_bits: u32,
  beta_bits: u32,
  off_src: u32,   // dropout: first element of x (forward) or g (backward)
  off_keep: u32,  // dropout: first word of the keep bits
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
// Only the dropout entries bind these (the generators' layouts stop at binding 1). keep is
// read_write for both: the forward writes it, and one declaration serves both entries.
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> keep: array<u32>;

override WG: u32 = 256;

const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;
const W1: u32 = 0xBB67AE85u;
const TWO_PI: f32 = 6.28318530717958648;
const PI: f32 = 3.14159265358979324;
const INV_2_24: f32 = 5.9604644775390625e-8;

// The 64-bit product a * b as (hi, lo), from 16-bit halves (WGSL has no 64-bit integers).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k = k + vec2<u32>(W0, W1); }
    let m0 = mulhilo(M0, c.x);
    let m1 = mulhilo(M1, c.z);
    c = vec4<u32>(m1.x ^ c.y ^ k.x, m1.y, m0.x ^ c.w ^ k.y, m0.y);
  }
  return c;
}

// Block t's counter: the base counter plus t, carrying through all four words.
fn counter_for(t: u32) -> vec4<u32> {
  let c0 = p.ctr0 + t;
  var carry = select(0u, 1u, c0 < t);
  let c1 = p.ctr1 + carry;
  carry = select(0u, 1u, carry == 1u && c1 == 0u);
  let c2 = p.ctr2 + carry;
  carry = select(0u, 1u, carry == 1u && c2 == 0u);
  return vec4<u32>(c0, c1, c2, p.ctr3 + carry);
}

// The flat thread index under grid1d's grid (x up to 32768 workgroups, the rest in y).
fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn block_words(gid: vec3<u32>, nwg: vec3<u32>) -> vec4<u32> {
  let t = thread_index(gid, nwg);
  return philox4x32_10(counter_for(t), vec2<u32>(p.key0, p.key1));
}

// [0, 1): the top 24 bits times 2^-24 (exact in f32).
fn unit(w: u32) -> f32 {
  return f32(w >> 8u) * INV_2_24;
}

// (0, 1]: for the logarithm of Box-Muller.
fn unit_open0(w: u32) -> f32 {
  return (f32(w >> 8u) + 1.0) * INV_2_24;
}

fn store(t: u32, k: u32, bits: u32) {
  let i = 4u * t + k;
  if (i < p.n) { out[p.off_out + i] = bits; }
}

// Block t exists when 4t < n (n stays far below 2^32 - 3: buffers hold at most 2^29 words).
fn alive(t: u32) -> bool {
  return t < (p.n + 3u) / 4u;
}

@compute @workgroup_size(WG)
fn philox_bits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  if (!alive(t)) { return; }
  let w = block_words(gid, nwg);
  for (var k = 0u; k < 4u; k++) { store(t, k, w[k]); }
}

@compute @workgroup_size(WG)
fn uniform_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  if (!alive(t)) { return; }
  let w = block_words(gid, nwg);
  let lo = bitcast<f32>(p.alpha_bits);
  let hi = bitcast<f32>(p.beta_bits);
  for (var k = 0u; k < 4u; k++) { store(t, k, bitcast<u32>(lo + (hi - lo) * unit(w[k]))); }
}

// Box-Muller: (w0, w1) give elements 4t, 4t+1 and (w2, w3) give 4t+2, 4t+3. The angle is taken in
// [-pi, pi) (the range where WGSL's sin/cos are specified most tightly); shifting it by pi only
// flips both signs, which leaves the distribution unchanged.
@compute @workgroup_size(WG)
fn normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  if (!alive(t)) { return; }
  let w = block_words(gid, nwg);
  let mean = bitcast<f32>(p.alpha_bits);
  let sd = bitcast<f32>(p.beta_bits);
  for (var k = 0u; k < 4u; k += 2u) {
    let r = sqrt(-2.0 * log(unit_open0(w[k])));
    let theta = TWO_PI * unit(w[k + 1u]) - PI;
    store(t, k, bitcast<u32>(mean + sd * (r * cos(theta))));
    store(t, k + 1u, bitcast<u32>(mean + sd * (r * sin(theta))));
  }
}

@compute @workgroup_size(WG)
fn bernoulli(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  if (!alive(t)) { return; }
  let w = block_words(gid, nwg);
  let prob = bitcast<f32>(p.alpha_bits);
  let kept = bitcast<f32>(p.beta_bits);
  for (var k = 0u; k < 4u; k++) { store(t, k, bitcast<u32>(select(0.0, kept, unit(w[k]) < prob))); }
}

// Dropout's forward: thread t (t < W = ceil(n / 32), one per word of bits) handles blocks
// t, t + W, .., t + 7W: y (in out) for their elements, and their keep decisions as word t (bit
// 4k + j for element 4 (t + kW) + j). alpha = keep probability, beta = the kept value 1/(1-p).
@compute @workgroup_size(WG)
fn dropout_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let words = (p.n + 31u) / 32u;
  if (t >= words) { return; }
  let blocks = (p.n + 3u) / 4u;
  let key = vec2<u32>(p.key0, p.key1);
  let prob = bitcast<f32>(p.alpha_bits);
  let kept = bitcast<f32>(p.beta_bits);
  var bits = 0u;
  for (var k = 0u; k < 8u; k++) {
    let b = t + k * words;
    if (b >= blocks) { break; }
    let r = philox4x32_10(counter_for(b), key);
    for (var j = 0u; j < 4u; j++) {
      let i = 4u * b + j;
      if (i < p.n) {
        let on = unit(r[j]) < prob;
        out[p.off_out + i] = bitcast<u32>(src[p.off_src + i] * select(0.0, kept, on));
        bits = bits | select(0u, 1u << (4u * k + j), on);
      }
    }
  }
  keep[p.off_keep + t] = bits;
}

// Dropout's backward: dx (in out) = g * select(0, beta, bit) over the blocks and bits of
// dropout_fwd's thread t.
@compute @workgroup_size(WG)
fn dropout_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg);
  let words = (p.n + 31u) / 32u;
  if (t >= words) { return; }
  let blocks = (p.n + 3u) / 4u;
  let kept = bitcast<f32>(p.beta_bits);
  let bits = keep[p.off_keep + t];
  for (var k = 0u; k < 8u; k++) {
    let b = t + k * words;
    if (b >= blocks) { break; }
    for (var j = 0u; j < 4u; j++) {
      let i = 4u * b + j;
      if (i < p.n) { out[p.off_out + i] = bitcast<u32>(src[p.off_src + i] * select(0.0, kept, ((bits >> (4u * k + j)) & 1u) == 1u)); }
    }
  }
}
