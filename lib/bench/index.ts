// `mini-vllm/bench`: the benchmark suite behind `mini-vllm bench`, for scripts.
export { deviceCopyBandwidth, memoryBandwidth, readBandwidth } from './bandwidth.js';
export {
  computeMetrics,
  decodeThroughput,
  type Metrics,
  parseSlo,
  percentile,
  type RequestRecord,
  requestLatencies,
  requestRecord,
  type Slo,
  summarize,
  type Summary,
} from './metrics.js';
export { gitCommit, type MachineInfo, machineInfo, machineLine } from './machine.js';
export { htmlReport, metricsTable, summaryText } from './report.js';
export { runBench } from './runner.js';
export { BENCH_MODES, type BenchMode, type BenchOptions, type BenchReport } from './types.js';
export { Limiter, parseRate, poissonArrivals, randomPrompts } from './workload.js';
