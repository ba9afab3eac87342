/**
 * An error in a score file, naming the file and (for text formats) the 1-based line, in the
 * compiler-style form `file:line: message` that editors and terminals make clickable.
 */
export class ScoreFileError extends Error {
  readonly source: string;
  readonly line: number | undefined;

  constructor(source: string, message: string, line?: number) {
    super(line === undefined ? `${source}: ${message}` : `${source}:${line}: ${message}`);
    this.name = 'ScoreFileError';
    this.source = source;
    this.line = line;
  }
}
