// The server's Prometheus metrics (prom-client), named after vLLM's (vllm:* becomes mini_vllm:*), in a registry of
// the server's own so several servers in one process do not collide; and, for inference gateways, the few vllm:* names
// their endpoint pickers read.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats, EngineStatsTotal, GenerationResult, InferenceEngine } from '../engine/index.js';

const LATENCY_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const TOKEN_BUCKETS = [
  0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
  1, 2.5,
];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly success: Counter<'model_name' | 'finished_reason'>;
  private readonly http: Counter<'model_name' | 'route' | 'status'>;
  private readonly promptTokens: Counter<'model_name'>;
  private readonly generationTokens: Counter<'model_name'>;
  private readonly ttft: Histogram<'model_name'>;
  private readonly tpot: Histogram<'model_name'>;
  private readonly itl: Histogram<'model_name'>;
  private readonly e2e: Histogram<'model_name'>;

  constructor(
    engine: InferenceEngine,
    private readonly model: string,
  ) {
    const registers = [this.registry];
    const labelNames = ['model_name'] as const;
    this.success = new Counter({
      name: 'mini_vllm:request_success_total',
      help: 'Finished requests, by finish reason (stop, length, abort).',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.http = new Counter({
      name: 'mini_vllm:http_requests_total',
      help: 'HTTP requests answered, by route and status code.',
      labelNames: ['model_name', 'route', 'status'],
      registers,
    });
    this.promptTokens = new Counter({
      name: 'mini_vllm:prompt_tokens_total',
      help: 'Prompt tokens of finished requests.',
      labelNames,
      registers,
    });
    this.generationTokens = new Counter({
      name: 'mini_vllm:generation_tokens_total',
      help: 'Generated tokens of finished requests.',
      labelNames,
      registers,
    });
    this.ttft = new Histogram({
      name: 'mini_vllm:time_to_first_token_seconds',
      help: 'Time to first token: first token − arrival.',
      labelNames,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.tpot = new Histogram({
      name: 'mini_vllm:request_time_per_output_token_seconds',
      help: 'Time per output token of each request: (E2E − TTFT) / (output tokens − 1).',
      labelNames,
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.itl = new Histogram({
      name: 'mini_vllm:inter_token_latency_seconds',
      help: 'Every gap between consecutive tokens of a request.',
      labelNames,
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.e2e = new Histogram({
      name: 'mini_vllm:e2e_request_latency_seconds',
      help: 'End-to-end request latency: last token − arrival.',
      labelNames,
      buckets: LATENCY_BUCKETS,
      registers,
    });

    // Engine state, read fresh from the engine cores once per scrape: prom-client collects every metric at once, so
    // the gauges share one stats request. Ours are per core (label `engine`, vLLM's label for a data-parallel rank);
    // the vllm:* ones are the pod's total, under the names an inference gateway reads (docs/scaling.md).
    type Stats = EngineStats;
    let pending: Promise<EngineStatsTotal | null> | null = null;
    const current = () =>
      (pending ??= engine
        .getStats()
        .catch(() => null)
        .finally(() => {
          pending = null;
        }));
    const ranks = Array.from({ length: engine.options.dataParallelSize }, (_, r) => String(r));
    const perCore = (name: string, help: string, read: (s: Stats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['model_name', 'engine'],
        registers,
        async collect() {
          const all = await current();
          for (const engineRank of ranks) {
            const s = all?.cores[Number(engineRank)]?.stats ?? null;
            this.set({ model_name: model, engine: engineRank }, s ? read(s) : 0); // a stopped or dead core reads 0
          }
        },
      });
    const total = (name: string, help: string, read: (s: Stats) => number) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const all = await current();
          this.set({ model_name: model }, all ? read(all) : 0);
        },
      });
    const kvUsage = (s: Stats) => (s.memory.numBlocks > 0 ? s.memory.usedBlocks / s.memory.numBlocks : 0);
    perCore('mini_vllm:num_requests_running', 'Sequences in the running batch.', (s) => s.scheduler.running);
    perCore('mini_vllm:num_requests_waiting', 'Sequences waiting to be scheduled.', (s) => s.scheduler.waiting);
    perCore('mini_vllm:num_preemptions', 'Preemptions since the engine started.', (s) => s.scheduler.preempted);
    perCore('mini_vllm:kv_cache_usage_perc', 'Share of KV-cache blocks held by running sequences (0 to 1).', kvUsage);
    perCore('mini_vllm:kv_cache_blocks', 'KV-cache blocks in the pool.', (s) => s.memory.numBlocks);
    perCore(
      'mini_vllm:prefix_cache_hit_rate',
      'Prompt tokens found in the prefix cache / prompt tokens looked up.',
      (s) => s.prefixCache.hitRate,
    );
    perCore(
      'mini_vllm:avg_prompt_throughput_toks_per_s',
      'Prompt tokens computed per second over the last 10 s.',
      (s) => s.throughput.promptTokensPerSecond,
    );
    perCore(
      'mini_vllm:avg_generation_throughput_toks_per_s',
      'Tokens generated per second over the last 10 s.',
      (s) => s.throughput.generationTokensPerSecond,
    );
    new Gauge({
      name: 'mini_vllm:engine_core_up',
      help: 'Whether the engine core serves (1), or is loading, dead or stopped (0).',
      labelNames: ['model_name', 'engine'],
      registers,
      collect() {
        for (const c of engine.coreStates())
          this.set({ model_name: model, engine: String(c.rank) }, c.state === 'ready' ? 1 : 0);
      },
    });
    // What the Gateway API Inference Extension's endpoint picker scrapes from vLLM (its model-server protocol).
    total(
      'vllm:num_requests_waiting',
      'Requests waiting to be scheduled, every engine core.',
      (s) => s.scheduler.waiting,
    );
    total(
      'vllm:num_requests_running',
      'Requests in the running batches, every engine core.',
      (s) => s.scheduler.running,
    );
    total('vllm:kv_cache_usage_perc', 'Share of the KV-cache blocks in use, every engine core (0 to 1).', kvUsage);
    total('vllm:gpu_cache_usage_perc', 'The same as vllm:kv_cache_usage_perc (its name before vLLM 0.10).', kvUsage);
    total(
      'vllm:prefix_cache_hit_rate',
      'Prompt tokens found in the prefix cache / prompt tokens looked up, every engine core.',
      (s) => s.prefixCache.hitRate,
    );
    new Gauge({
      name: 'vllm:cache_config_info',
      help: 'The KV cache: block size (tokens) and blocks, every engine core (the value is 1).',
      labelNames: ['block_size', 'num_gpu_blocks'],
      registers,
      async collect() {
        const all = await current();
        this.reset();
        if (all)
          this.set({ block_size: String(all.memory.blockSize), num_gpu_blocks: String(all.memory.numBlocks) }, 1);
      },
    });
  }

  /** One finished engine request (one choice). */
  finished(r: GenerationResult, countPrompt: boolean): void {
    const labels = { model_name: this.model };
    this.success.inc({ ...labels, finished_reason: r.finishReason });
    if (countPrompt) this.promptTokens.inc(labels, r.promptTokenIds.length);
    this.generationTokens.inc(labels, r.tokenIds.length);
    const t = r.timings;
    if (r.tokenIds.length === 0) return;
    this.ttft.observe(labels, (t.firstToken - t.arrival) / 1000);
    this.e2e.observe(labels, (t.finish - t.arrival) / 1000);
    if (r.tokenIds.length > 1) this.tpot.observe(labels, (t.finish - t.firstToken) / 1000 / (r.tokenIds.length - 1));
    for (let i = 1; i < t.tokens.length; ++i) this.itl.observe(labels, (t.tokens[i]! - t.tokens[i - 1]!) / 1000);
  }

  response(route: string, status: number): void {
    this.http.inc({ model_name: this.model, route, status: String(status) });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
