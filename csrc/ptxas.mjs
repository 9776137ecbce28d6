#!/usr/bin/env node
// The register and spill report of every CUDA kernel, and the instructions the hot kernels must be built from.
//
//   node csrc/ptxas.mjs [--arch sm_90] [--out build/ptxas-report.txt] [--check]
//
// Compiles each csrc/cuda/*.cu for one architecture (device code only: -cubin with ptxas -v, and -ptx), and writes
// one line per kernel: registers, stack frame, spill stores and loads, static shared memory. --check exits 1 when a
// kernel of the attention, GEMM or GEMV files spills, or when a kernel named in REQUIRED lacks its instructions in
// the PTX (tensor cores where the design says so). Without nvcc it says so and exits 0 (no CUDA build to check).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const arch = opt('--arch', 'sm_90');
const outFile = opt('--out', join(root, 'build', 'ptxas-report.txt'));
const check = args.includes('--check');

// Files whose kernels must not spill: the attention, GEMM and GEMV kernels (float and quantised).
const NO_SPILL = /^(attention.*|linear.*|quant)\.cu$/;
// Kernels (by demangled name prefix) and the PTX instructions each must contain.
const REQUIRED = [
  {
    file: 'linear.cu',
    kernel: 'gemm_mma_kernel<',
    instructions: ['mma.sync.aligned.m16n8k16', 'cp.async.cg.shared.global', 'ldmatrix.sync.aligned.m8n8.x4'],
  },
  { file: 'quant.cu', kernel: 'quant_gemm_mma_kernel<', instructions: ['mma.sync.aligned.m16n8k16'] },
  {
    file: 'attention_prefill.cu',
    kernel: 'prefill_mma_kernel<',
    instructions: [
      'mma.sync.aligned.m16n8k16',
      'cp.async.cg.shared.global',
      'ldmatrix.sync.aligned.m8n8.x4.shared',
      'ldmatrix.sync.aligned.m8n8.x4.trans',
    ],
  },
];

function findNvcc() {
  for (const c of [process.env.CUDACXX, '/usr/local/cuda/bin/nvcc', 'nvcc']) {
    if (!c) continue;
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return null;
}

const nvcc = findNvcc();
if (!nvcc) {
  console.error('ptxas report: no nvcc found (set CUDACXX): nothing to report');
  process.exit(0);
}

function demangle(names) {
  const r = spawnSync('c++filt', [], { input: names.join('\n'), encoding: 'utf8' });
  const out = r.status === 0 ? r.stdout.split('\n') : names;
  // mvllm::cuda::(anonymous namespace)::decode_kernel<__half>(...) -> decode_kernel<__half>
  return names.map((n, i) => {
    const d = (out[i] ?? n).replace(/^void /, '').replace(/mvllm::cuda::(\(anonymous namespace\)::)?/g, '');
    return d.replace(/\(.*$/, '');
  });
}

const flags = ['-std=c++17', '-O3', '--expt-relaxed-constexpr', `-arch=${arch}`, '-I', join(root, 'csrc')];
const tmp = mkdtempSync(join(tmpdir(), 'mvllm-ptxas-'));
const rows = [];
const failures = [];
try {
  const files = readdirSync(join(here, 'cuda'))
    .filter((f) => f.endsWith('.cu'))
    .sort();
  for (const f of files) {
    const src = join(here, 'cuda', f);
    const cubin = spawnSync(nvcc, [...flags, '-cubin', '-Xptxas', '-v', '-o', join(tmp, `${f}.cubin`), src], {
      encoding: 'utf8',
    });
    if (cubin.status !== 0) {
      console.error(cubin.stderr);
      failures.push(`${f}: nvcc failed`);
      continue;
    }
    // ptxas -v: "Compiling entry function 'X' for 'sm_90'", then "N bytes stack frame, N bytes spill stores, N bytes
    // spill loads", then "Used N registers, ... N bytes smem" (the order of the last two lines varies by version).
    const kernels = [];
    let cur = null;
    for (const line of cubin.stderr.split('\n')) {
      const entry = /Compiling entry function '([^']+)'/.exec(line);
      if (entry) {
        cur = { mangled: entry[1], regs: 0, stack: 0, spillStores: 0, spillLoads: 0, smem: 0 };
        kernels.push(cur);
        continue;
      }
      if (!cur) continue;
      const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
      if (frame) [cur.stack, cur.spillStores, cur.spillLoads] = frame.slice(1).map(Number);
      const used = /Used (\d+) registers/.exec(line);
      if (used) cur.regs = Number(used[1]);
      const smem = /(\d+) bytes smem/.exec(line);
      if (smem) cur.smem = Number(smem[1]);
    }
    const ptxRun = spawnSync(nvcc, [...flags, '-ptx', '-o', join(tmp, `${f}.ptx`), src], { encoding: 'utf8' });
    const ptx = ptxRun.status === 0 ? readFileSync(join(tmp, `${f}.ptx`), 'utf8') : '';
    // The PTX of each entry: from its ".entry NAME(" to the next ".entry".
    const bodies = new Map();
    const parts = ptx.split(/\n(?=\.visible \.entry |\.entry )/);
    for (const p of parts) {
      const m = /\.entry\s+([\w$]+)\s*\(/.exec(p);
      if (m) bodies.set(m[1], p);
    }
    const names = demangle(kernels.map((k) => k.mangled));
    kernels.forEach((k, i) => {
      k.name = names[i];
      k.file = f;
      rows.push(k);
      if (NO_SPILL.test(f) && (k.spillStores > 0 || k.spillLoads > 0))
        failures.push(`${f}: ${k.name} spills (${k.spillStores} bytes stored, ${k.spillLoads} loaded)`);
    });
    for (const req of REQUIRED.filter((r) => r.file === f)) {
      const matching = kernels.filter((k) => k.name.startsWith(req.kernel));
      if (matching.length === 0) failures.push(`${f}: no kernel named ${req.kernel}...`);
      for (const k of matching) {
        const body = bodies.get(k.mangled) ?? '';
        for (const ins of req.instructions)
          if (!body.includes(ins)) failures.push(`${f}: ${k.name} has no ${ins} in its PTX`);
      }
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const width = Math.max(...rows.map((r) => r.name.length), 10);
const lines = [
  `# ptxas -v for ${arch} (${spawnSync(nvcc, ['--version'], { encoding: 'utf8' }).stdout.trim().split('\n').pop()})`,
  `${'file'.padEnd(22)} ${'kernel'.padEnd(width)} regs  stack  spill-st  spill-ld  smem`,
  ...rows.map(
    (r) =>
      `${r.file.padEnd(22)} ${r.name.padEnd(width)} ${String(r.regs).padStart(4)} ${String(r.stack).padStart(6)} ` +
      `${String(r.spillStores).padStart(9)} ${String(r.spillLoads).padStart(9)} ${String(r.smem).padStart(5)}`,
  ),
  `# ${rows.length} kernels; ${failures.length === 0 ? 'no spills in the attention, GEMM and GEMV kernels' : 'FAILED'}`,
  ...failures.map((f) => `# FAIL ${f}`),
];
if (!existsSync(dirname(outFile))) mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${lines.join('\n')}\n`);
console.log(lines.join('\n'));
console.error(`ptxas report: ${relative(process.cwd(), outFile)}`);
if (check && failures.length > 0) process.exit(1);
