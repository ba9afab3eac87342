/**
 * Device capabilities in one place (src/engine/caps.ts): derived from the adapter, one SIMD-8
 * gate, and plans that respect an adapter's limits (SwiftShader: 256 invocations, subgroups of 4).
 */
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { sep } from 'node:path';
import { engine, t32, read } from '../helpers/gpu.ts';
import { capsOf, CAPS_PRESETS, fitsWorkgroup, restrictCaps, subgroupRowsFit, describeCaps, isSoftwareInfo } from '../../src/engine/caps.ts';
import { resolveIncludes, workgroupSize } from '../../src/engine/kernels.ts';
import { planMatmul, matmul } from '../../src/engine/index.ts';
import { randArray } from '../helpers/reference.ts';

const rt = await engine();

describe('capsOf (pure)', () => {
  it('reads subgroups, limits and features; missing limits fall back to WebGPU defaults', () => {
    const c = capsOf({ info: { description: 'llvmpipe (LLVM 15.0.6, 256 bits)', subgroupMinSize: 8, subgroupMaxSize: 8 }, features: ['subgroups', 'shader-f16'], limits: { maxComputeInvocationsPerWorkgroup: 1024 } });
    expect(c.software).toBe(true);
    expect([c.subgroups, c.subgroupMinSize, c.subgroupMaxSize]).toEqual([true, 8, 8]);
    expect(c.maxInvocations).toBe(1024);
    expect(c.maxWorkgroupSize).toEqual([256, 256, 64]);
    expect(c.maxWorkgroupStorage).toBe(16384);
    expect(c.f16).toBe(true);
    expect(c.simd8).toBe(true);
  });

  it('one gate: SIMD-8 kernels need a software adapter with subgroups of exactly 8', () => {
    const base = { features: ['subgroups'], limits: {} };
    expect(capsOf({ ...base, info: { description: 'SwiftShader Device', subgroupMinSize: 4, subgroupMaxSize: 4 } }).simd8).toBe(false);
    expect(capsOf({ ...base, info: { description: 'llvmpipe', subgroupMinSize: 8, subgroupMaxSize: 16 } }).simd8).toBe(false);
    expect(capsOf({ ...base, info: { description: 'Intel Arc', subgroupMinSize: 8, subgroupMaxSize: 8 } }).simd8).toBe(false);
    expect(capsOf({ features: [], limits: {}, info: { description: 'llvmpipe', subgroupMinSize: 8, subgroupMaxSize: 8 } }).simd8).toBe(false);
    expect(isSoftwareInfo({ isFallbackAdapter: true })).toBe(true);
    expect(CAPS_PRESETS.lavapipe.simd8).toBe(true);
    expect(CAPS_PRESETS.swiftshader.simd8).toBe(false);
    expect(CAPS_PRESETS.h100.simd8).toBe(false);
  });

  it('workgroup and subgroup-row rules', () => {
    const s = CAPS_PRESETS.swiftshader;
    expect(fitsWorkgroup(s, 256)).toBe(true);
    expect(fitsWorkgroup(s, 16, 32)).toBe(false);
    expect(fitsWorkgroup(s, 8, 8, 65)).toBe(false);
    // rows of 16 threads: subgroups of 4, 8 or 16 stay inside a row, 32 do not
    expect(subgroupRowsFit(s, 16)).toBe(true);
    expect(subgroupRowsFit(CAPS_PRESETS.h100, 16)).toBe(false);
    expect(subgroupRowsFit(CAPS_PRESETS.minimal, 16)).toBe(false);
    expect(subgroupRowsFit({ subgroups: true, subgroupMinSize: 4, subgroupMaxSize: 32 }, 16)).toBe(false);
    expect(subgroupRowsFit({ subgroups: true, subgroupMinSize: 4, subgroupMaxSize: 8 }, 12)).toBe(false);
  });

  it('restrictCaps only takes capabilities away', () => {
    const r = restrictCaps(CAPS_PRESETS.lavapipe, { subgroups: false });
    expect([r.subgroups, r.subgroupMaxSize, r.simd8]).toEqual([false, 0, false]);
    expect(restrictCaps(CAPS_PRESETS.lavapipe, { simd8: false }).subgroups).toBe(true);
    expect(restrictCaps(CAPS_PRESETS.swiftshader, { maxInvocations: 4096 }).maxInvocations).toBe(256);
    expect(describeCaps(CAPS_PRESETS.swiftshader)).toContain('subgroups 4-4');
  });
});

