/**
 * Runs a sweep: the base once (under a lock file, so points started by a scheduler on several
 * machines sharing the folder wait for one base instead of training several), then every point not
 * yet finished (a finished one is skipped, an interrupted one resumed: each point is run with
 * --resume), in this process, or `jobs` at a time as child processes.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { baseArgs, pointArgs, pointName, pointsOf, runFinished, type SweepPlan, type SweepPoint } from './plan.ts';
import type { ExperimentConfig } from '../experiments/config.ts';

/** Runs `goe experiment ARGS`; resolves to its exit code. `log`: a file for its output (child processes). */
export type ExperimentExec = (args: string[], log?: string) => Promise<number>;

export interface SweepRunOptions {
  dir: string;
  plan: SweepPlan;
  config: ExperimentConfig;
  /** In this process (the base, and points when jobs is 1). */
  inProcess: ExperimentExec;
  /** As a child process (points when jobs > 1). */
  child: ExperimentExec;
  jobs: number;
  say: (line: string) => void;
  /** Only these points (--run-point). */
  only?: SweepPoint[];
}

export interface SweepRunResult {
  ran: SweepPoint[];
  skipped: SweepPoint[];
  failed: { point: SweepPoint; code: number }[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The base run, made once: whoever creates DIR/base.lock (exclusive create) runs it; others wait
 * until it is finished. A lock left by a dead process of this machine is taken over.
 */
export async function ensureBase(o: Pick<SweepRunOptions, 'dir' | 'plan' | 'inProcess' | 'say'>, pollMs = 2000): Promise<void> {
  const base = join(resolve(o.dir), 'base');
  const lock = join(resolve(o.dir), 'base.lock');
  for (;;) {
    if (runFinished(base, ['none']) && !existsSync(lock)) return;
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder: { host?: string; pid?: number } = {};
      try {
        holder = JSON.parse(readFileSync(lock, 'utf8')) as typeof holder;
      } catch {
        // being written
      }
      if (holder.host === hostname() && holder.pid !== undefined && !alive(holder.pid)) {
        o.say(`base: lock of dead process ${holder.pid} removed (${lock})`);
        rmSync(lock, { force: true });
        continue;
      }
      await sleep(pollMs);
      continue;
    }
    writeFileSync(fd, JSON.stringify({ host: hostname(), pid: process.pid, started: new Date().toISOString() }));
    closeSync(fd);
    try {
      if (!runFinished(base, ['none'])) {
        o.say(`base: generator and baseline -> ${base}`);
        const code = await o.inProcess(baseArgs(o.dir, o.plan));
        if (code !== 0) throw new SweepError(`the base run failed (exit ${code}); see ${join(base, 'train.log')}`, code);
      }
    } finally {
      rmSync(lock, { force: true });
    }
  }
}

export class SweepError extends Error {
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
    this.name = 'SweepError';
  }
}

/** ": <the log's last non-empty line>" (why a child point failed, without opening its log), or ''. */
function lastLine(log: string): string {
  if (!existsSync(log)) return '';
  const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.length > 0 ? `: ${lines[lines.length - 1]!.trim()}` : '';
}

/** The base, then every unfinished point. */
export async function runSweep(o: SweepRunOptions): Promise<SweepRunResult> {
  mkdirSync(o.dir, { recursive: true });
  await ensureBase(o);
  const all = o.only ?? pointsOf(o.dir, o.plan);
  const skipped = all.filter((p) => runFinished(p.dir, o.plan.variants));
  const todo = all.filter((p) => !skipped.includes(p));
  for (const p of skipped) o.say(`${pointName(o.plan.param, p.value)} seed ${p.seed}: finished, skipped (${p.dir})`);
  const failed: SweepRunResult['failed'] = [];
  const ran: SweepPoint[] = [];
  const one = async (p: SweepPoint, exec: ExperimentExec, log?: string): Promise<void> => {
    const resumed = existsSync(join(p.dir, 'config.json'));
    o.say(`${pointName(o.plan.param, p.value)} seed ${p.seed}: ${resumed ? 'resumed' : 'started'} -> ${p.dir}${log ? ` (log ${log})` : ''}`);
    const code = await exec(pointArgs(o.dir, o.plan, o.config, p), log);
    if (code === 0) ran.push(p);
    else failed.push({ point: p, code });
    o.say(`${pointName(o.plan.param, p.value)} seed ${p.seed}: ${code === 0 ? 'done' : `FAILED (exit ${code})${log !== undefined ? lastLine(log) : ''}`}`);
  };
  if (o.jobs <= 1) {
    for (const p of todo) await one(p, o.inProcess);
  } else {
    mkdirSync(join(o.dir, 'logs'), { recursive: true });
    const queue = [...todo];
    const worker = async (): Promise<void> => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) await one(p, o.child, join(resolve(o.dir), 'logs', `${pointName(o.plan.param, p.value)}-seed-${p.seed}.log`));
    };
    await Promise.all(Array.from({ length: Math.min(o.jobs, todo.length) }, worker));
  }
  return { ran, skipped, failed };
}
