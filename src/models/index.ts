/** The models of the paper, with PyTorch's parameter names (checkpoints map one-to-one). */
export { WideResNet, BasicBlock, NetworkBlock, wrn40x2, type WideResNetOptions } from './wideresnet.ts';
export { GRUClassifier, type GRUClassifierOptions } from './gru-classifier.ts';
export {
  TransformerModel, TransformerEncoder, PositionalEncoding as WordLMPositionalEncoding, sampleWords,
  type TransformerModelOptions, type SampleWordsOptions,
} from './transformer-lm.ts';
export { multinomial, gumbel, type MultinomialOptions } from './sampling.ts';
export {
  Generator as BigGANGenerator, Discriminator as BigGANDiscriminator, hingeLossD, hingeLossG, sampleLatent, generate as generateImages, toUint8,
  imagesToUint8, sampleOutliers, ClassSampler, type GeneratorOptions as BigGANGeneratorOptions,
  type DiscriminatorOptions as BigGANDiscriminatorOptions, type LatentOptions, type SampleOutliersOptions,
} from './biggan.ts';
export { SNConv2d, SNLinear, SNEmbedding, CCBN, BigGANBN, GBlock, DBlock, snWeight, BIGGAN_SN_EPS } from './biggan-layers.ts';
export { BigGANTrainer, trainBigGAN, CIFAR_TRAIN_CONFIG, BIGGAN_CHECKPOINT_FORMAT, type BigGANTrainConfig, type BigGANStepLosses, type StepLatents, type TrainLoopOptions } from './biggan-train.ts';
export { saveOutliersNpz } from './biggan-npz.ts';
export {
  VisionTransformer, ViTEncoder, ViTEncoderBlock, ViTEncoderLayers, ViTMLPBlock, ViTHeads, vitB16, VIT_PRESETS, type ViTOptions,
} from './vit.ts';
export {
  ResNet, ResNetBasicBlock, ResNetBottleneck, resnet, resnet18, resnet50, resnet101, RESNET_PRESETS, type ResNetOptions, type ResNetBlockKind,
} from './resnet.ts';
export { CHECKPOINT_MAPS, KeyMapError, torchvisionToTimmName, type MapTensor, type StateDictMap } from './checkpoint-maps.ts';
export {
  BigGANDeep, BigGANDeepGenerator, BigGANBatchNorm, GenBlock as BigGANDeepGenBlock, SelfAttn as BigGANDeepSelfAttn, bigGANDeepConfig, checkBigGANDeepConfig,
  truncationRows, truncatedNoise, BIGGAN_DEEP_128, BIGGAN_DEEP_256, BIGGAN_DEEP_512, BIGGAN_DEEP_TINY, BIGGAN_DEEP_CONFIGS,
  type BigGANDeepConfig, type BigGANDeepLayer,
} from './biggan-deep.ts';
