/**
 * GPU test helpers: one engine per test file (the runtime is a process singleton), and tensors
 * from float64 arrays.
 */
import { init, tensor, type Tensor, type Runtime } from '../../src/engine/index.ts';

/** The engine, with output poisoning on (every new tensor starts as NaN). GOE_CAPS=portable runs
 * the suite without the software-adapter (SIMD-8) kernels, GOE_CAPS=minimal also without
 * subgroups and with WebGPU's default 256 invocations (src/engine/caps.ts). */
export async function engine(): Promise<Runtime> {
  const rt = await init({ adapter: process.env.GOE_ADAPTER ?? 'auto' });
  rt.device.poison = true;
  const only = process.env.GOE_CAPS;
  if (only === 'portable') rt.device.restrictCaps({ simd8: false });
  else if (only === 'minimal') rt.device.restrictCaps({ subgroups: false, simd8: false, maxInvocations: 256 });
  else if (only) throw new Error(`GOE_CAPS=${only}: expected portable or minimal`);
  return rt;
}

/** An f32 tensor from float64 values (rounded to f32), optionally requiring grad. */
export function t32(values: ArrayLike<number>, shape: readonly number[], requiresGrad = false): Tensor {
  const t = tensor(Float32Array.from(values), shape);
  t.requiresGrad = requiresGrad;
  return t;
}

/** Reads a tensor back as float64. */
export async function read(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}
