/**
 * Kernel loader and pipeline cache.
 *
 * WGSL lives in kernels/<family>.wgsl, loaded by name through the platform; the software
 * adapter's kernels (caps.simd8) in kernels/simd8/<family>.wgsl, named `simd8/<family>`. A kernel
 * is one entry point of such a file, specialised two ways:
 *
 *  - `constants`: WGSL `override` declarations (workgroup size, tile sizes, an op selector, element
 *    counts known when the pipeline is built). This is the preferred way: the source stays valid
 *    WGSL and the compiler folds the values.
 *  - `defines`: the one template step, for what `override` cannot express: an element type
 *    (`{{T}}` = f32/i32/u32) and optional-feature code (`{{SUBGROUPS}}`, `{{SG_FIRST}}`,
 *    `{{SG_BCAST}}`, `{{SG_SHUFFLE}}`: the subgroup builtins where the adapter has subgroups,
 *    stand-ins otherwise, so the same file compiles on adapters without the feature; one source
 *    of those values, `subgroupDefines()` in ops/launch.ts). Each `{{NAME}}` in the source is
 *    replaced by `defines[NAME]`; a placeholder without a value is an error. Replacements stay on
 *    their line, so compiler messages keep the file's own line numbers.
 *
 * Binding convention: if the file declares `@group(0) @binding(0) var<uniform>` its entry points
 * take a parameter block at binding 0 and their storage buffers at 1..n (every entry point of that
 * file must use the parameter block); otherwise storage buffers bind at 0..n-1.
 *
 * Pipelines and their bind-group layouts are cached by (file, entry point, defines, constants).
 */
import type { Device, Kernel } from './device.ts';
import { GpuError } from './errors.ts';
import { getPlatform } from './platform.ts';
import { fitsWorkgroup } from './caps.ts';
import { KernelLookup } from './kernel-lookup.ts';

export interface KernelSpec {
  defines?: Readonly<Record<string, string | number>>;
  constants?: Readonly<Record<string, number | boolean>>;
}

interface ModuleEntry {
  module: GPUShaderModule;
  hasParams: boolean;
  /** Resolves to a compile error (or null) once the compiler has looked at the module. */
  compiled: Promise<GpuError | null>;
}

const PLACEHOLDER = /\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}/g;
const PARAMS_AT_ZERO = /@group\(0\)\s*@binding\(0\)\s*var\s*<\s*uniform\s*>/;

/** `// include: name`, name a kernel file's (`index`, or one folder deep: `simd8/x`). */
const INCLUDE = /^\/\/ include: ((?:[A-Za-z0-9_-]+\/)?[A-Za-z0-9_-]+)[ \t]*$/gm;

/** The code of one kernel file with its includes, and where each appended file starts. */
export interface IncludedSource {
  code: string;
  /** Appended files in order: name and the (1-based) line of the code where it begins. */
  parts: { name: string; firstLine: number }[];
}

/**
 * `// include: name` lines append kernels/<name>.wgsl to the end of the file (once each, not
 * nested), so helpers several families need (index arithmetic) live in one file. Appending, not
 * inlining, keeps the including file's own line numbers in compiler messages; `sourceLine` maps
 * a line of an appended part back to its file. Exported for tests.
 */
export function resolveIncludes(source: string, read: (name: string) => string): IncludedSource {
  const names = [...new Set([...source.matchAll(INCLUDE)].map((m) => m[1]))];
  let code = source.endsWith('\n') ? source : `${source}\n`;
  const parts: IncludedSource['parts'] = [];
  for (const name of names) {
    parts.push({ name, firstLine: code.split('\n').length });
    const text = read(name);
    code += text.endsWith('\n') ? text : `${text}\n`;
  }
  return { code, parts };
}

/** `kernels/<file>.wgsl:<line>` for a line of the code resolveIncludes built. */
export function sourceLine(file: string, inc: IncludedSource, line: number): string {
  for (let i = inc.parts.length - 1; i >= 0; i--) {
    const p = inc.parts[i];
    if (line >= p.firstLine) return `kernels/${p.name}.wgsl:${line - p.firstLine + 1}`;
  }
  return `kernels/${file}.wgsl:${line}`;
}

