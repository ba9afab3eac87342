/**
 * Run logs: every line goes to the caller's sink (the terminal) and is appended to the run
 * folder's log file, so a resumed run continues the same file.
 */
import { appendFileSync } from 'node:fs';

export type LogFn = (line: string) => void;

export function fileLogger(file: string | null, sink: LogFn = (l) => void process.stdout.write(`${l}\n`)): LogFn {
  return (line: string) => {
    sink(line);
    if (file !== null) appendFileSync(file, `${line}\n`);
  };
}

/** "1h02m03s" / "2m03s" / "4.2s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${String(r).padStart(2, '0')}s` : `${m}m${String(r).padStart(2, '0')}s`;
}
