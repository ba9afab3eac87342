/**
 * Key maps from public checkpoints' state-dict names to this project's models (`goe convert --map`).
 * Each takes and returns a state dict of host tensors; values are moved, reshaped or transposed
 * where the layouts differ, never recomputed.
 *
 * torchvision-vit      torchvision vit_b_16 (vit_b_16-c867db91.pth): VisionTransformer's names; that file
 *                      predates torchvision 0.14's MLP and names the MLP's layers mlp.linear_1 /
 *                      mlp.linear_2, which become mlp.0 / mlp.3 (as MLPBlock._load_from_state_dict
 *                      renames them for state dicts of version < 2).
 * timm-vit             timm vit_base_patch16_224 (blocks.N.*) -> torchvision names:
 *                        patch_embed.proj -> conv_proj        cls_token -> class_token
 *                        pos_embed -> encoder.pos_embedding   norm -> encoder.ln      head -> heads.head
 *                        blocks.N.norm1 / norm2 -> encoder.layers.encoder_layer_N.ln_1 / ln_2
 *                        blocks.N.attn.qkv.{weight,bias} -> ...self_attention.in_proj_{weight,bias}
 *                          (timm packs q, k, v in that order, as nn.MultiheadAttention)
 *                        blocks.N.attn.proj -> ...self_attention.out_proj
 *                        blocks.N.mlp.fc1 / fc2 -> ...mlp.0 / mlp.3
 * pytorch-ood-vit      pytorch-ood's VisionTransformer ('b16-im21k-224', the paper's notebook; the
 *                      layout of asyml/vision-transformer-pytorch) -> torchvision names:
 *                        embedding -> conv_proj   cls_token -> class_token   classifier -> heads.head
 *                        transformer.pos_embedding.pos_embedding -> encoder.pos_embedding
 *                        transformer.norm -> encoder.ln
 *                        transformer.encoder_layers.N.norm1 / norm2 / mlp.fc1 / mlp.fc2 -> ln_1 / ln_2 / mlp.0 / mlp.3
 *                        attn.query/key/value.weight [E, H, D] (x . W over E) -> rows of in_proj_weight
 *                          [3E, E] as W.reshape(E, E)^T; their biases [H, D] -> in_proj_bias
 *                        attn.out.weight [H, D, E] -> out_proj.weight = W.reshape(E, E)^T
 *                      Its LayerNorms use eps 1e-5: load into VIT_PRESETS.vit_b_16_pytorch_ood.
 * torchvision-resnet   torchvision resnet18/50/101: identity (ResNet's names).
 * biggan-port          huggingface pytorch-pretrained-BigGAN (biggan-deep-128/256): identity (the
 *                      BigGAN-deep generator keeps the port's names).
 * none                 identity.
 */
export interface MapTensor {
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export type StateDictMap = (sd: ReadonlyMap<string, MapTensor>) => Map<string, MapTensor>;

export class KeyMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyMapError';
  }
}

const identity: StateDictMap = (sd) => new Map(sd);

const torchvisionVitName = renamer([
  [/\.mlp\.linear_1\./, '.mlp.0.'],
  [/\.mlp\.linear_2\./, '.mlp.3.'],
]);

const torchvisionVit: StateDictMap = (sd) => new Map([...sd].map(([k, v]) => [torchvisionVitName(k), v]));

/** Renames by an ordered list of [pattern, replacement]; a key no rule matches is kept as it is. */
function renamer(rules: readonly [RegExp, string][]): (k: string) => string {
  return (k) => {
    for (const [re, to] of rules) if (re.test(k)) return k.replace(re, to);
    return k;
  };
}

const timmName = renamer([
  [/^patch_embed\.proj\./, 'conv_proj.'],
  [/^cls_token$/, 'class_token'],
  [/^pos_embed$/, 'encoder.pos_embedding'],
  [/^norm\./, 'encoder.ln.'],
  [/^head\./, 'heads.head.'],
  [/^blocks\.(\d+)\.norm1\./, 'encoder.layers.encoder_layer_$1.ln_1.'],
  [/^blocks\.(\d+)\.norm2\./, 'encoder.layers.encoder_layer_$1.ln_2.'],
  [/^blocks\.(\d+)\.attn\.qkv\.weight$/, 'encoder.layers.encoder_layer_$1.self_attention.in_proj_weight'],
  [/^blocks\.(\d+)\.attn\.qkv\.bias$/, 'encoder.layers.encoder_layer_$1.self_attention.in_proj_bias'],
  [/^blocks\.(\d+)\.attn\.proj\./, 'encoder.layers.encoder_layer_$1.self_attention.out_proj.'],
  [/^blocks\.(\d+)\.mlp\.fc1\./, 'encoder.layers.encoder_layer_$1.mlp.0.'],
  [/^blocks\.(\d+)\.mlp\.fc2\./, 'encoder.layers.encoder_layer_$1.mlp.3.'],
]);

const timmVit: StateDictMap = (sd) => new Map([...sd].map(([k, v]) => [timmName(k), v]));

