/** The paper's experiments as configurations, and the runner that executes one into a run folder. */
export { EXPERIMENTS, FMNIST, IMAGES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, NEWSGROUPS, SMOKE, SMOKE_TEXT, experimentConfig, oeRepoFinetune, type ExperimentConfig, type DataConfig, type ModelConfig, type OutlierConfig, type OodConfig, type PhaseConfig, type FinetuneConfig, type OptimizerConfig, type ScheduleConfig, type WordLmConfig, type BigGANConfig } from './config.ts';
export { runExperiment, openExperimentInputs, isInputError, userImagesModel, ExperimentInputError, type RunOptions, type ExperimentResult, type PhaseSummary, type ExperimentInputs } from './runner.ts';
export { syntheticImages, syntheticTexts } from './synthetic.ts';