/** Replaces `{{NAME}}` placeholders; exported for tests. */
export function applyDefines(file: string, source: string, defines: Readonly<Record<string, string | number>>): string {
  return source.replace(PLACEHOLDER, (_, name: string) => {
    if (!(name in defines)) {
      throw new GpuError(`kernels/${file}.wgsl: template placeholder {{${name}}} has no value (defines: ${JSON.stringify(defines)})`);
    }
    return String(defines[name]);
  });
}

export class KernelLoader {
  private readonly device: Device;
  private readonly sources = new Map<string, IncludedSource>();
  private readonly modules = new Map<string, ModuleEntry>();
  private readonly kernels = new Map<string, Kernel>();
  /** Specialisations seen, to their key in `kernels` without building it (kernel-lookup.ts). */
  private readonly lookup = new KernelLookup();
  /** Pipelines built so far (a test checks that the cache compiles each kernel once). */
  compiledCount = 0;

  constructor(device: Device) {
    this.device = device;
  }

  /**
   * The kernel `entry` of kernels/<file>.wgsl with the given specialisation, built on first use.
   * Compilation errors surface at the next sync point (a readback or `sync()`), naming the file,
   * line and entry point; `compile` reports them at once.
   */
  get(file: string, entry: string, spec: KernelSpec = {}): Kernel {
    const known = this.lookup.find(file, entry, spec);
    if (known !== null) {
      const hit = this.kernels.get(known);
      if (hit) return hit;
    }
    const key = cacheKey(file, entry, spec);
    if (known === null) this.lookup.remember(file, entry, spec, key);
    return this.kernels.get(key) ?? this.build(file, entry, spec, key);
  }

  /** Like `get`, but waits for the compiler and throws its errors (file:line:col) directly. */
  async compile(file: string, entry: string, spec: KernelSpec = {}): Promise<Kernel> {
    const key = cacheKey(file, entry, spec);
    const cached = this.kernels.get(key);
    const mod = this.moduleFor(file, spec.defines ?? {});
    const compileError = await mod.compiled;
    if (compileError) {
      this.device.forgetError(compileError);
      this.kernels.delete(key);
      throw compileError;
    }
    if (cached) return cached;
    const dev = this.device.gpu;
    dev.pushErrorScope('validation');
    const kernel = this.build(file, entry, spec, key, false);
    const err = await dev.popErrorScope();
    if (err) {
      this.kernels.delete(key);
      throw new GpuError(`kernels/${file}.wgsl, entry point "${entry}": ${err.message}`);
    }
    return kernel;
  }

