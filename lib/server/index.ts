export { ServerMetrics } from './metrics.js';
export { ApiError, OpenAIServer, type ServerOptions } from './server.js';
export { serve, type ServeOptions, type RunningServer } from './serve.js';
