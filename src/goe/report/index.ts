/**
 * Pictures and saved scores of experiment runs: image grids (PNG, sharp), score histograms and
 * ROC curves (SVG by Vega-Lite, PNG by sharp), per-sample scores (.npz), and `writeRunFigures`,
 * which writes all of them for one evaluated model and returns a markdown snippet for results.md.
 * Node only (sharp, the file system).
 */
export { imageGridPng, imagePanelsPng, realVsOutliersPng, sampleImages, LABEL_HEIGHT, type ImageBatch, type GridOptions, type Panel, type SampleImagesOptions } from './image-grid.ts';
export {
  rocCurve, rocFromGroups, rocCurveSvg, scoreHistogramSvg, histogram, thinPolyline, vegaLiteSvg, svgToPng,
  AUROC_DECIMALS, IN_COLOUR, OOD_COLOUR, PALETTE, type RocCurve, type ScoreSets, type ChartOptions,
} from './charts.ts';
export { writeScoresNpz, readScoresNpz, scoresNpzArrays, scoreKey, setSlug, IN_DISTRIBUTION_KEY, type ScoresIndex, type ScoresIndexEntry } from './scores-file.ts';
export { writeRunFigures, type RunFiguresInput, type RunFigures } from './run-figures.ts';