  private build(file: string, entry: string, spec: KernelSpec, key: string, watch = true): Kernel {
    const mod = this.moduleFor(file, spec.defines ?? {});
    const label = `${file}.wgsl:${entry}`;
    const size = workgroupSize(this.sources.get(file)!.code, entry, spec.constants ?? {});
    const caps = this.device.caps;
    if (size && !fitsWorkgroup(caps, ...size)) {
      throw new GpuError(
        `kernels/${file}.wgsl, entry point "${entry}": a workgroup of ${size.join('x')} invocations exceeds this adapter's ` +
          `limit (${caps.maxInvocations} invocations, ${caps.maxWorkgroupSize.join('x')}); the op's plan must pick a smaller one`,
      );
    }
    const dev = this.device.gpu;
    if (watch) dev.pushErrorScope('validation');
    const pipeline = dev.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module: mod.module, entryPoint: entry, constants: spec.constants as Record<string, number> | undefined },
    });
    if (watch) {
      // Every pipeline built from a module that failed to compile reports the compile error
      // (file:line) at the next sync point, first among the errors that follow from it.
      this.device.watchCompile(mod.compiled);
      const scope = dev.popErrorScope();
      // A compile error is reported once, by the module check; the pipeline's own error is
      // reported only when the module compiled (a bad entry point or constant).
      this.device.watch(
        Promise.all([scope, mod.compiled]).then(([err, compileErr]) => (compileErr ? null : err)),
        `kernels/${file}.wgsl, entry point "${entry}"`,
      );
    }
    const kernel: Kernel = { label, pipeline, layout: pipeline.getBindGroupLayout(0), hasParams: mod.hasParams };
    this.kernels.set(key, kernel);
    this.compiledCount++;
    return kernel;
  }

  private moduleFor(file: string, defines: Readonly<Record<string, string | number>>): ModuleEntry {
    const key = `${file}|${stableJson(defines)}`;
    const hit = this.modules.get(key);
    if (hit) return hit;
    let source = this.sources.get(file);
    if (source === undefined) {
      const platform = getPlatform();
      source = resolveIncludes(platform.kernelSource(file), (name) => platform.kernelSource(name));
      this.sources.set(file, source);
    }
    const inc = source;
    const code = applyDefines(file, inc.code, defines);
    // The module's own validation error would repeat the compiler's message without the file
    // name: capture it in a scope and report the compilation info instead.
    this.device.gpu.pushErrorScope('validation');
    const module = this.device.gpu.createShaderModule({ label: `kernels/${file}.wgsl`, code });
    void this.device.gpu.popErrorScope();
    const compiled = module.getCompilationInfo().then((info) => {
      const errors = info.messages.filter((m) => m.type === 'error');
      if (errors.length === 0) return null;
      const lines = errors.map((m) => `${sourceLine(file, inc, m.lineNum)}:${m.linePos}: error: ${m.message}`);
      const err = new GpuError(`WGSL compile error\n${lines.join('\n')}`);
      return err;
    });
    const entry: ModuleEntry = { module, hasParams: PARAMS_AT_ZERO.test(code), compiled };
    this.modules.set(key, entry);
    return entry;
  }
}

/**
 * The workgroup size of `entry` as [x, y, z], evaluating literals and `override` names (from
 * `constants`, else the declaration's default); null when a dimension is an expression.
 * Exported for tests.
 */
export function workgroupSize(code: string, entry: string, constants: Readonly<Record<string, number | boolean>>): [number, number, number] | null {
  const m = new RegExp(`@workgroup_size\\(([^)]*)\\)\\s*fn\\s+${entry}\\s*\\(`).exec(code);
  if (!m) return null;
  const dims = m[1].split(',').map((d) => d.trim()).filter((d) => d.length > 0);
  const out: number[] = [];
  for (const d of dims) {
    const lit = /^(\d+)[iu]?$/.exec(d);
    if (lit) {
      out.push(Number(lit[1]));
      continue;
    }
    if (!/^[A-Za-z_]\w*$/.test(d)) return null;
    const c = constants[d];
    if (typeof c === 'number') {
      out.push(c);
      continue;
    }
    const decl = new RegExp(`override\\s+${d}\\s*:\\s*\\w+\\s*=\\s*(\\d+)[iu]?\\s*;`).exec(code);
    if (!decl) return null;
    out.push(Number(decl[1]));
  }
  return [out[0] ?? 1, out[1] ?? 1, out[2] ?? 1];
}

/** Keys of the `defines` objects seen (callers pass the same frozen objects: subgroupDefines,
 * defines(dtype)), so the per-dispatch lookup serialises only the constants. */
const definesKeys = new WeakMap<object, string>();

function cacheKey(file: string, entry: string, spec: KernelSpec): string {
  let d = '';
  if (spec.defines) {
    d = definesKeys.get(spec.defines) ?? '';
    if (!d) {
      d = stableJson(spec.defines);
      if (Object.isFrozen(spec.defines)) definesKeys.set(spec.defines, d);
    }
  }
  return `${file}|${entry}|${d}|${spec.constants ? stableJson(spec.constants) : ''}`;
}

/** name=value pairs in name order (a plain loop: this runs once per dispatch). */
function stableJson(o: Readonly<Record<string, unknown>>): string {
  const keys = Object.keys(o);
  if (keys.length > 1) keys.sort();
  let s = '';
  for (const k of keys) s += `${k}=${String(o[k])},`;
  return s;
}
