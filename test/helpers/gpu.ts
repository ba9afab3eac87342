/**
 * GPU test helpers: one engine per test file (the runtime is a process singleton), and tensors
 * from float64 arrays.
 */
import { init, tensor, type Tensor, type Runtime } from '../../src/engine/index.ts';

/** The engine, with output poisoning on (every new tensor starts as NaN). */
export async function engine(): Promise<Runtime> {
  const rt = await init({ adapter: process.env.GOE_ADAPTER ?? 'auto' });
  rt.device.poison = true;
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
