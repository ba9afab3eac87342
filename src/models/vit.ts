/**
 * Vision Transformer (Dosovitskiy et al.) with torchvision's module tree and state_dict names
 * (torchvision 0.14 models/vision_transformer.py), so torchvision's `vit_b_16` checkpoints load
 * one-to-one and timm's / pytorch-ood's load through the key maps of vit-keymaps.ts:
 *
 *   conv_proj                                   Conv2d(3, hidden, patch, stride patch)
 *   class_token                                 [1, 1, hidden]
 *   encoder.pos_embedding                       [1, (image / patch)^2 + 1, hidden]
 *   encoder.layers.encoder_layer_{i}.ln_1       LayerNorm(hidden, eps 1e-6)
 *   encoder.layers.encoder_layer_{i}.self_attention   nn.MultiheadAttention(batch_first):
 *                                               in_proj_weight [3 hidden, hidden], in_proj_bias,
 *                                               out_proj.{weight,bias}
 *   encoder.layers.encoder_layer_{i}.ln_2
 *   encoder.layers.encoder_layer_{i}.mlp.0 / mlp.3    Linear(hidden, mlp) / Linear(mlp, hidden)
 *                                               (torchvision's MLP: 0 Linear, 1 GELU, 2 Dropout,
 *                                               3 Linear, 4 Dropout)
 *   encoder.ln                                  final LayerNorm
 *   heads.head                                  Linear(hidden, classes)
 *
 * forward(x [N, 3, H, W]): patches = conv_proj(x) flattened to [N, P, hidden]; the class token
 * prepended; + pos_embedding; dropout; pre-norm blocks x = x + drop(attn(ln_1(x))),
 * x = x + mlp(ln_2(x)) with exact (erf) GELU; encoder.ln; heads.head on the class token.
 *
 * Initialisation as torchvision: conv_proj weight ~ N(0, 1 / fan_in) (torchvision truncates at
 * +-2, i.e. > 50 standard deviations here: the same draw), bias 0; class token 0; positions
 * N(0, 0.02^2); MLP weights xavier_uniform, biases N(0, 1e-6^2); attention as nn.MultiheadAttention;
 * the head all zeros.
 *
 * `layerNormEps` is 1e-6 (torchvision, timm); pytorch-ood's VisionTransformer (the paper's
 * notebook, asyml/vision-transformer-pytorch's layout) uses nn.LayerNorm's default 1e-5: its preset
 * `vit_b_16_pytorch_ood` sets that.
 */
import {
  OpError, Module, Linear, LayerNorm, Conv2d, Dropout, MultiheadAttention, Parameter, type Tensor, type UnaryModule,
  add, gelu, reshape, permute, broadcastTo, concat, select, normal_, zeros_, xavierUniform_,
} from '../engine/api.ts';

export interface ViTOptions {
  imageSize?: number;
  patchSize?: number;
  numLayers?: number;
  numHeads?: number;
  hiddenDim?: number;
  mlpDim?: number;
  numClasses?: number;
  /** Dropout after the positions, attention and MLP outputs (torchvision's `dropout`, default 0). */
  dropout?: number;
  /** Dropout inside the attention (torchvision's `attention_dropout`, default 0). */
  attentionDropout?: number;
  /** 1e-6 as torchvision and timm; 1e-5 for pytorch-ood's VisionTransformer. */
  layerNormEps?: number;
  /** Input channels (3). */
  inChannels?: number;
}

/** torchvision's MLPBlock: 0 Linear, (1 GELU), 2 Dropout, 3 Linear, 4 Dropout. */
export class ViTMLPBlock extends Module implements UnaryModule {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly drop1: Dropout;
  readonly drop2: Dropout;

  constructor(hidden: number, mlpDim: number, dropout: number) {
    super();
    this.fc1 = this.registerModule('0', new Linear(hidden, mlpDim));
    this.drop1 = this.registerModule('2', new Dropout(dropout));
    this.fc2 = this.registerModule('3', new Linear(mlpDim, hidden));
    this.drop2 = this.registerModule('4', new Dropout(dropout));
    for (const l of [this.fc1, this.fc2]) {
      xavierUniform_(l.weight);
      normal_(l.bias!, 0, 1e-6);
    }
  }

