/**
 * Progress a person can follow: an experiment is a sequence of phases (train the generator, the
 * baseline, sample outliers, one fine-tuning per variant, evaluations), each with a known amount
 * of work. On a terminal, `terminalProgress` draws one bar per phase with its ETA and the overall
 * counter ("phase 3/6: oe-generated"), and prints log lines above the bar; elsewhere
 * (`plainProgress`: pipes, files, CI) nothing is drawn and the log lines are all there is.
 */
import cliProgress from 'cli-progress';

export interface PhaseProgress {
  /** `done` units of the phase's `total` are finished. */
  update(done: number): void;
  /** The phase is over (its bar is removed from the terminal). */
  end(): void;
}

export interface Progress {
  /** How many phases the run expects (the counter's denominator). */
  plan(phases: number): void;
  /** Starts the next phase; `total` units of work (steps, iterations, images). */
  phase(name: string, total: number, unit: string): PhaseProgress;
  /** A log line, printed so that it does not tear the bar. */
  log(line: string): void;
  /** Ends the last bar (call once, when the run ends or fails). */
  stop(): void;
}

const NO_PHASE: PhaseProgress = { update: () => {}, end: () => {} };

/** No bars: log lines go to `sink` as they come. */
export function plainProgress(sink: (line: string) => void): Progress {
  return { plan: () => {}, phase: () => NO_PHASE, log: sink, stop: () => {} };
}

/** Bars on `stream` (a TTY); the counter's denominator is what `plan` said, grown if more phases start. */
export function terminalProgress(stream: NodeJS.WriteStream): Progress {
  let started = 0;
  let expected = 0;
  let bar: cliProgress.SingleBar | null = null;
  const close = (): void => {
    bar?.stop();
    bar = null;
  };
  return {
    plan(phases) {
      expected = Math.max(phases, started);
    },
    phase(name, total, unit) {
      close();
      started++;
      expected = Math.max(expected, started);
      const b = new cliProgress.SingleBar(
        {
          stream,
          format: `phase ${started}/${expected}: ${name} [{bar}] {value}/{total} ${unit} | {percentage}% | eta {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 20,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      b.start(Math.max(total, 1), 0);
      bar = b;
      return {
        update: (done) => b.update(Math.min(done, Math.max(total, 1))),
        end: () => {
          if (bar === b) close();
        },
      };
    },
    log(line) {
      if (bar === null) {
        stream.write(`${line}\n`);
        return;
      }
      // clear the bar's line, print, and let the bar redraw under it
      stream.write(`\r\x1b[2K${line}\n`);
      bar.render();
    },
    stop: close,
  };
}

/** `inner`, also recording each phase's wall time (summary.json's per-phase timings). */
export function timedProgress(inner: Progress): Progress & { timings: { phase: string; seconds: number }[] } {
  const timings: { phase: string; seconds: number }[] = [];
  return {
    timings,
    plan: (n) => inner.plan(n),
    log: (l) => inner.log(l),
    stop: () => inner.stop(),
    phase(name, total, unit) {
      const t0 = performance.now();
      const p = inner.phase(name, total, unit);
      let ended = false;
      return {
        update: (d) => p.update(d),
        end: () => {
          if (ended) return;
          ended = true;
          timings.push({ phase: name, seconds: (performance.now() - t0) / 1000 });
          p.end();
        },
      };
    },
  };
}
