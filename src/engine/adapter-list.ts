/**
 * Which adapters exist, for the error a named adapter choice (GOE_ADAPTER=nvidia) gets when none
 * matches: Dawn's rejection lists them ("Available adapters:\n * backend: 'vulkan', name: '...'").
 */

export interface AdapterName {
  backend: string;
  name: string;
}

/** The adapters named in Dawn's "no adapter" rejection; empty when it names none. */
export function adaptersInDawnMessage(message: string): AdapterName[] {
  return [...message.matchAll(/^ \* backend: '([^']*)', name: '([^']*)'$/gm)].map((m) => ({ backend: m[1]!, name: m[2]! }));
}

/** The error text for GOE_ADAPTER=<choice> when no adapter's name contains it. */
export function noMatchingAdapterMessage(choice: string, available: readonly AdapterName[]): string {
  return [
    `no WebGPU adapter whose name contains "${choice}" (GOE_ADAPTER=${choice}). Adapters on this machine:`,
    ...available.map((a) => `  ${a.name} (${a.backend})`),
    'Set GOE_ADAPTER to part of one of these names, or to auto, hardware or software.',
  ].join('\n');
}
