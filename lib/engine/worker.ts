// The engine core's thread: loads the model, then steps while there is work, reading messages between steps so an
// abort or a new request is seen within one step.
import { parentPort, workerData } from 'node:worker_threads';
import { setCudaDeviceIndex, setNumThreads } from '../runtime.js';
import { EngineCore, type EngineRequest } from './engine-core.js';
import { type FromCore, serializeError, type ToCore, type WorkerData } from './protocol.js';

const port = parentPort!;
const post = (m: FromCore) => port.postMessage(m);
const { options, rank, threads } = workerData as WorkerData;

let core: EngineCore | null = null;
let looping = false;

// The caller's side sends nothing before 'ready'.
function handle(m: ToCore): void {
  if (core === null) throw new Error('engine worker: a message came before the model was loaded');
  switch (m.type) {
    case 'add':
      void add(core, m.requests);
      break;
    case 'abort':
      for (const id of m.requestIds) preparing.delete(id);
      core.abort(m.requestIds);
      post({ type: 'reply', replyId: m.replyId });
      break;
    case 'stats':
      post({ type: 'reply', replyId: m.replyId, stats: core.stats() });
      break;
    case 'resetPeaks':
      core.resetPeaks();
      post({ type: 'reply', replyId: m.replyId });
      break;
    case 'profile':
      if (m.action === 'start') {
        core.startProfile(m.maxSteps);
        post({ type: 'reply', replyId: m.replyId });
      } else {
        post({ type: 'reply', replyId: m.replyId, trace: core.stopProfile() });
      }
      break;
    case 'shutdown':
      core.abort([...core.scheduler.sequences()].map((s) => s.requestId));
      core.dispose();
      post({ type: 'reply', replyId: m.replyId });
      port.close();
      break;
  }
}

/** Requests whose grammar is compiling (EngineCore.prepare); an abort meanwhile takes them out. */
const preparing = new Set<string>();

/** Admits requests in order; one that needs a grammar or bad words is prepared first (the loop steps meanwhile). */
async function add(c: EngineCore, requests: EngineRequest[]): Promise<void> {
  for (const r of requests) {
    try {
      if (EngineCore.needsPrepare(r)) {
        preparing.add(r.requestId);
        const prepared = await c.prepare(r);
        if (!preparing.delete(r.requestId)) {
          prepared.matcher?.dispose(); // aborted while compiling
          continue;
        }
        c.add(r, prepared);
      } else c.add(r);
    } catch (e) {
      preparing.delete(r.requestId);
      post({ type: 'stepError', requestIds: [r.requestId], error: serializeError(e) });
    }
  }
  loop();
}

/** Steps until nothing is left, yielding to the event loop between steps (setImmediate) so messages come in. */
function loop(): void {
  if (looping || core === null) return;
  looping = true;
  const tick = () => {
    const c = core!;
    if (!c.hasUnfinished) {
      looping = false;
      return;
    }
    try {
      const outputs = c.step();
      if (outputs.length > 0) post({ type: 'outputs', outputs });
    } catch (e) {
      // A failed step fails the requests in it (all of them: the batch is one computation); the engine goes on.
      const ids = [...c.scheduler.sequences()].map((s) => s.requestId);
      c.abort(ids);
      post({ type: 'stepError', requestIds: ids, error: serializeError(e) });
    }
    setImmediate(tick);
  };
  setImmediate(tick);
}

port.on('message', (m: ToCore) => {
  try {
    handle(m);
  } catch (e) {
    if ('replyId' in m) post({ type: 'reply', replyId: m.replyId, error: serializeError(e) });
    else post({ type: 'stepError', requestIds: m.requests.map((r) => r.requestId), error: serializeError(e) });
  }
});

try {
  // A data-parallel core: its own share of the CPU threads, and on CUDA the device of its rank.
  if (threads !== null) setNumThreads(threads, { ownPool: true });
  if (options.device === 'cuda') setCudaDeviceIndex(rank);
  core = await EngineCore.create(options, (done, total) => post({ type: 'progress', done, total }));
  const { loaded } = core;
  post({ type: 'ready', info: { dtype: loaded.model.dtype, loadSeconds: loaded.loadSeconds } });
} catch (e) {
  post({ type: 'failed', error: serializeError(e) });
  port.close();
}
