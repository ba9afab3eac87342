/**
 * `goe convert` (src/cli/convert.ts) on state dicts saved by torch.save in PyTorch 1.13
 * (scripts/fixtures/torch_vit_resnet.py): zip and legacy layouts, torchvision / timm / pytorch-ood
 * ViT names and torchvision ResNet names, each converted, compared tensor by tensor with the
 * golden's state dict, loaded strictly (no missing or unexpected keys) and run to PyTorch's logits;
 * the timm key map against its inverse over ViT-B/16; and bad input answered by exit 2 with one line.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engine, read } from './helpers/gpu.ts';
import { expectClose } from './helpers/reference.ts';
import { parseSafetensors, serializeSafetensors, noGrad, type HostTensor } from '../src/engine/index.ts';
import { convertMain } from '../src/cli/convert.ts';
import { UsageError, type CliIo } from '../src/cli/subcommand.ts';
import { CHECKPOINT_MAPS, torchvisionToTimmName } from '../src/models/checkpoint-maps.ts';
import { VisionTransformer } from '../src/models/vit.ts';
import { ResNet } from '../src/models/resnet.ts';
import { loadGolden, fixturePath } from './models/vit-resnet-golden.ts';
import { loadUserWeights, ExperimentInputError } from '../src/goe/experiments/runner.ts';

const dir = mkdtempSync(join(tmpdir(), 'goe-convert-'));

function capture(): CliIo & { out: string; err: string } {
  const io = { out: '', err: '', stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

async function convert(input: string, map: string): Promise<{ code: number; out: string; err: string; file: string }> {
  const file = join(dir, `${input.replace(/\W/g, '_')}_${map}.safetensors`);
  const io = capture();
  const code = await convertMain([fixturePath(input), file, '--map', map], io);
  return { code, out: io.out, err: io.err, file };
}

function stateOf(file: string): Map<string, HostTensor> {
  const f = parseSafetensors(new Uint8Array(readFileSync(file)));
  return new Map([...f.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array | Int32Array }]));
}

/** Every converted tensor equals the golden's param.* exactly (same names, shapes and values). */
function expectSameState(got: Map<string, HostTensor>, want: Map<string, HostTensor>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, w] of want) {
    const g = got.get(k)!;
    expect(g.shape, k).toEqual(w.shape);
    expect(Array.from(g.data as Float32Array), k).toEqual(Array.from(w.data as Float32Array));
  }
}

beforeAll(async () => {
  await engine();
});

const smallVit = () => new VisionTransformer({ imageSize: 32, patchSize: 8, numLayers: 2, numHeads: 2, hiddenDim: 32, mlpDim: 64, numClasses: 10 });

