/**
 * Errors raised by the data layer. Every reader names the file it was reading and what is
 * wrong with it, so a user can tell a truncated download from a wrong path from a bug.
 */
export class DataError extends Error {
  /** The file (or folder, or URL) the error is about, when there is one. */
  readonly file: string | undefined;

  constructor(message: string, file?: string, options?: ErrorOptions) {
    super(file === undefined ? message : `${file}: ${message}`, options);
    this.name = 'DataError';
    this.file = file;
  }

  /** Rebuild an error reported by a worker thread (its message already names the file). */
  static remote(message: string, file?: string): DataError {
    const e = new DataError(message);
    Object.defineProperty(e, 'file', { value: file });
    return e;
  }
}

/** Raised when a dataset file is missing and cannot be downloaded (offline, or the host is unreachable). */
export class DatasetUnavailableError extends DataError {
  constructor(message: string, file?: string, options?: ErrorOptions) {
    super(message, file, options);
    this.name = 'DatasetUnavailableError';
  }
}
