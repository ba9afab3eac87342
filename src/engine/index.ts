/**
 * goe-webgpu's engine under Node: installs the Dawn platform and re-exports the public API.
 *
 *   import { init, tensor, matmul, scope } from 'goe-webgpu';
 *   await init();            // picks the adapter (GOE_ADAPTER=auto|hardware|software|<name>)
 */
import { setPlatform } from './platform.ts';
import { nodePlatform } from './platform-node.ts';

setPlatform(nodePlatform);

export * from './api.ts';
export { nodePlatform, runMain } from './platform-node.ts';
export * from './io/node-files.ts';
