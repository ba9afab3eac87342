// Reproduces, on lavapipe (Mesa 25.0.7, webgpu 0.6.2, Node 24), the abort seen on the H100
// (shared/gpu/README.md): "std::system_error: Invalid argument", "The futex facility returned an
// unexpected error code", "pthread_mutex_lock ... Assertion" or a segfault, thrown from
// dawn::native::InstanceBase::ProcessEvents() called by the binding's
// AsyncRunner::ScheduleProcessEvents (gdb backtrace in bench/NOTES.md).
//   NOREAD=1 node bench/crash/lavapipe-two-pipelines.mjs 512 e1:8:64 e1:8:64   -> dies within ~10 runs
//   NOREAD=1 node bench/crash/lavapipe-two-pipelines.mjs 512 e1:8:64           -> passes (even REPS=12)
// Each "config" builds a shader module + pipeline and runs it (submit, onSubmittedWorkDone);
// then the configs are timed alternately. Ruled out (still dies): no readback at all (NOREAD),
// no copy into a MAP_READ buffer (NORB), no getCompilationInfo (NOINFO), no override constants
// (NOCONST), keeping every wrapper alive (KEEPALL), forcing GC (GCEACH, --expose-gc),
// MESA_SHADER_CACHE_DISABLE=true, LP_NUM_THREADS=1. lavapipe-minimal-passes.mjs does what looks
// like the same sequence and passes: the trigger is not yet isolated.
// 2026-11-27, TRIGGER FOUND (bench/NOTES.md): the JavaScript `GPU` object from create() is
// garbage-collected (gdb: wgpu::binding::GPU::~GPU from a napi finalizer), which frees Dawn's
// instance while the device's AsyncRunner still calls InstanceBase::ProcessEvents on it.
//   KEEPGPU=1 / KEEPGPUONLY=1 (keep `gpu` referenced) -> passes 7/7; KEEPADAPTER=1 -> dies 3/3.
// Fix: keep the GPU object referenced for the life of the device (the engine does:
// src/engine/platform-node.ts). The "collected:" / "gpu alive:" lines trace the GPU object.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const traceGc = new FinalizationRegistry((what) => console.error('collected:', what)); traceGc.register(gpu, 'GPU object from create()');
const gpuRef = new WeakRef(gpu); globalThis.gpuAlive = () => gpuRef.deref() !== undefined;
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({requiredLimits:{maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024}});
if (process.env.KEEPGPU) globalThis.__keep = [gpu, adapter]; // hold the GPU (instance) and adapter wrappers
if (process.env.KEEPGPUONLY) globalThis.__keep = [gpu];
if (process.env.KEEPADAPTER) globalThis.__keep = [adapter];

