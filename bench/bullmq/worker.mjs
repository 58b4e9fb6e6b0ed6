// BullMQ worker for bench/harness.py (started by ../bullmq_bench.py).
// argv[2]: the config as JSON: {"concurrency": 100} | {} (BullMQ's defaults)...
// Everything not named in the config is BullMQ's default (concurrency 1,
// completed jobs and their return values kept: removeOnComplete unset).
import { Worker } from 'bullmq';
import { HOST, LIB_PORT, QUEUE, doneAsync, startedAsync, monotonic, closeHarness } from './common.mjs';

const cfg = JSON.parse(process.argv[2] || '{}');

const processor = async (job) => {
  switch (job.name) {
    case 'noop':
      await doneAsync();
      return undefined; // stored as the job's returnvalue ("null") unless removed
    case 'lat':
      await startedAsync(job.data.i);
      return undefined;
    case 'waited':
      return monotonic();
    default:
      throw new Error(`unknown job ${job.name}`);
  }
};

const opts = { connection: { host: HOST, port: LIB_PORT } };
if (cfg.concurrency) opts.concurrency = cfg.concurrency;
const worker = new Worker(QUEUE, processor, opts);
worker.on('error', (err) => console.error('worker error', err));
worker.on('failed', (job, err) => console.error('job failed', job && job.id, err));
console.log(`bullmq worker starting: cfg=${JSON.stringify(cfg)} concurrency=${worker.concurrency} pid=${process.pid}`);

let closing = false;
async function shutdown(sig) {
  if (closing) return;
  closing = true;
  console.log(`bullmq worker: ${sig}, closing`);
  try {
    await worker.close();
    await closeHarness();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
