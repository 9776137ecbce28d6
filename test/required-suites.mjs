#!/usr/bin/env node
// CI's check that the suites it depends on really ran. Reads the JSON report of a test run (MINI_VLLM_TEST_REPORT,
// test/reporter.cjs) and fails, naming them, where a required suite has a skipped test or no passing one, or where
// any skipped test does not say why (its full title holds "(skipped…)": skipBecause, or a suite title that says it).
// Prints one line per required suite with its counts.
//
//   node test/required-suites.mjs cpu|isa|emu REPORT.json
import { readFileSync } from 'node:fs';

// Every op family, on each device: the kernels' own suites (test/ops).
const OPS = [
  'siluAndMul',
  'geluTanhAndMul',
  'add',
  'sigmoidGatedAdd',
  'scale',
  'softCap',
  'pagedAttention',
  'reshapeAndCache',
  'embedding',
  'gatherRows',
  'applyTokenBitmask',
  'rmsNorm',
]
  .concat([
    'fusedAddRmsNorm',
    'rmsNormHeads',
    'linear',
    'rotaryEmbedding',
    'quantLinear',
    'quantEmbedding',
    'fillUniform',
    'fusedMoe',
    'quantFusedMoe',
  ])
  .concat(['op registry examples']);

/** Suites by the start of their tests' full titles: [title prefix, why CI needs it]. */
export const REQUIRED = {
  // npm test, on the CPU (every build: native, the gyp baseline, the portable AVX2)
  cpu: [
    ['stories260K against llama2.c run.c float32 greedy on cpu', "the goldens: run.c's ids, text and logits"],
    ['stories260K against llama2.c run.c 16-bit weights and activations over 40 positions on cpu', '16-bit goldens'],
    ['stories260K as a GGUF with F16 and BF16 tensors', 'the GGUF goldens'],
    ['GGUF files quantised by llama.cpp, against llama.cpp the fixtures', "llama.cpp's files are what they say"],
    [
      'GGUF files quantised by llama.cpp, against llama.cpp loaded on cpu',
      "quantised models against llama.cpp's logits",
    ],
    ['quantised real models', 'stories260K quantised'],
    ['greedy outputs do not depend on batching, preemption, chunking or the prefix cache on cpu', 'the engine'],
    ['InferenceEngine (worker thread) on stories260K', 'the engine on a real model'],
    ['SentencePiece BPE tokenizer the Llama 2 vocabulary', "Llama 2's ids"],
    ['replicas behind nginx', 'the failover run behind nginx'],
    ['deploy/: Kubernetes manifests against the Kubernetes schemas', 'the manifests'],
    ...OPS.map((op) => [`${op} on cpu`, 'a kernel family']),
    ['sampleRows on cpu', 'the sampler kernel'],
  ],
  // the other CPU builds (the gyp baseline, the portable AVX2): the suites that reach the kernels (.ci/run isa_tests)
  isa: [],
  // npm run test:emu: the same suites with CUDA required, on the emulated device
  emu: [
    ...OPS.map((op) => [`${op} on cuda`, 'a kernel family on the emulated device']),
    ['emulated device:', "the emulator's own semantics"],
    ['linear on a device built for sm_75 (emulated)', 'the CUDA-core GEMM'],
    ['linear: the tensor-core GEMM with and without split-K (emulated)', 'split-K'],
    ['stories260K against llama2.c run.c float32 greedy on cuda', 'the goldens on CUDA'],
    ['stories260K against llama2.c run.c 16-bit weights and activations over 40 positions on cuda', '16-bit goldens'],
    ['GGUF files quantised by llama.cpp, against llama.cpp loaded on cuda', "llama.cpp's files on CUDA"],
    ['greedy outputs do not depend on batching, preemption, chunking or the prefix cache on cuda', 'the engine'],
    ['data parallel: two CUDA engine cores', 'two devices'],
  ],
};

// The builds differ only in their kernels: everything of `cpu` but nginx, the manifests and the tokenizer ids.
REQUIRED.isa = REQUIRED.cpu.filter(([prefix]) => !/^(replicas|deploy\/|SentencePiece)/.test(prefix));

/**
 * The kernel suites each other CPU level must have run (`npm test` repeats them under every level the machine runs,
 * titled `<op> on cpu [<level>]`): for the CPU runs, given the levels and the one in use at load.
 */
export function levelSuites({ isas, isa }) {
  return isas
    .filter((level) => level !== isa)
    .flatMap((level) =>
      [...OPS, 'sampleRows'].map((op) => [`${op} on cpu [${level}]`, `a kernel family at CPU level ${level}`]),
    );
}

/**
 * The problems with a report for run `kind`: an empty list when every required suite ran and every skip says why.
 * `cpu` (backends().cpu of the build that ran) adds the other CPU levels' suites to the cpu and isa runs.
 */
export function check(kind, report, cpu = null) {
  const problems = [];
  const lines = [];
  const required = kind !== 'emu' && cpu ? [...REQUIRED[kind], ...levelSuites(cpu)] : REQUIRED[kind];
  for (const [prefix, why] of required) {
    const tests = report.tests.filter((t) => t.title.startsWith(prefix));
    const count = (state) => tests.filter((t) => t.state === state).length;
    const [passed, failed, skipped] = [count('passed'), count('failed'), count('skipped')];
    lines.push(`  ${passed} passed, ${failed} failed, ${skipped} skipped: ${prefix}`);
    if (passed === 0 || skipped > 0)
      problems.push(`required suite "${prefix}" (${why}): ${passed} passed, ${skipped} skipped`);
  }
  for (const t of report.tests)
    if (t.state === 'skipped' && !/\(skipped\b/.test(t.title)) problems.push(`skipped without a reason: ${t.title}`);
  return { problems, lines };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [kind, file] = process.argv.slice(2);
  if (!REQUIRED[kind] || !file) {
    console.error('usage: node test/required-suites.mjs cpu|isa|emu REPORT.json');
    process.exit(2);
  }
  // the build the tests ran on (MINI_VLLM_ADDON, as for them): which CPU levels it runs here
  const { backends } = await import('../dist/lib/index.js');
  const cpu = backends().cpu;
  const { problems, lines } = check(kind, JSON.parse(readFileSync(file, 'utf8')), cpu);
  const missing = problems.filter((p) => p.startsWith('required')).length;
  const total = lines.length;
  console.log(`required suites (${kind}, CPU levels ${cpu.isas.join(', ')}): ${total - missing} of ${total} ran`);
  lines.forEach((l) => console.log(l));
  if (problems.length > 0) {
    problems.forEach((p) => console.error(`required-suites: ${p}`));
    process.exit(1);
  }
}
