/**
 * Worker thread of the data loader: receives the assembly plan once, then fills batch slots on
 * request. All data arrive through shared memory; messages carry only small job descriptions.
 */
import { parentPort } from 'node:worker_threads';
import { Assembler, type AssemblyPlan, type Job } from './assemble.ts';

if (parentPort === null) throw new Error('src/data/worker.ts must run as a worker thread');
const port = parentPort;
let assembler: Assembler | undefined;

port.on('message', (msg: { type: 'init'; plan: AssemblyPlan } | { type: 'job'; job: Job } | { type: 'close' }) => {
  if (msg.type === 'init') {
    assembler = new Assembler(msg.plan);
  } else if (msg.type === 'job') {
    void assembler!.run(msg.job).then((r) => port.postMessage(r));
  } else {
    assembler?.close();
    port.close();
  }
});
