// Messages between InferenceEngine (the caller's thread) and the engine core's worker thread.
import { MiniVllmError, type MiniVllmErrorCode, ModelFormatError } from '../errors.js';
import type { Trace } from '../profiler.js';
import type { EngineRequest, EngineStats, RequestOutput } from './engine-core.js';
import type { EngineConfig } from './options.js';

export type ToCore =
  /** Requests that arrived together (one generate() call): the core admits them before its next step. */
  | { type: 'add'; requests: EngineRequest[] }
  | { type: 'abort'; requestIds: string[]; replyId: number }
  | { type: 'stats'; replyId: number }
  | { type: 'resetPeaks'; replyId: number }
  /** Profile the next maxSteps steps (start), or stop and send the trace (stop). */
  | { type: 'profile'; action: 'start'; maxSteps: number; replyId: number }
  | { type: 'profile'; action: 'stop'; replyId: number }
  | { type: 'shutdown'; replyId: number };

export interface CoreInfo {
  dtype: string;
  loadSeconds: number;
}

export type FromCore =
  | { type: 'progress'; done: number; total: number }
  | { type: 'ready'; info: CoreInfo }
  | { type: 'failed'; error: SerializedError }
  | { type: 'outputs'; outputs: RequestOutput[] }
  /** A step threw: these requests were aborted in the core and end with the error. */
  | { type: 'stepError'; requestIds: string[]; error: SerializedError }
  | { type: 'reply'; replyId: number; stats?: EngineStats; trace?: Trace; error?: SerializedError };

export interface WorkerData {
  options: EngineConfig;
  /** This core's place among the data-parallel cores (0 alone). */
  rank: number;
  /** A CPU thread pool of this many threads for this core alone; null: the process's shared pool (one core). */
  threads: number | null;
}

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  file?: string;
  stack?: string;
}

export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const { code, file } = e as Error & { code?: unknown; file?: unknown };
  return {
    name: e.name,
    message: e.message,
    ...(e.stack ? { stack: e.stack } : {}),
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof file === 'string' ? { file } : {}),
  };
}

/** The same kind of error on this side: TypeError, RangeError, MiniVllmError (with its code), or Error. */
export function deserializeError(s: SerializedError): Error {
  let e: Error;
  if (s.name === 'ModelFormatError' && s.file !== undefined) {
    e = new ModelFormatError(
      s.file,
      s.message.startsWith(`${s.file}: `) ? s.message.slice(s.file.length + 2) : s.message,
    );
  } else if (s.name === 'MiniVllmError' && s.code !== undefined)
    e = new MiniVllmError(s.message, s.code as MiniVllmErrorCode);
  else if (s.name === 'TypeError') e = new TypeError(s.message);
  else if (s.name === 'RangeError') e = new RangeError(s.message);
  else {
    e = new Error(s.message);
    if (s.name !== 'Error') e.name = s.name;
  }
  if (s.code !== undefined && !(e instanceof MiniVllmError)) (e as Error & { code?: string }).code = s.code;
  if (s.stack)
    e.stack = `${e.name}: ${e.message}\n    (in the engine worker)\n${s.stack.split('\n').slice(1).join('\n')}`;
  return e;
}