  forward(x: Tensor): Tensor {
    const h = this.fc1.forward(x);
    const a = gelu(h);
    h.dispose();
    const d = this.drop1.forward(a);
    if (d !== a) a.dispose();
    const o = this.fc2.forward(d);
    d.dispose();
    const r = this.drop2.forward(o);
    if (r !== o) o.dispose();
    return r;
  }

}

/** torchvision's EncoderBlock (pre-norm). */
export class ViTEncoderBlock extends Module implements UnaryModule {
  readonly ln_1: LayerNorm;
  readonly self_attention: MultiheadAttention;
  readonly ln_2: LayerNorm;
  readonly mlp: ViTMLPBlock;
  readonly drop: Dropout;

  constructor(numHeads: number, hidden: number, mlpDim: number, dropout: number, attentionDropout: number, eps: number) {
    super();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(hidden, eps));
    this.self_attention = this.registerModule('self_attention', new MultiheadAttention(hidden, numHeads, { dropout: attentionDropout, batchFirst: true }));
    this.drop = this.registerModule('dropout', new Dropout(dropout));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(hidden, eps));
    this.mlp = this.registerModule('mlp', new ViTMLPBlock(hidden, mlpDim, dropout));
  }

  forward(x: Tensor): Tensor {
    const n1 = this.ln_1.forward(x);
    const a = this.self_attention.forward(n1, n1, n1);
    n1.dispose();
    const ad = this.drop.forward(a);
    if (ad !== a) a.dispose();
    const x1 = add(ad, x);
    ad.dispose();
    const n2 = this.ln_2.forward(x1);
    const m = this.mlp.forward(n2);
    n2.dispose();
    const out = add(x1, m);
    x1.dispose();
    m.dispose();
    return out;
  }

}

/** The blocks, named encoder_layer_0, encoder_layer_1, ... as torchvision's OrderedDict. */
export class ViTEncoderLayers extends Module implements UnaryModule {
  readonly blocks: ViTEncoderBlock[];

  constructor(blocks: ViTEncoderBlock[]) {
    super();
    this.blocks = blocks;
    blocks.forEach((b, i) => this.registerModule(`encoder_layer_${i}`, b));
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const b of this.blocks) {
      const next = b.forward(h);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }
}

/** torchvision's Encoder: pos_embedding, dropout, layers, ln. */
export class ViTEncoder extends Module implements UnaryModule {
  readonly pos_embedding: Parameter;
  readonly layers: ViTEncoderLayers;
  readonly ln: LayerNorm;
  readonly drop: Dropout;

  constructor(seqLength: number, o: Required<ViTOptions>) {
    super();
    this.pos_embedding = this.registerParameter('pos_embedding', Parameter.empty([1, seqLength, o.hiddenDim]));
    normal_(this.pos_embedding, 0, 0.02);
    this.drop = this.registerModule('dropout', new Dropout(o.dropout));
    const blocks: ViTEncoderBlock[] = [];
    for (let i = 0; i < o.numLayers; i++) blocks.push(new ViTEncoderBlock(o.numHeads, o.hiddenDim, o.mlpDim, o.dropout, o.attentionDropout, o.layerNormEps));
    this.layers = this.registerModule('layers', new ViTEncoderLayers(blocks));
    this.ln = this.registerModule('ln', new LayerNorm(o.hiddenDim, o.layerNormEps));
  }

  forward(x: Tensor): Tensor {
    const p = add(x, this.pos_embedding);
    const d = this.drop.forward(p);
    if (d !== p) p.dispose();
    const h = this.layers.forward(d);
    d.dispose();
    const out = this.ln.forward(h);
    h.dispose();
    return out;
  }

}

/** heads: a container with one child, `head` (torchvision without representation_size). */
export class ViTHeads extends Module implements UnaryModule {
  readonly head: Linear;
  constructor(hidden: number, classes: number) {
    super();
    this.head = this.registerModule('head', new Linear(hidden, classes));
    zeros_(this.head.weight);
    zeros_(this.head.bias!);
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(x);
  }
}

export const VIT_PRESETS = {
  /** torchvision vit_b_16 / timm vit_base_patch16_224: 224 px, patch 16, 12 x 12 heads, 768, 3072. */
  vit_b_16: { imageSize: 224, patchSize: 16, numLayers: 12, numHeads: 12, hiddenDim: 768, mlpDim: 3072, numClasses: 1000, layerNormEps: 1e-6 },
  /** pytorch-ood's VisionTransformer 'b16-im21k-224' (the paper's notebook): LayerNorm eps 1e-5. */
  vit_b_16_pytorch_ood: { imageSize: 224, patchSize: 16, numLayers: 12, numHeads: 12, hiddenDim: 768, mlpDim: 3072, numClasses: 1000, layerNormEps: 1e-5 },
} as const satisfies Record<string, ViTOptions>;

