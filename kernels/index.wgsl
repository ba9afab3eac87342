// Index arithmetic shared by several kernel families (appended by the loader where a file has a
// `// include: index` line). Not a kernel file on its own.

// x / d without a u32 division instruction: a CPU adapter (llvmpipe) has no vector integer
// division and runs `/` lane by lane (~25 cycles each; it was 40% of a strided-copy-heavy
// attention step). A float estimate, the exact integer remainder, one float floor-division of
// that small remainder, then a +-1 check. Exact for all u32 x and d < 2^24.
fn div_u32(x: u32, d: u32) -> u32 {
  var n = u32(f32(x) / f32(d));
  let r = i32(x - n * d);
  n = u32(i32(n) + i32(floor(f32(r) / f32(d))));
  if (n * d > x) { n -= 1u; }
  if (x - n * d >= d) { n += 1u; }
  return n;
}
