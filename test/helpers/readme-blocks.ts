/**
 * The README's runnable examples: every ```ts block under a "Using ..." section, as a user would
 * paste it (importing 'goe-webgpu', 'goe-webgpu/goe', ...). test/readme.test.ts runs them against
 * the sources, test/package/pack-install.test.ts against the installed package.
 */
export interface ReadmeBlock {
  /** The `## ` heading the block sits under. */
  readonly section: string;
  readonly code: string;
}

export function readmeBlocks(readme: string): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  let section = '';
  const lines = readme.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ')) section = line.slice(3).trim();
    else if (line === '```ts' && section.startsWith('Using ')) {
      const body: string[] = [];
      while (++i < lines.length && lines[i] !== '```') body.push(lines[i]!);
      blocks.push({ section, code: `${body.join('\n')}\n` });
    }
  }
  return blocks;
}

/** The package's entry points and the sources they are built from (package.json "exports"). */
export const ENTRY_SOURCES: Readonly<Record<string, string>> = {
  'goe-webgpu': 'src/engine/index.ts',
  'goe-webgpu/engine': 'src/engine/index.ts',
  'goe-webgpu/models': 'src/models/index.ts',
  'goe-webgpu/goe': 'src/goe/index.ts',
  'goe-webgpu/data': 'src/data/index.ts',
};

/** `code` with its package imports pointed at the sources under `root`. */
export function importsFromSources(code: string, root: string): string {
  return code.replace(/(from\s+|import\s*\(\s*)'(goe-webgpu(?:\/[a-z]+)?)'/g, (m, lead: string, spec: string) => {
    const src = ENTRY_SOURCES[spec];
    if (src === undefined) throw new Error(`README imports '${spec}', which package.json does not export`);
    return `${lead}'${root}/${src}'`;
  });
}