describe('goe convert: PyTorch state dicts to safetensors', () => {
  const vit = loadGolden('vit_small');
  const res = loadGolden('resnet_basic');

  it.each([
    ['vit_small_torchvision.pth', 'torchvision-vit', 'zip'],
    ['vit_small_torchvision_legacy.pth', 'torchvision-vit', 'legacy'],
    ['vit_small_timm.pth', 'timm-vit', 'zip'],
    ['vit_small_pytorch_ood.pth', 'pytorch-ood-vit', 'zip'],
  ])('%s --map %s (%s layout): the same tensors as the torchvision state dict', async (input, map, layout) => {
    const r = await convert(input, map);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^wrote .*: 32 tensors, .* \\(${layout} checkpoint`));
    if (map === 'pytorch-ood-vit') expect(r.out).toContain("under 'state_dict'");
    expectSameState(stateOf(r.file), vit.state);
  });

  it('the converted ViT loads strictly and gives PyTorch\'s logits', async () => {
    const r = await convert('vit_small_timm.pth', 'timm-vit');
    const m = smallVit().eval();
    try {
      expect(m.loadStateDict(stateOf(r.file), false)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      const x = vit.tensor('in.x');
      const y = noGrad(() => m.forward(x));
      expectClose(await read(y), vit.f32('eval.logits'), { atol: 2e-4, rtol: 1e-3, what: 'logits of the converted timm checkpoint' });
      x.dispose();
      y.dispose();
    } finally {
      m.dispose();
    }
  });

  it.each([['resnet_basic.pth'], ['resnet_basic_legacy.pth']])('%s --map torchvision-resnet: tensors (num_batches_tracked as I32), strict load, logits', async (input) => {
    const r = await convert(input, 'torchvision-resnet');
    expect(r.code).toBe(0);
    const st = stateOf(r.file);
    expectSameState(st, res.state);
    expect(st.get('layer1.0.bn1.num_batches_tracked')!.data).toBeInstanceOf(Int32Array);
    if (input === 'resnet_basic.pth') {
      const m = new ResNet('basic', [2, 1, 1, 1], { numClasses: 7, baseWidth: 4 }).eval();
      try {
        expect(m.loadStateDict(st, false)).toEqual({ missingKeys: [], unexpectedKeys: [] });
        const x = res.tensor('in.x');
        const y = noGrad(() => m.forward(x));
        expectClose(await read(y), res.f32('eval.logits'), { atol: 2e-4, rtol: 1e-3, what: 'logits of the converted ResNet' });
        x.dispose();
        y.dispose();
      } finally {
        m.dispose();
      }
    }
  });

  it("pytorch-ood's own VisionTransformer (tensordot attention, eps 1e-5) converts and gives its logits", async () => {
    const r = await convert('pytorch_ood_vit.pth', 'pytorch-ood-vit');
    expect(r.code).toBe(0);
    const fx = loadGolden('pytorch_ood_vit');
    const m = new VisionTransformer({ imageSize: 32, patchSize: 8, numLayers: 2, numHeads: 2, hiddenDim: 32, mlpDim: 64, numClasses: 10, layerNormEps: 1e-5 }).eval();
    try {
      expect(m.loadStateDict(stateOf(r.file), false)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      const x = fx.tensor('in.x');
      const y = noGrad(() => m.forward(x));
      expectClose(await read(y), fx.f32('eval.logits'), { atol: 2e-4, rtol: 1e-3, what: "pytorch-ood's logits" });
      x.dispose();
      y.dispose();
    } finally {
      m.dispose();
    }
  });

  it("a safetensors file in timm's layout (timm's model.safetensors) converts with the same map", async () => {
    const timmNames = await convert('vit_small_timm.pth', 'none');
    expect(timmNames.code).toBe(0);
    expect(stateOf(timmNames.file).has('blocks.1.attn.qkv.weight')).toBe(true);
    const out = join(dir, 'from_safetensors.safetensors');
    const io = capture();
    expect(await convertMain([timmNames.file, out, '--map', 'timm-vit'], io)).toBe(0);
    expect(io.out).toMatch(/safetensors checkpoint/);
    expectSameState(stateOf(out), vit.state);
    // nn.DataParallel's 'module.' prefix is removed from safetensors input too
    const prefixed = join(dir, 'prefixed.safetensors');
    writeFileSync(prefixed, serializeSafetensors(new Map([...stateOf(timmNames.file)].map(([k, t]) => [`module.${k}`, { shape: t.shape, data: t.data as Float32Array }]))));
    const io2 = capture();
    expect(await convertMain([prefixed, out, '--map', 'timm-vit'], io2)).toBe(0);
    expect(io2.out).toMatch(/'module\.' prefix of nn\.DataParallel removed/);
    expectSameState(stateOf(out), vit.state);
  });

  it("torchvision's released vit_b_16 file names the MLP layers linear_1 / linear_2: mapped to mlp.0 / mlp.3", () => {
    const old = new Map([
      ['encoder.layers.encoder_layer_3.mlp.linear_1.weight', { shape: [1], data: new Float32Array([1]) }],
      ['encoder.layers.encoder_layer_3.mlp.linear_2.bias', { shape: [1], data: new Float32Array([2]) }],
      ['encoder.layers.encoder_layer_3.ln_1.weight', { shape: [1], data: new Float32Array([3]) }],
    ]);
    const got = CHECKPOINT_MAPS['torchvision-vit']!.map(old);
    expect([...got.keys()]).toEqual(['encoder.layers.encoder_layer_3.mlp.0.weight', 'encoder.layers.encoder_layer_3.mlp.3.bias', 'encoder.layers.encoder_layer_3.ln_1.weight']);
    expect(got.get('encoder.layers.encoder_layer_3.mlp.3.bias')!.data[0]).toBe(2);
  });

  it("the timm map is the inverse of torchvision -> timm over ViT-B/16's 152 names", () => {
    // the names depend on the depth only: ViT-B/16's 12 layers at a small width
    const m = new VisionTransformer({ numLayers: 12, hiddenDim: 8, numHeads: 2, mlpDim: 8, imageSize: 32, patchSize: 16 });
    try {
      const names = [...m.stateDict().keys()];
      expect(names).toHaveLength(152);
      const timm = names.map(torchvisionToTimmName);
      expect(timm).toContain('blocks.11.attn.qkv.weight');
      expect(timm).toContain('patch_embed.proj.weight');
      expect(timm.filter((k) => k.startsWith('encoder') || k.includes('encoder_layer'))).toEqual([]);
      const back = CHECKPOINT_MAPS['timm-vit']!.map(new Map(timm.map((k) => [k, { shape: [1], data: new Float32Array(1) }])));
      expect([...back.keys()]).toEqual(names);
    } finally {
      m.dispose();
    }
  });

  it.each([['views_dtypes.pth'], ['views_dtypes_legacy.pth']])('%s: strided views of one storage, f16/bf16/f64/int64/bool, a Parameter', async (input) => {
    const r = await convert(input, 'none');
    expect(r.err).toBe('');
    const f = parseSafetensors(new Uint8Array(readFileSync(r.file)));
    const get = (k: string) => {
      const t = f.tensors.get(k)!;
      return { dtype: t.dtype, shape: t.shape, values: Array.from(t.data as Float32Array, Number) };
    };
    const seq = Array.from({ length: 12 }, (_, i) => i);
    expect(get('t')).toEqual({ dtype: 'F32', shape: [4, 3], values: [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11] });
    expect(get('v')).toEqual({ dtype: 'F32', shape: [2, 4], values: seq.slice(4) });
    for (const k of ['h', 'b', 'd']) expect(get(k)).toEqual({ dtype: 'F32', shape: [3, 4], values: seq });
    expect(get('i')).toEqual({ dtype: 'I32', shape: [5], values: [0, 1, 2, 3, 4] });
    expect(get('flag')).toEqual({ dtype: 'U8', shape: [2], values: [1, 0] });
    expect(get('p')).toEqual({ dtype: 'F32', shape: [2], values: [1, 1] });
  });

  it('refuses code, non-checkpoints and bad arguments with exit 2 and one line', async () => {
    const evil = await convert('not_a_state_dict.pth', 'none');
    expect(evil.code).toBe(2);
    expect(evil.err).toMatch(/^goe convert: error: .*global 'posix\.getcwd' is not allowed.*\n$/);
    expect(existsSync(evil.file)).toBe(false);

    const huge = await convert('expanded_view.pth', 'none');
    expect(huge.code).toBe(2);
    expect(huge.err).toMatch(/more than 4x the bytes of their storages/);

    const big = await convert('big_endian.pth', 'none');
    expect(big.code).toBe(2);
    expect(big.err).toMatch(/'big'-endian byte order/);

    const junk = join(dir, 'junk.pth');
    writeFileSync(junk, 'hello, not a checkpoint');
    let io = capture();
    expect(await convertMain([junk, join(dir, 'o.safetensors')], io)).toBe(2);
    expect(io.err).toMatch(/not a PyTorch checkpoint/);
    expect(io.err.trim().split('\n')).toHaveLength(1);

    const truncated = join(dir, 'truncated.pth');
    writeFileSync(truncated, readFileSync(fixturePath('vit_small_torchvision_legacy.pth')).subarray(0, 50_000));
    io = capture();
    expect(await convertMain([truncated, join(dir, 'o.safetensors')], io)).toBe(2);
    expect(io.err).toMatch(/truncated/);

    io = capture();
    expect(await convertMain([join(dir, 'missing.pth'), join(dir, 'o.safetensors')], io)).toBe(2);
    expect(io.err).toMatch(/does not exist/);

    // the pytorch-ood map on a timm file: q/k/v are missing
    const wrong = await convert('vit_small_timm.pth', 'pytorch-ood-vit');
    expect(wrong.code).toBe(0); // names it does not know are kept; the model's strict load then names them
    const m = smallVit();
    try {
      expect(() => m.loadStateDict(stateOf(wrong.file))).toThrow(/Missing key\(s\).*Unexpected key\(s\)/s);
    } finally {
      m.dispose();
    }

    await expect(convertMain([fixturePath('resnet_basic.pth'), join(dir, 'o.safetensors'), '--map', 'nope'], capture())).rejects.toThrow(UsageError);
    await expect(convertMain([fixturePath('resnet_basic.pth'), join(dir, 'o.bin')], capture())).rejects.toThrow(/OUT must end in \.safetensors/);
    await expect(convertMain([fixturePath('resnet_basic.pth')], capture())).rejects.toThrow(/expected IN and OUT/);
  });

  it('--pretrained / --generator read a .pth of plain tensors through the same safe reader (issue 14, item 9)', async () => {
    const m = new ResNet('basic', [2, 1, 1, 1], { numClasses: 7, baseWidth: 4 });
    const v = smallVit();
    try {
      await loadUserWeights(fixturePath('resnet_basic_legacy.pth'), m, '--pretrained');
      expect(Array.from(await read(m.fc.weight))).toEqual(Array.from(res.state.get('fc.weight')!.data as Float32Array, Number));
      await expect(loadUserWeights(fixturePath('not_a_state_dict.pth'), m, '--pretrained')).rejects.toThrow(/PyTorch pickle but is not a state dict.*posix\.getcwd.*goe convert/);
      // timm's names in a torchvision-layout model: the hint names goe convert --map
      await expect(loadUserWeights(fixturePath('vit_small_timm.pth'), v, '--pretrained')).rejects.toThrow(ExperimentInputError);
      await expect(loadUserWeights(fixturePath('vit_small_timm.pth'), v, '--pretrained')).rejects.toThrow(/does not fit the model.*goe convert --map/);
    } finally {
      m.dispose();
      v.dispose();
    }
  });
});
