// The AVX-512 level's interleaved GEMV on a CPU with AVX-512 VNNI (quant_x8.h's x8_dots_vnni) against the same level
// without it (MINI_VLLM_CPU_VNNI=0, in a child process: the choice is made once a process): every bit the same, for
// each interleaved type at 1 to 5 tokens. Skipped, saying why, where the CPU or the build has no AVX-512 VNNI.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { setCpuIsa } from '../../lib/index.js';
import { cpuIsas, loadCpuIsa, skipBecause } from '../helpers.js';

const lib = fileURLToPath(new URL('../../lib/index.js', import.meta.url));
const quantize = fileURLToPath(new URL('../../lib/quant/quantize.js', import.meta.url));
const formats = fileURLToPath(new URL('../../lib/quant/formats.js', import.meta.url));

// Each interleaved type's GEMV outputs at 1..5 tokens (the GEMV takes 4 at a time) over 64 x 512, hex of the float32s.
const SCRIPT = `
import { Tensor, ops, setCpuIsa } from ${JSON.stringify(lib)};
import { quantizeRows } from ${JSON.stringify(quantize)};
import { QUANT_FORMATS, quantRowWords } from ${JSON.stringify(formats)};
setCpuIsa('avx512');
const [rows, cols] = [64, 512];
const out = [];
for (const type of ['Q4_0', 'Q8_0', 'Q4_K', 'Q6_K']) {
  const w = new Float32Array(rows * cols).map((_, i) => Math.sin(i * 0.61) * 0.07);
  const q = quantizeRows(type, w, rows, cols);
  const words = quantRowWords(type, cols);
  const ints = new Int32Array(q.buffer, q.byteOffset, rows * words);
  const plain = Tensor.fromArray(ints, [rows, words], { dtype: 'int32' });
  const packed = Tensor.empty([rows, words], { dtype: 'int32' });
  ops.packQuantWeight(packed, plain, QUANT_FORMATS[type].id);
  for (let m = 1; m <= 5; ++m) {
    const x = Tensor.fromArray(new Float32Array(m * cols).map((_, i) => Math.cos(i * 0.3) * 2), [m, cols]);
    const o = Tensor.empty([m, rows]);
    ops.quantLinearPacked(o, x, packed, QUANT_FORMATS[type].id, null);
    out.push(type + ' ' + m + ' ' + Buffer.from(o.toArray().buffer).toString('hex'));
  }
}
console.log(out.join('\\n'));
`;

function run(vnni: '0' | '1'): string[] {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], {
    env: { ...process.env, MINI_VLLM_CPU_VNNI: vnni },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the child process failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim().split('\n');
}

const vnniCpu = (() => {
  try {
    return / avx512_vnni( |$)/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
})();
const why = !cpuIsas.includes('avx512')
  ? 'this build or machine has no avx512 level'
  : !vnniCpu
    ? 'this CPU has no AVX-512 VNNI (/proc/cpuinfo)'
    : null;

describe('quantLinearPacked: the AVX-512 VNNI GEMV', function () {
  before(function () {
    if (why) skipBecause(this, why);
  });
  after(() => setCpuIsa(loadCpuIsa));

  it('every bit as the pmaddubsw path, each interleaved type at 1 to 5 tokens', function () {
    this.timeout(60_000);
    const on = run('1');
    const off = run('0');
    expect(on).to.have.length(20);
    on.forEach((line, i) => expect(line, line.slice(0, 8)).to.equal(off[i]));
  });
});
