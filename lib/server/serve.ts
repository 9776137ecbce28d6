// `mini-vllm serve`: an engine and its OpenAI server, with graceful shutdown on SIGINT / SIGTERM.
import { type CreateOptions, InferenceEngine } from '../engine/index.js';
import { OpenAIServer, type ServerOptions } from './server.js';

export interface ServeOptions extends CreateOptions, ServerOptions {
  host?: string;
  /** 0 picks a free port. Default 8000. */
  port?: number;
  /** On shutdown, how long in-flight requests may run before they are aborted. Default 5000 ms. */
  shutdownTimeoutMs?: number;
  /** Shut down on SIGINT / SIGTERM (a second signal exits at once). Default true. */
  handleSignals?: boolean;
  log?: (msg: string) => void;
}

export interface RunningServer {
  server: OpenAIServer;
  engine: InferenceEngine;
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish (up to shutdownTimeoutMs), aborts the rest, stops the engine. */
  shutdown(): Promise<void>;
}

export async function serve(opts: ServeOptions = {}): Promise<RunningServer> {
  const {
    host = '127.0.0.1',
    port = 8000,
    shutdownTimeoutMs = 5000,
    handleSignals = true,
    log = () => {},
    servedModelName,
    apiKey,
    chatTemplate,
    maxPendingRequests,
    logRequests,
    toolCallParser,
    ...engineOptions
  } = opts;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`serve: port must be an integer in [0, 65535], got ${port}`);
  if (!(shutdownTimeoutMs >= 0))
    throw new RangeError(`serve: shutdownTimeoutMs must be at least 0, got ${shutdownTimeoutMs}`);
  // The server listens while the model loads (its probes say so: /ready and /health answer 503 until a core serves).
  const engine = await InferenceEngine.create({ ...engineOptions, start: false });
  let server: OpenAIServer;
  let addr: { url: string; port: number };
  try {
    server = new OpenAIServer(engine, {
      ...(servedModelName !== undefined ? { servedModelName } : {}),
      ...(apiKey !== undefined ? { apiKey } : {}),
      ...(chatTemplate !== undefined ? { chatTemplate } : {}),
      ...(maxPendingRequests !== undefined ? { maxPendingRequests } : {}),
      ...(logRequests !== undefined ? { logRequests } : {}),
      ...(toolCallParser !== undefined ? { toolCallParser } : {}),
    });
    addr = await server.listen(host, port);
  } catch (e) {
    await engine.stop();
    throw e;
  }
  let shutting: Promise<void> | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shutting) {
      log(`mini-vllm: ${signal} again: exiting now`);
      process.exit(130);
    }
    log(
      `mini-vllm: ${signal}: no new requests; waiting up to ${shutdownTimeoutMs} ms for ${server.inFlight} in ` +
        `flight, then aborting them`,
    );
    void shutdown().then(
      () => log('mini-vllm: stopped'),
      (e: Error) => {
        log(`mini-vllm: shutdown failed: ${e.message}`);
        process.exitCode = 1;
      },
    );
  };
  const shutdown = () =>
    (shutting ??= (async () => {
      try {
        await server.close(shutdownTimeoutMs);
      } finally {
        await engine.stop();
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    })());
  if (handleSignals) process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    await engine.start();
  } catch (e) {
    await shutdown().catch(() => undefined);
    throw e;
  }
  return { server, engine, url: addr.url, port: addr.port, shutdown };
}
