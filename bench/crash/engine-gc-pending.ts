// The crash's trigger run through the engine (see bench/NOTES.md, "The crash", 2026-11-27):
// Dawn's Node binding frees its instance when the JavaScript `GPU` object from `create()` is
// garbage-collected, while the device's AsyncRunner still polls that instance
// (InstanceBase::ProcessEvents) for every pending promise -> abort / segfault / hang.
// This script forces a full GC before each wait on long GPU work; it must exit cleanly.
//   node --expose-gc bench/crash/engine-gc-pending.ts [adapter] [rounds]
// adapter: 'auto' (the cached GPU object of platform-node.ts) or a name substring such as
// 'llvmpipe' (a GPU object made with Dawn's adapter= flag: the path that was unprotected), or
// 'named' (the default adapter chosen again by its name).
import '../../src/engine/index.ts'; // installs the Node (Dawn) platform
import { Device } from '../../src/engine/device.ts';
import { getPlatform } from '../../src/engine/platform.ts';

let adapter = process.argv[2] ?? 'auto';
if (adapter === 'named') {
  // The default adapter, chosen again by its name (first word of its description): exercises
  // the gpuWithFlags path on any machine.
  const probe = await getPlatform().gpu().requestAdapter({ powerPreference: 'high-performance' });
  adapter = probe?.info.description.split(/[\s(:,]/)[0] || probe?.info.device || 'auto';
}
const rounds = Number(process.argv[3] ?? 12);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const dev = await Device.create({ adapter });
const N = 256;
const g = dev.gpu;
const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const a = g.createBuffer({ size: N * N * 4, usage: S });
const c = g.createBuffer({ size: N * N * 4, usage: S });
dev.upload(a, 0, new Float32Array(N * N).map((_, i) => ((i * 7919) % 13) / 13 - 0.5));
// A dispatch that takes tens of milliseconds on lavapipe: the wait below polls Dawn many times.
const module = g.createShaderModule({
  code: `@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  let i = id.y; let j = id.x; var s = 0.0;
  for (var k = 0u; k < ${N}u; k++) { s = fma(A[i * ${N}u + k], A[k * ${N}u + j], s); }
  C[i * ${N}u + j] = s;
}`,
});
const pipe = g.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
const bg = g.createBindGroup({
  layout: pipe.getBindGroupLayout(0),
  entries: [a, c].map((buffer, binding) => ({ binding, resource: { buffer } })),
});
let checksum = 0;
for (let r = 0; r < rounds; r++) {
  const enc = g.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, bg);
  for (let rep = 0; rep < 4; rep++) pass.dispatchWorkgroups(N / 64, N);
  pass.end();
  g.queue.submit([enc.finish()]);
  gc(); // a full GC while the submission is in flight: collects whatever is unreachable
  if (r % 2 === 0) await dev.sync();
  else checksum += new Float32Array(await dev.read(c, 0, 16))[1];
}
console.log(`engine-gc-pending ${adapter}: ${rounds} rounds OK (checksum ${checksum.toFixed(3)})`);
dev.destroy();
