// The same operations as lavapipe-two-pipelines.mjs reduced to one script that PASSES on lavapipe
// in every combination tried (see bench/NOTES.md):
//   [LATE=1] [WRITE=1] [MODS2=1] [RB=1] [OVR=1] [LIMITS=1] node bench/crash/lavapipe-minimal-passes.mjs pipes2|bg2|one 512 10
//   GCGPU=1|each node --expose-gc ... : a full GC after device creation / before every dispatch
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const [V, Ns, Rs] = process.argv.slice(2); const N = +Ns, REPS = +Rs;
// The GPU object is made inside open(), so nothing in this script references it once the device
// exists. Even so, with GCGPU=each it was NOT collected here (gdb: no GPU::~GPU; "gpu alive: true"),
// which is why this script passes: see bench/NOTES.md, 2026-11-27. Why it stays reachable here
// and not in lavapipe-two-pipelines.mjs is not known.
const traceGc = new FinalizationRegistry((what) => console.error('collected:', what));
let gpuRef;
async function open() {
  const gpu = create([]);
  traceGc.register(gpu, 'GPU object from create()'); gpuRef = new WeakRef(gpu);
  if (process.env.KEEPGPU) globalThis.__keep = gpu; // hold the GPU wrapper (Dawn's instance) for the whole run
  const adapter = await gpu.requestAdapter();
  return adapter.requestDevice(process.env.LIMITS ? {requiredLimits:{maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024}} : {});
}
const device = await open();
// Only with TRACE=1: a WeakRef deref keeps its target alive until the current job ends, and the
// loop below runs gc() in the same job as the previous rep's log line.
globalThis.gpuAlive = () => process.env.TRACE ? gpuRef.deref() !== undefined : '?';
const code = (process.env.OVR ? 'override WX: u32 = 64u;\n' : '') + `
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4f>;
const N = ${N}u;
@compute @workgroup_size(${process.env.OVR ? 'WX' : '64'})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i0 = wg.y * 8u; let j4 = wg.x * 64u + lid.x;
  var acc: array<vec4f, 8>;
  for (var k = 0u; k < N; k++) { let b = B[k * (N/4u) + j4]; for (var r = 0u; r < 8u; r++) { acc[r] = fma(vec4f(A[(i0 + r) * N + k]), b, acc[r]); } }
  for (var r = 0u; r < 8u; r++) { C[(i0 + r) * (N/4u) + j4] = acc[r]; }
}`;
const S = GPUBufferUsage.STORAGE|GPUBufferUsage.COPY_DST|GPUBufferUsage.COPY_SRC;
const mk = () => device.createBuffer({size: N*N*4, usage: S});
const Ab = mk(), Bb = mk(), Cb = mk(), Cb2 = mk();
if (process.env.WRITE) { const a = new Float32Array(N*N).map(()=>Math.random()-0.5); device.queue.writeBuffer(Ab,0,a); device.queue.writeBuffer(Bb,0,a); }
if (process.env.LIMITS) { /* placeholder */ }
const mod = device.createShaderModule({code});
const p1 = device.createComputePipeline({layout:'auto', compute:{module:mod, entryPoint:'main'}});
const rb = device.createBuffer({size:N*N*4, usage: GPUBufferUsage.MAP_READ|GPUBufferUsage.COPY_DST});
const copyRb = () => { const e = device.createCommandEncoder(); e.copyBufferToBuffer(Cb,0,rb,0,N*N*4); device.queue.submit([e.finish()]); };
const lateP2 = process.env.LATE;
let p2 = V === 'pipes2' && !lateP2 ? device.createComputePipeline({layout:'auto', compute:{module: process.env.MODS2 ? device.createShaderModule({code}) : mod, entryPoint:'main'}}) : p1;
const bg = (p, c) => device.createBindGroup({layout: p.getBindGroupLayout(0), entries:[Ab,Bb,c].map((buffer,i)=>({binding:i, resource:{buffer}}))});
let g1 = bg(p1, Cb), g2 = V === 'bg2' ? bg(p1, Cb2) : V === 'pipes2' ? bg(p2, Cb) : g1;
const run = async (p, g) => { const enc = device.createCommandEncoder(); const ps=enc.beginComputePass(); ps.setPipeline(p); ps.setBindGroup(0,g); ps.dispatchWorkgroups(N/256, N/8); ps.end(); device.queue.submit([enc.finish()]); await device.queue.onSubmittedWorkDone(); };
if (lateP2) { await run(p1, g1); if (process.env.RB) copyRb(); p2 = device.createComputePipeline({layout:'auto', compute:{module: process.env.MODS2 ? device.createShaderModule({code}) : mod, entryPoint:'main'}}); g2 = bg(p2, Cb); await run(p2, g2); if (process.env.RB) copyRb(); console.log('late pipeline made'); }
// GCGPU=1 (with node --expose-gc): force a full GC once the device exists; `gpu` is dead by then
// (V8 keeps only live registers across a top-level await), so its wrapper is collected.
if (process.env.GCGPU) globalThis.gc();
const gcEach = process.env.GCGPU === "each"; // GCGPU=each: also a full GC before every dispatch
for (let r = 0; r < REPS; r++) { if (gcEach) globalThis.gc(); const t0 = performance.now(); await run(r % 2 ? p2 : p1, r % 2 ? g2 : g1); console.log(V, 'gpu alive:', gpuAlive(), 'rep', r, (performance.now()-t0).toFixed(0), 'ms'); }
console.log(V, 'OK'); process.exit(0);