describe('plans respect caps', () => {
  it('matmul: SIMD-8 only on the 8-lane software adapter', () => {
    for (const [M, N, K] of [[512, 512, 512], [1000, 64, 576], [32, 2048, 128]]) {
      expect(planMatmul(M, N, K, 1, true, CAPS_PRESETS.lavapipe).kind).toBe('simd8');
      for (const c of [CAPS_PRESETS.swiftshader, CAPS_PRESETS.minimal, CAPS_PRESETS.h100]) expect(planMatmul(M, N, K, 1, true, c).kind).not.toBe('simd8');
    }
  });

  it('every kernel entry point has a workgroup size known before its pipeline is built, within 256 invocations by default', () => {
    const dir = new URL('../../kernels/', import.meta.url);
    const unknown: string[] = [];
    const big: string[] = [];
    let entries = 0;
    for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((n) => n.split(sep).join('/')).filter((n) => n.endsWith('.wgsl'))) {
      const code = resolveIncludes(readFileSync(new URL(f, dir), 'utf8'), (n) => readFileSync(new URL(`${n}.wgsl`, dir), 'utf8')).code;
      for (const m of code.matchAll(/@compute[^\n]*\n?\s*(?:@[^\n]*\n\s*)*fn\s+(\w+)/g)) {
        entries++;
        const size = workgroupSize(code, m[1], {});
        if (!size) unknown.push(`${f}:${m[1]}`);
        else if (!fitsWorkgroup(CAPS_PRESETS.swiftshader, ...size)) big.push(`${f}:${m[1]} ${size.join('x')}`);
      }
    }
    expect(entries).toBeGreaterThan(100);
    expect(unknown).toEqual([]);
    expect(big).toEqual([]);
  });
});

describe('the device', () => {
  it('exposes caps that agree with the adapter', () => {
    const c = rt.device.caps;
    expect(c.software).toBe(rt.device.isSoftware);
    expect(c.subgroups).toBe(rt.device.features.has('subgroups'));
    expect(c.maxInvocations).toBe(rt.device.limits.maxComputeInvocationsPerWorkgroup);
    expect(c.maxStorageBinding).toBe(rt.device.limits.maxStorageBufferBindingSize);
  });

  it('refuses to build a workgroup over the invocation limit, with a message naming the kernel', () => {
    rt.device.restrictCaps({ maxInvocations: 128 });
    try {
      expect(() => rt.kernels.get('fill', 'fill', { defines: { T: 'f32' }, constants: { WG: 256 } })).toThrow(/fill.wgsl.*256x1x1.*limit \(128 invocations/);
    } finally {
      rt.device.restrictCaps(null);
    }
  });

  it('a product is the same with the SIMD-8 kernels and without subgroups', async () => {
    const a = t32(randArray(37 * 45, 191), [37, 45]);
    const b = t32(randArray(45 * 29, 192), [45, 29]);
    const full = await read(matmul(a, b));
    rt.device.restrictCaps({ subgroups: false });
    try {
      expect(planMatmul(37, 29, 45, 1, false).kind).not.toBe('simd8');
      const portable = await read(matmul(a, b));
      for (let i = 0; i < full.length; i++) expect(portable[i]).toBeCloseTo(full[i], 4);
    } finally {
      rt.device.restrictCaps(null);
    }
  });
});
