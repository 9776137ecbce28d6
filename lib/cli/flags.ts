// The CLI's shared pieces: argument parsers for commander, the engine's flags (every command that runs the engine takes
// them), and the weight-loading progress bar. Logs go to stderr; stdout is the commands' output.
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { isDevice, isFloatDType } from '../dtype.js';
import { DEFAULT_MODEL, type EngineOptions } from '../engine/index.js';
import type { LoadProgress } from '../model/index.js';
import { setNumThreads } from '../runtime.js';

export const log = (msg: string) => process.stderr.write(`${msg}\n`);

export function num(kind: 'int' | 'float') {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n)))
      throw new InvalidArgumentError(`expected ${kind === 'int' ? 'an integer' : 'a number'}, got "${v}"`);
    return n;
  };
}

export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function intList(v: string): number[] {
  return v.split(',').map((p) => {
    const n = Number(p.trim());
    if (p.trim() === '' || !Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`expected positive integers separated by commas, got "${v}"`);
    return n;
  });
}

export function concurrencyList(v: string): number[] {
  return v.split(',').map((p) => {
    const t = p.trim().toLowerCase();
    const n = t === 'inf' ? Infinity : Number(t);
    if (t === '' || !(n >= 1) || (n !== Infinity && !Number.isInteger(n)))
      throw new InvalidArgumentError(`expected positive integers or inf separated by commas, got "${v}"`);
    return n;
  });
}

/** A library parser as a commander argument parser: its RangeError becomes the flag's error message. */
export function flag<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** The engine's flags, shared by every command that runs the engine. */
export function addEngineOptions(cmd: Command): Command {
  return cmd
    .option(
      '-m, --model <model>',
      'a Hugging Face directory, a llama2.c .bin, a .gguf, or dummy:<preset>',
      DEFAULT_MODEL,
    )
    .option('--tokenizer <file>', "tokenizer to use instead of the model's (tokenizer.json or a llama2.c tok*.bin)")
    .addOption(new Option('--device <device>', 'cpu or cuda (default: cuda where present)').choices(['cpu', 'cuda']))
    .addOption(
      new Option('--dtype <dtype>', 'weights and activations')
        .choices(['auto', 'float32', 'float16', 'bfloat16'])
        .default('auto'),
    )
    .addOption(
      new Option(
        '--quantization <type>',
        'quantise the float weights as they load (a quantised GGUF needs none)',
      ).choices(['q8_0', 'q4_0']),
    )
    .option('--threads <n>', 'CPU threads', num('int'))
    .option(
      '--data-parallel-size <n>',
      'engine cores, each a whole engine: on CUDA one device each, on the CPU a share of the threads each (default 1)',
      num('int'),
    )
    .option('--max-num-seqs <n>', 'most sequences in one step (default 256)', num('int'))
    .option(
      '--max-num-batched-tokens <n>',
      'most tokens in one step (default 2048; 256 on the CPU with chunked prefill)',
      num('int'),
    )
    .option('--max-model-len <n>', "longest sequence, prompt and output (default: the model's context)", num('int'))
    .option('--block-size <n>', 'tokens per KV-cache block (default 16)', num('int'))
    .option(
      '--kv-cache-bytes <n>',
      'bytes of KV cache (CPU default: what max-num-seqs full sequences need, at most 4 GiB and what memory is left ' +
        'after the weights; on CUDA it replaces ' +
        '--gpu-memory-utilization)',
      num('int'),
    )
    .option('--gpu-memory-utilization <f>', 'CUDA: share of device memory to use (default 0.9)', num('float'))
    .option('--no-enable-prefix-caching', 'do not reuse the KV of shared prompt prefixes')
    .option('--no-enable-chunked-prefill', 'prefill each prompt in one step')
    .option('--enforce-eager', 'run every step eagerly, without the recorded decode graphs (CUDA or CPU graphs)')
    .option(
      '--cuda-graph-sizes <list>',
      'decode batch sizes to record as graphs, comma separated (default on CUDA 1,2,4,8, then every 16 up to ' +
        'max-num-seqs; on the CPU every size)',
      intList,
    );
}

export interface EngineFlags {
  model: string;
  tokenizer?: string;
  device?: string;
  dtype: string;
  quantization?: string;
  threads?: number;
  dataParallelSize?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  maxModelLen?: number;
  blockSize?: number;
  kvCacheBytes?: number;
  gpuMemoryUtilization?: number;
  enablePrefixCaching: boolean;
  enableChunkedPrefill: boolean;
  enforceEager?: boolean;
  cudaGraphSizes?: number[];
}

/** Checks the engine flags, applies --threads, and returns the engine's options. */
export function engineOptions(f: EngineFlags): EngineOptions {
  if (f.device !== undefined && !isDevice(f.device))
    throw new InvalidArgumentError(`--device must be cpu or cuda, got "${f.device}"`);
  if (f.dtype !== 'auto' && !isFloatDType(f.dtype))
    throw new InvalidArgumentError(`--dtype must be auto, float32, float16 or bfloat16, got "${f.dtype}"`);
  if (f.threads !== undefined) setNumThreads(f.threads);
  const keys = [
    'device',
    'tokenizer',
    'dataParallelSize',
    'maxNumSeqs',
    'maxNumBatchedTokens',
    'maxModelLen',
    'blockSize',
    'kvCacheBytes',
    'gpuMemoryUtilization',
  ] as const;
  if (f.quantization !== undefined && f.quantization !== 'q8_0' && f.quantization !== 'q4_0')
    throw new InvalidArgumentError(`--quantization must be q8_0 or q4_0, got "${f.quantization}"`);
  return {
    model: f.model,
    dtype: f.dtype,
    ...(f.quantization === undefined ? {} : { quantization: f.quantization }),
    enablePrefixCaching: f.enablePrefixCaching,
    enableChunkedPrefill: f.enableChunkedPrefill,
    enforceEager: f.enforceEager === true,
    ...(f.cudaGraphSizes === undefined ? {} : { cudaGraphCaptureSizes: f.cudaGraphSizes }),
    ...Object.fromEntries(keys.filter((k) => f[k] !== undefined).map((k) => [k, f[k]])),
  };
}

/** A progress bar on stderr that shows itself only once loading has taken a second. */
export function progressBar(): { onProgress: LoadProgress; stop: () => void } {
  const start = performance.now();
  let bar: SingleBar | null = null;
  let totalMb = 0;
  return {
    onProgress(done, total) {
      if (bar === null) {
        if (performance.now() - start < 1000 || !process.stderr.isTTY) return;
        bar = new SingleBar({
          stream: process.stderr,
          format: 'loading weights [{bar}] {percentage}% | {value}/{total} MB | {eta}s left',
          hideCursor: true,
        });
        totalMb = Math.ceil(total / 1e6);
        bar.start(totalMb, 0);
      }
      bar.update(done >= total ? totalMb : Math.floor(done / 1e6));
    },
    stop() {
      bar?.stop();
    },
  };
}
