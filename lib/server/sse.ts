// Server-Sent Events on a hijacked reply: the headers a streamed completion needs (no proxy buffering), `data:` events,
// and the end. Writes after the client has gone are dropped.
import type { FastifyReply } from 'fastify';

export interface EventStream {
  /** One `data:` event: a string as it is, anything else as JSON. */
  send(data: unknown): void;
  end(): void;
}

export function openEventStream(reply: FastifyReply): EventStream {
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  return {
    send(data) {
      if (!raw.destroyed) raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    },
    end() {
      raw.end();
    },
  };
}
