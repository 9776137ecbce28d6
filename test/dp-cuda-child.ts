// Run by data-parallel.test.ts in a process of its own, where MINI_VLLM_EMU_DEVICES=2 gives the emulated addon two
// devices (a real machine needs two GPUs): two CUDA engine cores against one, greedy, on a tiny budget. Prints JSON.
import { type CreateOptions, InferenceEngine } from '../lib/engine/index.js';
import { backends, native } from '../lib/native.js';

const opts = {
  model: 'dummy:stories15M',
  device: 'cuda',
  maxModelLen: 64,
  maxNumSeqs: 4,
  maxNumBatchedTokens: 64,
  kvCacheBytes: 4 * 2 ** 20,
  cudaGraphCaptureSizes: [1, 2],
  seed: 5,
} satisfies CreateOptions;
const prompts = ['Once upon a time', 'The cat sat', 'Lily and Ben went', 'A dog'];
const params = { temperature: 0, maxTokens: 4 };

const dp = await InferenceEngine.create({ ...opts, dataParallelSize: 2 });
const one = await InferenceEngine.create(opts);
try {
  const two = await dp.generate(prompts, params);
  const ref = await one.generate(prompts, params);
  const stats = await dp.getStats();
  const out = {
    two: two.map((r) => r.tokenIds),
    one: ref.map((r) => r.tokenIds),
    devices: stats.cores.map((c) => c.stats?.memory.device ?? null),
    generated: stats.cores.map((c) => c.stats?.throughput.generationTokens ?? 0),
    graphs: stats.cores.map((c) => c.stats?.cudaGraphs?.replays ?? 0),
    // The emulator's own check, that the test above could fail: device 0's memory and stream used on device 1.
    crossDevice: backends().cuda.emulated ? native.emuProbe('crossDevice', []) : null,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await dp.stop();
  await one.stop();
}
