// Preload for any webgpu script: node --expose-gc --import ./bench/crash/gc-pressure.mjs SCRIPT ...
// Forces a full GC every GC_MS ms (default 20) to expose a GPU object that the script lets go.
// The script must sit under the project (copy it into bench/crash/) so that `webgpu` resolves.
// KEEPGPU=1 also keeps every GPU object that requests an adapter (patches GPU.prototype).
import { globals } from 'webgpu';
const ms = +(process.env.GC_MS ?? 20);
if (ms > 0) setInterval(() => globalThis.gc(), ms).unref(); // GC_MS=0: no forced GC (no --expose-gc needed)
if (process.env.KEEPGPU) {
  const kept = (globalThis.__keptGpus = []);
  const orig = globals.GPU.prototype.requestAdapter;
  globals.GPU.prototype.requestAdapter = function (...a) { kept.push(this); return orig.apply(this, a); };
}
