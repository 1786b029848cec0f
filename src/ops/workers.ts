/**
 * SESSIONGATE_WORKERS=N: N worker processes (node:cluster) sharing every listener. The primary
 * only supervises: it forks the workers, replaces one that dies, forwards SIGHUP (each worker
 * reloads its own configuration) and SIGTERM (each finishes its requests), and aggregates the
 * workers' metrics, so a scrape of any worker's /metrics describes the whole instance.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from './logger.js';

const METRICS_REQ = 'sessiongate:metrics-req';
const METRICS_RES = 'sessiongate:metrics-res';

interface MetricsReq {
  type: typeof METRICS_REQ;
  id: number;
}
interface MetricsRes {
  type: typeof METRICS_RES;
  id: number;
  text?: string;
  error?: string;
}

export const isWorker = (): boolean => cluster.isWorker;

/** Runs the primary of an N-worker instance; resolves with the exit code once all have stopped. */
export function runPrimary(workers: number, log: Logger): Promise<number> {
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (m: MetricsReq) => {
      if (m?.type !== METRICS_REQ) return;
      aggregator.clusterMetrics().then(
        (text) => w.send({ type: METRICS_RES, id: m.id, text } satisfies MetricsRes),
        (err: Error) => w.send({ type: METRICS_RES, id: m.id, error: err.message } satisfies MetricsRes),
      );
    });
    return w;
  };
  for (let i = 0; i < workers; i++) fork();
  log.info({ msg: 'started workers', workers, pid: process.pid });

  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    log.error({ msg: 'worker died; starting another', worker_pid: w.process.pid, code, signal });
    setTimeout(fork, 1000).unref();
  });

  const each = (sig: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
  };
  process.on('SIGHUP', () => {
    log.info({ msg: 'reload: forwarding SIGHUP to workers' });
    each('SIGHUP');
  });
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ msg: 'shutting down', signal });
      each('SIGTERM');
      const force = setTimeout(() => {
        log.warn({ msg: 'workers did not stop in time; killing them' });
        each('SIGKILL');
        resolve(1);
      }, 15_000);
      force.unref();
      const check = () => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearTimeout(force);
          resolve(0);
        }
      };
      cluster.on('exit', check);
      check();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** In a worker: answers the primary's aggregation requests from this registry. */
export function shareWorkerMetrics(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs the worker-side listener
}

let nextId = 0;
const pending = new Map<number, (r: MetricsRes) => void>();
let listening = false;

/** In a worker: the whole instance's metrics, aggregated by the primary. */
export function instanceMetrics(): Promise<string> {
  if (!listening) {
    listening = true;
    process.on('message', (m: MetricsRes) => {
      if (m?.type === METRICS_RES) pending.get(m.id)?.(m);
    });
  }
  return new Promise((resolve, reject) => {
    const id = ++nextId;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error('metrics aggregation timed out'));
    }, 5000);
    pending.set(id, (m) => {
      clearTimeout(timer);
      pending.delete(id);
      if (m.text !== undefined) resolve(m.text);
      else reject(new Error(m.error ?? 'metrics aggregation failed'));
    });
    process.send?.({ type: METRICS_REQ, id } satisfies MetricsReq);
  });
}
