// The first minute with the `goe` binary: no Dawn warnings, --version, options answered in our
// words with the command's usage (exit 2), and the adapters listed when GOE_ADAPTER names none.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DawnWarningFilter, DAWN_LIMIT_WARNING } from '../../src/cli/dawn-stderr.ts';
import { wordParseArgsError, parseOptions, UsageError } from '../../src/cli/subcommand.ts';
import { adaptersInDawnMessage, noMatchingAdapterMessage } from '../../src/engine/adapter-list.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const GOE = join(ROOT, 'src', 'cli', 'goe.ts');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const WARNINGS = ['Uniform', 'Storage'].map((k) => `Warning: maxDynamic${k}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.`);

function goe(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [GOE, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return r;
}

describe('DawnWarningFilter', () => {
  function filtered(chunks: string[]): string {
    let out = '';
    const f = new DawnWarningFilter((t) => (out += t));
    for (const c of chunks) f.push(c);
    f.end();
    return out;
  }

  it('drops exactly the two limit warnings, however the text is split', () => {
    const text = `before\n${WARNINGS[0]}\n${WARNINGS[1]}\nWarning: something else\nafter`;
    for (let cut = 0; cut <= text.length; cut += 7) {
      expect(filtered([text.slice(0, cut), text.slice(cut)])).toBe('before\nWarning: something else\nafter');
    }
    expect(filtered([...text])).toBe('before\nWarning: something else\nafter');
    expect(WARNINGS.every((w) => DAWN_LIMIT_WARNING.test(w))).toBe(true);
  });

  it('forwards an unfinished line at once unless it may become a warning', () => {
    const seen: string[] = [];
    const f = new DawnWarningFilter((t) => seen.push(t));
    f.push('50% [=====     ]\r');
    expect(seen).toEqual(['50% [=====     ]\r']);
    f.push('Warning: maxDyn');
    expect(seen).toHaveLength(1);
    f.push('amicStorage is not the warning\n');
    expect(seen[1]).toBe('Warning: maxDynamicStorage is not the warning\n');
  });
});

describe('option errors in our words', () => {
  it('rewords parseArgs errors', () => {
    const cases: [string[], string][] = [
      [['--bogus'], 'unknown option --bogus'],
      [['-x'], 'unknown option -x'],
      [['--out'], '--out needs a value'],
      [['--json=1'], '--json takes no value'],
      [['stray'], 'unexpected argument "stray"'],
    ];
    for (const [args, message] of cases) {
      expect(() => parseOptions({ args, strict: true, allowPositionals: false, options: { out: { type: 'string' }, json: { type: 'boolean' } } })).toThrow(new UsageError(message));
    }
    expect(wordParseArgsError('--sigma2 takes a finite number')).toBe('--sigma2 takes a finite number');
  });

  it('`goe --version`, and an unknown option of a command prints its usage with exit 2', () => {
    const v = goe(['--version']);
    expect(v.status).toBe(0);
    expect(v.stdout).toBe(`${VERSION}\n`);
    for (const cmd of ['run', 'metrics', 'experiment']) {
      const r = goe([cmd, '--bogus']);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^goe ${cmd}: unknown option --bogus\\n\\nUsage: goe ${cmd}`));
    }
    const top = goe(['--bogus']);
    expect(top.status).toBe(2);
    expect(top.stderr).toMatch(/^goe: unknown option --bogus\n\nUsage: goe <command>/);
  });
});

describe('the adapter', () => {
  it('lists the adapters Dawn names when GOE_ADAPTER matches none', () => {
    const dawn = "no suitable backends found\nAvailable adapters:\n * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'\n * backend: 'vulkan', name: 'AMD Radeon'";
    const list = adaptersInDawnMessage(dawn);
    expect(list).toEqual([{ backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)' }, { backend: 'vulkan', name: 'AMD Radeon' }]);
    expect(noMatchingAdapterMessage('nvidia', list)).toBe(
      'no WebGPU adapter whose name contains "nvidia" (GOE_ADAPTER=nvidia). Adapters on this machine:\n' +
        '  llvmpipe (LLVM 15.0.6, 256 bits) (vulkan)\n  AMD Radeon (vulkan)\n' +
        'Set GOE_ADAPTER to part of one of these names, or to auto, hardware or software.',
    );
  });

  it('`GOE_ADAPTER=<no such adapter> goe run` exits 3 naming the adapters that exist, with no Dawn warnings', () => {
    const r = goe(['run', '--no-download', '--out', join(ROOT, '.scratch', 'never-written')], { GOE_ADAPTER: 'no-such-gpu-xyz' });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^goe run: no WebGPU adapter whose name contains "no-such-gpu-xyz" \(GOE_ADAPTER=no-such-gpu-xyz\)\. Adapters on this machine:\n {2}\S/);
    expect(r.stderr).not.toMatch(/artificially reduced/);
    expect(existsSync(join(ROOT, '.scratch', 'never-written')), 'no run folder left behind').toBe(false);
    const exp = goe(['experiment', 'fmnist', '--no-download', '--limit', '10', '--out', join(ROOT, '.scratch', 'never-written')], { GOE_ADAPTER: 'no-such-gpu-xyz' });
    expect(exp.status).toBe(3);
    expect(existsSync(join(ROOT, '.scratch', 'never-written')), 'goe experiment leaves no run folder behind').toBe(false);
    // Dawn does print them (with GOE_DAWN_WARNINGS=1 the command runs unfiltered) on drivers with huge limits
    const raw = goe(['run', '--no-download', '--out', join(ROOT, '.scratch', 'never-written')], { GOE_ADAPTER: 'no-such-gpu-xyz', GOE_DAWN_WARNINGS: '1' });
    expect(raw.status).toBe(3);
    if (/llvmpipe/.test(r.stderr)) expect(raw.stderr).toMatch(/artificially reduced/);
  });
});
