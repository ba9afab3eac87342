/**
 * Waiting for the GPU without a spinning main thread: the Node nap loop (platform-node.ts
 * createNapWaiter) and the policy that decides when the engine uses it (device.ts chooseGpuWait).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNapWaiter, gpuWaiter } from '../../src/engine/platform-node.ts';
import { chooseGpuWait } from '../../src/engine/device.ts';
import { matmul } from '../../src/engine/index.ts';
import { engine, t32 } from '../helpers/gpu.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Lets `n` event-loop turns pass (each setImmediate runs on the next turn). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('nap waiter', () => {
  it('runs one nap loop for concurrent waits and stops when none is pending', async () => {
    const w = createNapWaiter();
    const results = await Promise.all([w.waitFor(sleep(20).then(() => 1)), w.waitFor(sleep(30).then(() => 2)), w.waitFor(sleep(10).then(() => 3))]);
    expect(results).toEqual([1, 2, 3]);
    expect(w.stats.loops).toBe(1);
    expect(w.stats.naps).toBeGreaterThan(0);
    expect(w.stats.pending).toBe(0);
    await turns(3);
    expect(w.stats.scheduled).toBe(false);
    const naps = w.stats.naps;
    await sleep(10);
    expect(w.stats.naps).toBe(naps);
  });

  it('slows a Dawn-like spinner to a few dozen turns per 30 ms wait, at most ~1 ms late', async () => {
    // Dawn's binding re-queues a (ref'd) setImmediate every turn while a promise is pending;
    // with only unref'd immediates the loop would block in poll and need no napping at all.
    const spinTurns = async (wait: (p: Promise<void>) => Promise<void>) => {
      let turnsSeen = 0;
      let pending = true;
      const dawnLike = () => {
        turnsSeen++;
        if (pending) setImmediate(dawnLike);
      };
      setImmediate(dawnLike);
      const t0 = performance.now();
      await wait(sleep(30).finally(() => (pending = false)));
      return { turnsSeen, ms: performance.now() - t0 };
    };
    const bare = await spinTurns((p) => p);
    const w = createNapWaiter();
    const napped = await spinTurns((p) => w.waitFor(p));
    // Naps grow to age/8, capped at 1 ms: far fewer turns than a spin, and little lateness.
    expect(napped.turnsSeen).toBeLessThan(200);
    expect(bare.turnsSeen).toBeGreaterThan(napped.turnsSeen * 5);
    expect(w.stats.naps).toBeGreaterThan(5);
    expect(napped.ms).toBeLessThan(30 + 15); // generous: the CI machine is shared
  });

  it('adds no nap to a wait shorter than the spin window', async () => {
    const w = createNapWaiter({ spinMs: 50 });
    await w.waitFor(Promise.resolve(7));
    await w.waitFor(turns(2));
    expect(w.stats.naps).toBe(0);
  });

  it('passes a rejection through and stops the loop (a lost device)', async () => {
    const w = createNapWaiter();
    const lost = sleep(5).then(() => {
      throw new Error('GPU device lost (destroyed: gone)');
    });
    await expect(w.waitFor(lost)).rejects.toThrow('GPU device lost');
    expect(w.stats.pending).toBe(0);
    await turns(3);
    expect(w.stats.scheduled).toBe(false);
    // A later wait starts a fresh loop and still works.
    await expect(w.waitFor(sleep(2).then(() => 'ok'))).resolves.toBe('ok');
    expect(w.stats.loops).toBe(2);
  });

  it('never keeps the process alive: a wait that never settles lets node exit', () => {
    const platform = fileURLToPath(new URL('../../src/engine/platform-node.ts', import.meta.url));
    const script = `import { gpuWaiter } from ${JSON.stringify(platform)}; void gpuWaiter.waitFor(new Promise(() => {})); console.log('waiting');`;
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout.trim()).toBe('waiting');
    expect(r.status).toBe(0);
    expect(performance.now() - t0).toBeLessThan(15_000);
  });
});

describe('GOE_GPU_WAIT policy', () => {
  it('naps on software adapters by default, spins on hardware, and obeys nap/spin', () => {
    expect(chooseGpuWait('auto', true)).toBe('nap');
    expect(chooseGpuWait('auto', false)).toBe('spin');
    expect(chooseGpuWait('nap', false)).toBe('nap');
    expect(chooseGpuWait('spin', true)).toBe('spin');
    expect(() => chooseGpuWait('sleep', true)).toThrow(/GOE_GPU_WAIT=sleep: expected auto, nap or spin/);
  });

  it('the engine waits through the nap loop when its mode is nap', async () => {
    const rt = await engine();
    const dev = rt.device;
    const n = 96;
    const a = t32(Array.from({ length: n * n }, (_, i) => ((i * 7) % 13) - 6), [n, n]);
    const loops = gpuWaiter.stats.loops;
    const y = matmul(a, a);
    const got = await y.data();
    await dev.sync();
    expect(got[0]).toBeCloseTo(Array.from({ length: n }, (_, k) => (((k * 7) % 13) - 6) * ((((k * n) * 7) % 13) - 6)).reduce((s, v) => s + v, 0), 1);
    if (dev.gpuWait === 'nap') expect(gpuWaiter.stats.loops).toBeGreaterThan(loops);
    else expect(gpuWaiter.stats.loops).toBe(loops);
    expect(gpuWaiter.stats.pending).toBe(0);
    a.dispose();
    y.dispose();
  });
});
