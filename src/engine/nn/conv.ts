/**
 * Convolution, pooling and upsampling layers with PyTorch's names, shapes and default
 * initialisation (torch.nn.Conv2d, AvgPool2d, MaxPool2d, Upsample(mode='nearest')).
 */
import type { Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { conv2d, type Pair, type ConvActivation } from '../ops/conv.ts';
import { avgPool2d, maxPool2d, upsampleNearest2d, globalAvgPool2d } from '../ops/pool.ts';
import { Module, type UnaryModule } from './module.ts';
import { Parameter } from './parameter.ts';
import { kaimingUniform_, uniform_, calculateFanInAndFanOut } from './init.ts';

export interface Conv2dModuleOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  /** An activation fused into the convolution's epilogue (not part of PyTorch's Conv2d). */
  activation?: ConvActivation;
  negativeSlope?: number;
}

function pairOf(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** torch.nn.Conv2d: weight [out, in/groups, kH, kW] ~ kaiming_uniform(a=sqrt(5)), bias ~ U(+-1/sqrt(fan_in)). */
export class Conv2d extends Module implements UnaryModule {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly opts: Conv2dModuleOptions;
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dModuleOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    const [kh, kw] = pairOf(kernelSize);
    for (const [n, v] of [['inChannels', inChannels], ['outChannels', outChannels], ['kernel height', kh], ['kernel width', kw], ['groups', groups]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OpError('Conv2d', `${n} must be a positive integer, got ${v}`);
    }
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new OpError('Conv2d', `inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${groups})`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = [kh, kw];
    this.opts = opts;
    this.weight = this.registerParameter('weight', Parameter.empty([outChannels, inChannels / groups, kh, kw]));
    this.bias = this.registerParameter('bias', (opts.bias ?? true) ? Parameter.empty([outChannels]) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const { fanIn } = calculateFanInAndFanOut(this.weight.shape);
      const bound = 1 / Math.sqrt(fanIn);
      uniform_(this.bias, -bound, bound);
    }
  }

  forward(x: Tensor): Tensor {
    const o = this.opts;
    return conv2d(x, this.weight, this.bias, {
      stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups,
      activation: o.activation ?? null, negativeSlope: o.negativeSlope,
    });
  }
}

export class AvgPool2d extends Module implements UnaryModule {
  readonly kernelSize: Pair;
  readonly stride?: Pair;
  readonly padding: Pair;
  readonly countIncludePad: boolean;
  constructor(kernelSize: Pair, stride?: Pair, padding: Pair = 0, countIncludePad = true) {
    super();
    this.kernelSize = kernelSize;
    this.stride = stride;
    this.padding = padding;
    this.countIncludePad = countIncludePad;
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding, countIncludePad: this.countIncludePad });
  }
}

export class MaxPool2d extends Module implements UnaryModule {
  readonly kernelSize: Pair;
  readonly stride?: Pair;
  readonly padding: Pair;
  constructor(kernelSize: Pair, stride?: Pair, padding: Pair = 0) {
    super();
    this.kernelSize = kernelSize;
    this.stride = stride;
    this.padding = padding;
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}

/** Global average pooling to [N, C, 1, 1] (torch.nn.AdaptiveAvgPool2d(1)). */
export class GlobalAvgPool2d extends Module implements UnaryModule {
  forward(x: Tensor): Tensor {
    return globalAvgPool2d(x, true);
  }
}

/** torch.nn.Upsample(scale_factor=s, mode='nearest') for an integer factor. */
export class UpsampleNearest2d extends Module implements UnaryModule {
  readonly scaleFactor: number;
  constructor(scaleFactor = 2) {
    super();
    if (!Number.isInteger(scaleFactor) || scaleFactor < 1) throw new OpError('UpsampleNearest2d', `scale factor must be a positive integer, got ${scaleFactor}`);
    this.scaleFactor = scaleFactor;
  }
  forward(x: Tensor): Tensor {
    return upsampleNearest2d(x, this.scaleFactor);
  }
}
