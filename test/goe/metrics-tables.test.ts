// Result tables: the paper's columns, percent with 2 decimals in markdown, fractions in CSV and
// JSON, and the convention stated in every format.
import { describe, expect, it } from 'vitest';
import { evaluateOodSets } from '../../src/goe/metrics/per-set.ts';
import { formatCsvTable, formatJsonTable, formatMarkdownTable, reportRows, type MetricsTableRow } from '../../src/goe/metrics/tables.ts';

// AUROC 0.75, AUPR-IN 5/6, AUPR-OUT 0.7, FPR95 0.5 (metrics.test.ts), and a separated set.
const report = evaluateOodSets([0.2, 0.5, 0.5, 0.1], { SVHN: [0.5, 0.9, 0.3], 'LSUN|crop': [1, 2] }, { detector: 'Energy' });

describe('formatMarkdownTable', () => {
  it('prints percentages with 2 decimals, detector and outlier-set columns, and the convention', () => {
    const text = formatMarkdownTable(reportRows(report));
    const lines = text.split('\n');
    expect(lines[0]).toBe('| Detector | Outlier set | AUROC | AUPR-IN | AUPR-OUT | FPR95TPR |');
    expect(lines[1]).toBe('| --- | --- | ---: | ---: | ---: | ---: |');
    expect(lines[2]).toBe('| Energy | SVHN | 75.00 | 83.33 | 70.00 | 50.00 |');
    expect(lines[3]).toBe('| Energy | LSUN\\|crop | 100.00 | 100.00 | 100.00 | 0.00 |');
    expect(lines[4]).toBe('| Energy | mean | 87.50 | 91.67 | 85.00 | 25.00 |');
    expect(lines[6]).toMatch(/^Values in %\. Convention ood-positive .*step rule/);
  });

  it('omits label columns nobody set, and states a non-default convention', () => {
    const rows: MetricsTableRow[] = [{ auroc: 0.5, auprIn: 0.6, auprOut: 0.4, fpr95tpr: 1 }];
    const text = formatMarkdownTable(rows, { convention: 'in-positive', prRule: 'trapezoid' });
    expect(text.split('\n')[0]).toBe('| AUROC | AUPR-IN | AUPR-OUT | FPR95TPR |');
    expect(text).toMatch(/Convention in-positive \(Hendrycks OE code\)/);
    expect(text).toMatch(/trapezoid rule/);
  });

  it('refuses to label rows with a convention they were not computed with', () => {
    expect(() => formatMarkdownTable(reportRows(report), { prRule: 'trapezoid' })).toThrow(/do not mix conventions/);
  });
});

describe('formatCsvTable', () => {
  it('has fractions at full precision, counts, and convention columns', () => {
    const lines = formatCsvTable(reportRows(report)).trimEnd().split('\n');
    expect(lines[0]).toBe('detector,outlier_set,AUROC,AUPR-IN,AUPR-OUT,FPR95TPR,n_in,n_out,convention,pr_rule');
    expect(lines[1]).toBe(`Energy,SVHN,0.75,${report.rows[0]!.auprIn},0.7,0.5,4,3,ood-positive,step`);
    expect(lines[3]).toBe(`Energy,mean,0.875,${report.mean.auprIn},0.85,0.25,4,5,ood-positive,step`);
  });

  it('quotes cells that need it', () => {
    const rows: MetricsTableRow[] = [{ outlierSet: 'a,"b"', auroc: 1, auprIn: 1, auprOut: 1, fpr95tpr: 0 }];
    expect(formatCsvTable(rows).split('\n')[1]).toBe('"a,""b""",1,1,1,0,ood-positive,step');
  });
});

describe('formatJsonTable', () => {
  it('carries the convention, a description and the rows with the paper column names', () => {
    const table = JSON.parse(formatJsonTable(reportRows(report)));
    expect(table.convention).toBe('ood-positive');
    expect(table.pr_rule).toBe('step');
    expect(table.units).toBe('fraction');
    expect(table.description).toMatch(/OOD is the positive class/);
    expect(table.rows).toHaveLength(3);
    expect(table.rows[0]).toEqual({
      detector: 'Energy',
      outlier_set: 'SVHN',
      AUROC: 0.75,
      'AUPR-IN': report.rows[0]!.auprIn, // 5/6 up to the last bit
      'AUPR-OUT': 0.7,
      FPR95TPR: 0.5,
      n_in: 4,
      n_out: 3,
    });
    expect(table.rows[2].outlier_set).toBe('mean');
  });
});