/** The inverse rename (torchvision -> timm), for checking that the map round-trips. */
export function torchvisionToTimmName(k: string): string {
  const rules: [RegExp, string][] = [
    [/^conv_proj\./, 'patch_embed.proj.'],
    [/^class_token$/, 'cls_token'],
    [/^encoder\.pos_embedding$/, 'pos_embed'],
    [/^encoder\.ln\./, 'norm.'],
    [/^heads\.head\./, 'head.'],
    [/^encoder\.layers\.encoder_layer_(\d+)\.ln_1\./, 'blocks.$1.norm1.'],
    [/^encoder\.layers\.encoder_layer_(\d+)\.ln_2\./, 'blocks.$1.norm2.'],
    [/^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_weight$/, 'blocks.$1.attn.qkv.weight'],
    [/^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_bias$/, 'blocks.$1.attn.qkv.bias'],
    [/^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\./, 'blocks.$1.attn.proj.'],
    [/^encoder\.layers\.encoder_layer_(\d+)\.mlp\.0\./, 'blocks.$1.mlp.fc1.'],
    [/^encoder\.layers\.encoder_layer_(\d+)\.mlp\.3\./, 'blocks.$1.mlp.fc2.'],
  ];
  return renamer(rules)(k);
}

/** [R, C] row-major -> its transpose [C, R]. */
function transpose2d(data: Float32Array, R: number, C: number): Float32Array {
  const out = new Float32Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = data[r * C + c]!;
  return out;
}

function f32(name: string, t: MapTensor): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new KeyMapError(`${name} is not a float tensor`);
  return t.data;
}

const oodName = renamer([
  [/^embedding\./, 'conv_proj.'],
  [/^cls_token$/, 'class_token'],
  [/^classifier\./, 'heads.head.'],
  [/^transformer\.pos_embedding\.pos_embedding$/, 'encoder.pos_embedding'],
  [/^transformer\.norm\./, 'encoder.ln.'],
  [/^transformer\.encoder_layers\.(\d+)\.norm1\./, 'encoder.layers.encoder_layer_$1.ln_1.'],
  [/^transformer\.encoder_layers\.(\d+)\.norm2\./, 'encoder.layers.encoder_layer_$1.ln_2.'],
  [/^transformer\.encoder_layers\.(\d+)\.mlp\.fc1\./, 'encoder.layers.encoder_layer_$1.mlp.0.'],
  [/^transformer\.encoder_layers\.(\d+)\.mlp\.fc2\./, 'encoder.layers.encoder_layer_$1.mlp.3.'],
]);

const pytorchOodVit: StateDictMap = (sd) => {
  const out = new Map<string, MapTensor>();
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', { w?: MapTensor; b?: MapTensor }>>>();
  for (const [k, v] of sd) {
    const m = /^transformer\.encoder_layers\.(\d+)\.attn\.(query|key|value|out)\.(weight|bias)$/.exec(k);
    if (!m) {
      out.set(oodName(k), v);
      continue;
    }
    const [, layer, proj, kind] = m as unknown as [string, string, 'query' | 'key' | 'value' | 'out', 'weight' | 'bias'];
    const pre = `encoder.layers.encoder_layer_${layer}.self_attention.`;
    if (proj === 'out') {
      if (kind === 'bias') out.set(`${pre}out_proj.bias`, v);
      else {
        const [H, D, E] = v.shape;
        if (v.shape.length !== 3) throw new KeyMapError(`${k} must be [heads, head_dim, E], got [${v.shape.join(', ')}]`);
        out.set(`${pre}out_proj.weight`, { shape: [E!, H! * D!], data: transpose2d(f32(k, v), H! * D!, E!) });
      }
      continue;
    }
    const entry = qkv.get(layer!) ?? {};
    const slot = entry[proj] ?? {};
    if (kind === 'weight') slot.w = v;
    else slot.b = v;
    entry[proj] = slot;
    qkv.set(layer!, entry);
  }
  for (const [layer, e] of qkv) {
    const pre = `encoder.layers.encoder_layer_${layer}.self_attention.`;
    const parts = (['query', 'key', 'value'] as const).map((p) => {
      const s = e[p];
      if (!s?.w || !s.b) throw new KeyMapError(`layer ${layer}: attn.${p}.weight and attn.${p}.bias are both needed`);
      if (s.w.shape.length !== 3) throw new KeyMapError(`layer ${layer}: attn.${p}.weight must be [E, heads, head_dim], got [${s.w.shape.join(', ')}]`);
      return s as { w: MapTensor; b: MapTensor };
    });
    const E = parts[0]!.w.shape[0]!;
    const F = parts[0]!.w.shape[1]! * parts[0]!.w.shape[2]!;
    const w = new Float32Array(3 * F * E);
    const b = new Float32Array(3 * F);
    parts.forEach((p, i) => {
      w.set(transpose2d(f32('attn weight', p.w), E, F), i * F * E);
      b.set(f32('attn bias', p.b), i * F);
    });
    out.set(`${pre}in_proj_weight`, { shape: [3 * F, E], data: w });
    out.set(`${pre}in_proj_bias`, { shape: [3 * F], data: b });
  }
  return out;
};

export const CHECKPOINT_MAPS: Readonly<Record<string, { summary: string; map: StateDictMap }>> = {
  'torchvision-vit': { summary: 'torchvision vit_b_16 (mlp.linear_1/2 of its released file -> mlp.0/3)', map: torchvisionVit },
  'timm-vit': { summary: "timm vit_base_patch16_224 -> torchvision's ViT names", map: timmVit },
  'pytorch-ood-vit': { summary: "pytorch-ood VisionTransformer ('b16-im21k-224') -> torchvision's ViT names (load with LayerNorm eps 1e-5)", map: pytorchOodVit },
  'torchvision-resnet': { summary: 'torchvision resnet18/50/101 (names kept)', map: identity },
  'biggan-port': { summary: 'huggingface pytorch-pretrained-BigGAN (names kept)', map: identity },
  none: { summary: 'names kept', map: identity },
};