const N = +process.argv[2] || 512;
const configs = process.argv.slice(3).map(s => s.split(':'));
const S = GPUBufferUsage.STORAGE|GPUBufferUsage.COPY_DST|GPUBufferUsage.COPY_SRC;
const mk = (n) => device.createBuffer({size: n*4, usage: S});
const Ab = mk(N*N), Bb = mk(N*N), Cb = mk(N*N);
const a = new Float32Array(N*N).map(()=>Math.random()-0.5), b = new Float32Array(N*N).map(()=>Math.random()-0.5);
device.queue.writeBuffer(Ab,0,a); device.queue.writeBuffer(Bb,0,b);
const rb = device.createBuffer({size:N*N*4, usage: GPUBufferUsage.MAP_READ|GPUBufferUsage.COPY_DST});
const runs = [];
for (const [which, Rs, WXs] of configs) {
  const R = +Rs, WX = +WXs;
  const kernels = {
// each lane: R rows x 4 cols (vec4 of B), A broadcast
e1: `
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4f>;
override R: u32 = 8u; override WX: u32 = 64u;
const N = ${N}u;
@compute @workgroup_size(WX)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i0 = wg.y * ${R}u; let j4 = wg.x * WX + lid.x;
  var acc: array<vec4f, ${R}>;
  for (var k = 0u; k < N; k++) {
    let b = B[k * (N/4u) + j4];
    for (var r = 0u; r < ${R}u; r++) { acc[r] = fma(vec4f(A[(i0 + r) * N + k]), b, acc[r]); }
  }
  for (var r = 0u; r < ${R}u; r++) { C[(i0 + r) * (N/4u) + j4] = acc[r]; }
}`,
// A loaded as vec4 along k (uniform), 4 k steps per A load
e2: `
@group(0) @binding(0) var<storage, read> A: array<vec4f>;
@group(0) @binding(1) var<storage, read> B: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4f>;
override WX: u32 = 64u;
const N = ${N}u;
@compute @workgroup_size(WX)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i0 = wg.y * ${R}u; let j4 = wg.x * WX + lid.x;
  var acc: array<vec4f, ${R}>;
  for (var k = 0u; k < N; k += 4u) {
    let b0 = B[k * (N/4u) + j4]; let b1 = B[(k+1u) * (N/4u) + j4]; let b2 = B[(k+2u) * (N/4u) + j4]; let b3 = B[(k+3u) * (N/4u) + j4];
    for (var r = 0u; r < ${R}u; r++) {
      let a = A[((i0 + r) * N + k) / 4u];
      acc[r] = fma(vec4f(a.x), b0, acc[r]); acc[r] = fma(vec4f(a.y), b1, acc[r]);
      acc[r] = fma(vec4f(a.z), b2, acc[r]); acc[r] = fma(vec4f(a.w), b3, acc[r]);
    }
  }
  for (var r = 0u; r < ${R}u; r++) { C[(i0 + r) * (N/4u) + j4] = acc[r]; }
}`,
// scalar per lane column (1 col), A broadcast
e3: `
@group(0) @binding(0) var<storage, read> A: array<vec4f>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
override WX: u32 = 64u;
const N = ${N}u;
@compute @workgroup_size(WX)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i0 = wg.y * ${R}u; let j = wg.x * WX + lid.x;
  var acc: array<f32, ${R}>;
  for (var k = 0u; k < N; k += 4u) {
    let b0 = B[k * N + j]; let b1 = B[(k+1u) * N + j]; let b2 = B[(k+2u) * N + j]; let b3 = B[(k+3u) * N + j];
    for (var r = 0u; r < ${R}u; r++) {
      let a = A[((i0 + r) * N + k) / 4u];
      acc[r] = fma(a.x, b0, acc[r]); acc[r] = fma(a.y, b1, acc[r]); acc[r] = fma(a.z, b2, acc[r]); acc[r] = fma(a.w, b3, acc[r]);
    }
  }
  for (var r = 0u; r < ${R}u; r++) { C[(i0 + r) * N + j] = acc[r]; }
}`,
e4: (() => { // e1 unrolled: R explicit vec4 accumulators
  let decl='', body='', st='';
  for (let r=0;r<R;r++){ decl+=`var acc${r} = vec4f(0.0);\n`; body+=`acc${r} = fma(vec4f(A[(i0 + ${r}u) * N + k]), b, acc${r});\n`; st+=`C[(i0 + ${r}u) * (N/4u) + j4] = acc${r};\n`; }
  return `
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4f>;
override WX: u32 = 64u;
const N = ${N}u;
@compute @workgroup_size(WX)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i0 = wg.y * ${R}u; let j4 = wg.x * WX + lid.x;
  ${decl}
  for (var k = 0u; k < N; k++) {
    let b = B[k * (N/4u) + j4];
    ${body}
  }
  ${st}
}`})(),
e5: (() => { // e2 unrolled: A vec4 along k
  let decl='', body='', st='';
  for (let r=0;r<R;r++){ decl+=`var acc${r} = vec4f(0.0);\n`; body+=`{ let a = A[((i0 + ${r}u) * N + k) / 4u]; acc${r} = fma(vec4f(a.x), b0, acc${r}); acc${r} = fma(vec4f(a.y), b1, acc${r}); acc${r} = fma(vec4f(a.z), b2, acc${r}); acc${r} = fma(vec4f(a.w), b3, acc${r}); }\n`; st+=`C[(i0 + ${r}u) * (N/4u) + j4] = acc${r};\n`; }
  return `
@group(0) @binding(0) var<storage, read> A: array<vec4f>;
@group(0) @binding(1) var<storage, read> B: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4f>;
override WX: u32 = 64u;
const N = ${N}u;
@compute @workgroup_size(WX)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i0 = wg.y * ${R}u; let j4 = wg.x * WX + lid.x;
  ${decl}
  for (var k = 0u; k < N; k += 4u) {
    let b0 = B[k * (N/4u) + j4]; let b1 = B[(k+1u) * (N/4u) + j4]; let b2 = B[(k+2u) * (N/4u) + j4]; let b3 = B[(k+3u) * (N/4u) + j4];
    ${body}
  }
  ${st}
}`})(),
};

  const mod = device.createShaderModule({code: kernels[which]});
  const info = process.env.NOINFO ? {messages: []} : await mod.getCompilationInfo(); for (const m of info.messages) console.log(m.type, m.lineNum, m.message);
  const pipe = device.createComputePipeline({layout:'auto', compute:{module:mod, entryPoint:'main', ...(process.env.NOCONST ? {} : {constants:{WX}})}});
  const bg = device.createBindGroup({layout: pipe.getBindGroupLayout(0), entries:[Ab,Bb,Cb].map((buffer,i)=>({binding:i, resource:{buffer}}))});
  const cols = (which === 'e3' || which.startsWith('s')) ? N : N/4;
  const grid = globalThis.GRID?.[which]?.(R, WX) ?? [cols/WX, N/R];
  const run = async () => { const enc = device.createCommandEncoder(); const p=enc.beginComputePass(); p.setPipeline(pipe); p.setBindGroup(0,bg); p.dispatchWorkgroups(...grid); p.end(); device.queue.submit([enc.finish()]); await device.queue.onSubmittedWorkDone(); };
  await run();
  const enc = process.env.NORB ? null : device.createCommandEncoder(); if (enc) { enc.copyBufferToBuffer(Cb,0,rb,0,N*N*4); device.queue.submit([enc.finish()]); }
  let c = new Float32Array(N*N);
  if (!process.env.NOREAD) {
    await rb.mapAsync(GPUMapMode.READ);
    const ab = rb.getMappedRange();
    c = new Float32Array(ab.slice(0));
    if (process.env.KEEP) (globalThis.kept ??= []).push(ab);
    rb.unmap();
    if (process.env.GC) globalThis.gc();
  }
  let err = 0; for (let t = 0; t < 50; t++) { const i = (t*7919)%N, j = (t*104729)%N; let s=0; for (let k=0;k<N;k++) s+=a[i*N+k]*b[k*N+j]; err=Math.max(err,Math.abs(s-c[i*N+j])); }
  if (process.env.KEEPALL) (globalThis.keepAll ??= []).push(mod, info, enc, pipe, bg);
  if (process.env.GCEACH) globalThis.gc();
  console.error("config done", which);
  runs.push({name: `${which} R=${R} WX=${WX}`, run, ts: [], err});
}
console.error("timing");
for (let rep = 0; rep < (+process.env.REPS || 4); rep++) for (const r of runs) { const t0 = performance.now(); await r.run(); r.ts.push(performance.now()-t0); console.error("rep", rep, r.name, "gpu alive:", gpuAlive()); }
for (const r of runs) { r.ts.sort((x,y)=>x-y); console.log(r.name.padEnd(20), 'min', r.ts[0].toFixed(1), 'med', r.ts[r.ts.length>>1].toFixed(1), 'ms  best', (2*N**3/r.ts[0]/1e6).toFixed(2), 'GFLOP/s err', r.err.toExponential(1)); }
process.exit(0);
