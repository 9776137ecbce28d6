// Errors in OpenAI's shape: {error: {message, type, param, code}}, and how every failure a request can meet maps to one
// (schema violations name the parameter, the engine's argument errors are the client's, anything else is a 500).
import type { FastifyError } from 'fastify';
import { MiniVllmError } from '../errors.js';

/** An error the client caused or must see, in OpenAI's shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorBody(e: ApiError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

function describeJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The ApiError a failure answers with. `body` is the request's, to quote a bad value. */
export function toApiError(err: unknown, body?: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError & {
    validation?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }>;
  };
  if (e.validation && e.validation.length > 0) {
    const v = e.validation[0]!;
    const path = v.instancePath.replace(/^\//, '').split('/').filter(Boolean);
    const missing = typeof v.params?.['missingProperty'] === 'string' ? v.params['missingProperty'] : null;
    const param = missing ?? (path.join('.') || null);
    let got: unknown = body;
    for (const k of path)
      got = got !== null && typeof got === 'object' ? (got as Record<string, unknown>)[k] : undefined;
    const message =
      missing !== null
        ? `${missing} is required`
        : `${param ?? 'the body'} ${v.message ?? 'is invalid'}, got ${describeJson(got)}`;
    return new ApiError(
      400,
      message,
      'invalid_request_error',
      param,
      missing !== null ? 'missing_required_parameter' : 'invalid_value',
    );
  }
  if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError)
    return new ApiError(400, `the body is not valid JSON: ${e.message}`, 'invalid_request_error', null, 'invalid_json');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return new ApiError(e.statusCode, e.message, 'invalid_request_error', null, e.code ?? null);
  // Checks inside the engine (sampling params, prompt ids) are the client's errors too.
  if (err instanceof RangeError || err instanceof TypeError) return new ApiError(400, err.message);
  // An engine core died under the request (or every core is down): it never finished, so another try, on another
  // core or another replica (a gateway's retry on 503), can serve it.
  if (err instanceof MiniVllmError && err.code === 'ERR_ENGINE_DEAD')
    return new ApiError(503, err.message, 'server_unavailable', null, 'engine_unavailable');
  if (err instanceof MiniVllmError && err.code === 'ERR_UNSUPPORTED')
    return new ApiError(400, err.message, 'invalid_request_error', null, 'unsupported');
  return new ApiError(500, `internal error: ${(err as Error)?.message ?? String(err)}`, 'internal_error');
}

/** Runs a check that throws RangeError / TypeError (the engine's prompt checks) with its errors naming `param`. */
export async function asParam<T>(param: string, check: () => Promise<T> | T): Promise<T> {
  try {
    return await check();
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError)
      throw new ApiError(400, e.message, 'invalid_request_error', param, 'invalid_value');
    throw e;
  }
}
