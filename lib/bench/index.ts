// `mini-vllm/bench`: the benchmark suite behind `mini-vllm bench`, for scripts.
export { deviceCopyBandwidth, memoryBandwidth, readBandwidth } from './bandwidth.js';
export { computeMetrics, type Metrics, parseSlo, percentile, type RequestRecord, requestLatencies, type Slo, summarize, type Summary } from './metrics.js';
export { htmlReport, metricsTable, summaryText } from './report.js';
export { BENCH_MODES, type BenchMode, type BenchOptions, type BenchReport, runBench } from './runner.js';
export { Limiter, parseRate, poissonArrivals, randomPrompts } from './workload.js';
