/** Prints the adapter line (what the engine runs on), or a clear error when there is none. */
import { init, runMain, shutdown } from '../src/engine/index.ts';

await runMain(async () => {
  const { device } = await init();
  console.log(device.describe());
  shutdown();
});