export class VisionTransformer extends Module implements UnaryModule {
  readonly options: Required<ViTOptions>;
  readonly seqLength: number;
  readonly conv_proj: Conv2d;
  readonly class_token: Parameter;
  readonly encoder: ViTEncoder;
  readonly heads: ViTHeads;

  constructor(opts: ViTOptions = {}) {
    super();
    const o: Required<ViTOptions> = {
      ...VIT_PRESETS.vit_b_16,
      dropout: 0,
      attentionDropout: 0,
      inChannels: 3,
      ...opts,
    };
    for (const k of ['imageSize', 'patchSize', 'numLayers', 'numHeads', 'hiddenDim', 'mlpDim', 'numClasses', 'inChannels'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new OpError('VisionTransformer', `${k} must be a positive integer, got ${o[k]}`);
    }
    if (o.imageSize % o.patchSize !== 0) throw new OpError('VisionTransformer', `imageSize ${o.imageSize} must be divisible by patchSize ${o.patchSize}`);
    if (o.hiddenDim % o.numHeads !== 0) throw new OpError('VisionTransformer', `hiddenDim ${o.hiddenDim} must be divisible by numHeads ${o.numHeads}`);
    for (const k of ['dropout', 'attentionDropout'] as const) {
      if (!(o[k] >= 0 && o[k] < 1)) throw new OpError('VisionTransformer', `${k} must be in [0, 1), got ${o[k]}`);
    }
    this.options = o;
    this.seqLength = (o.imageSize / o.patchSize) ** 2 + 1;
    const p = o.patchSize;
    this.conv_proj = this.registerModule('conv_proj', new Conv2d(o.inChannels, o.hiddenDim, p, { stride: p }));
    normal_(this.conv_proj.weight, 0, Math.sqrt(1 / (o.inChannels * p * p)));
    zeros_(this.conv_proj.bias!);
    this.class_token = this.registerParameter('class_token', Parameter.empty([1, 1, o.hiddenDim]));
    zeros_(this.class_token);
    this.encoder = this.registerModule('encoder', new ViTEncoder(this.seqLength, o));
    this.heads = this.registerModule('heads', new ViTHeads(o.hiddenDim, o.numClasses));
  }

  /** torchvision's _process_input: [N, C, H, W] -> patch embeddings [N, P, hidden]. */
  processInput(x: Tensor): Tensor {
    const o = this.options;
    if (x.rank !== 4 || x.shape[1] !== o.inChannels || x.shape[2] !== o.imageSize || x.shape[3] !== o.imageSize) {
      throw new OpError('VisionTransformer', `input must be [N, ${o.inChannels}, ${o.imageSize}, ${o.imageSize}], got [${x.shape.join(', ')}]`);
    }
    const n = x.shape[0];
    const c = this.conv_proj.forward(x); // [N, hidden, gh, gw]
    const r = reshape(c, [n, o.hiddenDim, this.seqLength - 1]);
    c.dispose();
    const t = permute(r, [0, 2, 1]);
    r.dispose();
    return t;
  }

  /** The encoder's output at the class token [N, hidden] (the head's input). */
  features(x: Tensor): Tensor {
    const n = x.shape[0];
    const patches = this.processInput(x);
    const cls = broadcastTo(this.class_token, [n, 1, this.options.hiddenDim]);
    const seq = concat([cls, patches], 1);
    cls.dispose();
    patches.dispose();
    const h = this.encoder.forward(seq);
    seq.dispose();
    const f = select(h, 1, 0);
    h.dispose();
    return f;
  }

  /** Logits [N, classes]. */
  forward(x: Tensor): Tensor {
    const f = this.features(x);
    const y = this.heads.forward(f);
    f.dispose();
    return y;
  }
}

/** torchvision's vit_b_16 architecture (random weights; load a checkpoint converted by `goe convert`). */
export function vitB16(opts: Omit<ViTOptions, 'imageSize' | 'patchSize' | 'numLayers' | 'numHeads' | 'hiddenDim' | 'mlpDim'> = {}): VisionTransformer {
  return new VisionTransformer({ ...VIT_PRESETS.vit_b_16, ...opts });
}
