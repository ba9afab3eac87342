/** The models of the paper, with PyTorch's parameter names (checkpoints map one-to-one). */
export { WideResNet, BasicBlock, NetworkBlock, wrn40x2, type WideResNetOptions } from './wideresnet.ts';
export { GRUClassifier, type GRUClassifierOptions } from './gru-classifier.ts';
export {
  TransformerModel, TransformerEncoder, PositionalEncoding as WordLMPositionalEncoding, sampleWords,
  type TransformerModelOptions, type SampleWordsOptions,
} from './transformer-lm.ts';
export { multinomial, gumbel, type MultinomialOptions } from './sampling.ts';
