/**
 * `goe metrics --in FILE --out FILE`: the paper's four OOD metrics from two score files.
 *
 * Score files hold OUTLIER scores (higher = more OOD), one number per line (blank lines
 * ignored), or a `.json` array, or a 1-D float32/float64 little-endian `.npy` array, or one array
 * of an `.npz` named `FILE.npz:KEY` (experiment runs save `scores.npz`). Bad input
 * (empty file, non-numeric line, NaN / infinite score) is reported on stderr as `file:line: ...`
 * with exit code 2.
 *
 * `--json` prints exactly one line and nothing else on stdout:
 * `{"AUROC":..,"AUPR-IN":..,"AUPR-OUT":..,"FPR95TPR":..,"n_in":..,"n_out":..}` with fractions in
 * [0, 1]; when `--convention` or `--pr-rule` is not the default, `"convention"` and `"pr_rule"`
 * keys are added so the line says what it measured.
 */
import { parseArgs } from 'node:util';
import {
  computeOodMetrics,
  DEFAULT_CONVENTION,
  DEFAULT_PR_RULE,
  OOD_CONVENTIONS,
  PR_RULES,
  type OodConvention,
  type OodMetricResult,
  type PrRule,
} from '../goe/metrics/ood-metrics.ts';
import { readScoreFile } from '../goe/metrics/read-score-file.ts';
import { ScoreFileError } from '../goe/metrics/score-file-error.ts';
import { formatMarkdownTable } from '../goe/metrics/tables.ts';
import { EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

const METRICS_USAGE = `Usage: goe metrics --in FILE --out FILE [--json] [--convention C] [--pr-rule R]

Computes AUROC, AUPR-IN, AUPR-OUT and FPR95TPR from outlier scores (higher = more OOD).

  --in FILE           scores of in-distribution samples
  --out FILE          scores of out-of-distribution samples
                      (FILE: one number per line, or a .json array, or a 1-D float32/float64 .npy,
                      or one array of an .npz as FILE.npz:KEY, e.g. a run's scores.npz:in__MSP)
  --json              print one JSON line of fractions instead of the table
  --convention C      ood-positive (default, pytorch-ood: OOD is the positive class)
                      in-positive (Hendrycks' OE code: in-distribution positive, scores negated;
                      changes FPR95TPR to the OOD acceptance rate at 95% in-distribution recall)
  --pr-rule R         step (default: average precision, as scikit-learn)
                      trapezoid (pytorch-ood: trapezoid over the PR curve from (0, 1))
  -h, --help          show this help
`;

export function metricsMain(args: string[], io: CliIo): number {
  const options = parseMetricsArgs(args);
  if (options.help) {
    io.stdout(METRICS_USAGE);
    return EXIT_OK;
  }
  let inScores: Float64Array;
  let oodScores: Float64Array;
  try {
    inScores = readScoreFile(options.inFile);
    oodScores = readScoreFile(options.outFile);
  } catch (error) {
    if (!(error instanceof ScoreFileError)) throw error;
    io.stderr(`goe metrics: error: ${error.message}\n`);
    return EXIT_USAGE;
  }
  const result = computeOodMetrics(inScores, oodScores, { convention: options.convention, prRule: options.prRule });
  io.stdout(options.json ? metricsJsonLine(result) : metricsHumanReport(result, options.inFile, options.outFile));
  return EXIT_OK;
}

interface MetricsArgs {
  help: boolean;
  inFile: string;
  outFile: string;
  json: boolean;
  convention: OodConvention;
  prRule: PrRule;
}

function parseMetricsArgs(args: string[]): MetricsArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        in: { type: 'string' },
        out: { type: 'string' },
        json: { type: 'boolean', default: false },
        convention: { type: 'string', default: DEFAULT_CONVENTION },
        'pr-rule': { type: 'string', default: DEFAULT_PR_RULE },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return { help: true, inFile: '', outFile: '', json: false, convention: DEFAULT_CONVENTION, prRule: DEFAULT_PR_RULE };
  if (values.in === undefined || values.out === undefined) {
    throw new UsageError(`missing ${[values.in === undefined ? '--in FILE' : '', values.out === undefined ? '--out FILE' : ''].filter(Boolean).join(' and ')}`);
  }
  const convention = values.convention as OodConvention;
  if (!OOD_CONVENTIONS.includes(convention)) {
    throw new UsageError(`--convention must be one of ${OOD_CONVENTIONS.join(', ')}, not "${values.convention}"`);
  }
  const prRule = values['pr-rule'] as PrRule;
  if (!PR_RULES.includes(prRule)) {
    throw new UsageError(`--pr-rule must be one of ${PR_RULES.join(', ')}, not "${values['pr-rule']}"`);
  }
  return { help: false, inFile: values.in, outFile: values.out, json: values.json, convention, prRule };
}

/** The `--json` line: the six keys for the default convention, plus the options otherwise. */
export function metricsJsonLine(result: OodMetricResult): string {
  const line: Record<string, number | string> = {
    AUROC: result.auroc,
    'AUPR-IN': result.auprIn,
    'AUPR-OUT': result.auprOut,
    FPR95TPR: result.fpr95tpr,
    n_in: result.nIn,
    n_out: result.nOut,
  };
  if (result.convention !== DEFAULT_CONVENTION || result.prRule !== DEFAULT_PR_RULE) {
    line.convention = result.convention;
    line.pr_rule = result.prRule;
  }
  return JSON.stringify(line) + '\n';
}

function metricsHumanReport(result: OodMetricResult, inFile: string, outFile: string): string {
  return (
    `OOD metrics: ${result.nIn} in-distribution scores (${inFile}) vs ${result.nOut} OOD scores (${outFile})\n\n` +
    formatMarkdownTable([result])
  );
}

export const metricsCommand: Subcommand = {
  name: 'metrics',
  summary: 'AUROC, AUPR-IN, AUPR-OUT, FPR95TPR from files of in-distribution and OOD scores',
  usage: METRICS_USAGE,
  run: metricsMain,
};
