/** Training (supervised and Outlier Exposure), evaluation with the logit detectors, and reports. */
export { trainLoop, type Classifier, type TrainLoopOptions, type TrainLoopResult, type LossRecord } from './loop.ts';
export { scoreSet, scoreRun, evaluateScores, evaluateDetectors, DETECTORS, type DetectorName, type ScoreOptions, type SetScores, type EvalSet, type EvaluationResult, type NamedScores, type RunScores } from './evaluate.ts';
export { writeReports, reportMarkdown, reportCsv, reportJson, type ExperimentReport, type VariantReport } from './report.ts';
export { fileLogger, formatDuration, type LogFn } from './log.ts';
export { trainWordLm, wordCorpus, batchify, type WordLmOptions, type WordCorpus } from './word-lm.ts';
export { trainBigGANOn, type BigGANTrainOptions } from './biggan.ts';
