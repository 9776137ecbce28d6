import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { backends, defaultDevice, numThreads, setNumThreads } from '../lib/index.js';

const indexUrl = new URL('../lib/index.js', import.meta.url).href;

/** Runs a snippet in a fresh Node with extra environment and returns its stdout parsed as JSON. */
function inChild(code: string, env: Record<string, string>): unknown {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('.', import.meta.url)),
  });
  return JSON.parse(out);
}

describe('backends', () => {
  it('reports the CPU backend and what CUDA can do here', () => {
    const b = backends();
    expect(b.cpu.threads).to.be.at.least(1);
    expect(['avx512', 'avx2', 'scalar']).to.include(b.cpu.simd);
    expect(b.cuda.compiled).to.be.a('boolean');
    expect(b.cuda.available).to.be.a('boolean');
    expect(b.cuda.devices).to.be.an('array');
    expect(b.cuda.emulated).to.be.a('boolean');
    if (b.cuda.emulated) expect(b.cuda.available && b.cuda.devices[0]!.name).to.match(/emulated/);
    if (b.cuda.available) {
      expect(b.cuda.devices.length).to.be.at.least(1);
      for (const d of b.cuda.devices) {
        expect(d.name).to.be.a('string').and.not.empty;
        expect(d.computeCapability).to.match(/^\d+\.\d+$/);
        expect(d.totalMemory).to.be.above(0);
      }
      // the emulated device (a test device) is used only when named
      expect(defaultDevice()).to.equal(b.cuda.emulated ? 'cpu' : 'cuda');
    } else {
      // no driver / no device: an explanation, never a crash
      expect(b.cuda.error).to.be.a('string').and.not.empty;
      expect(b.cuda.devices).to.deep.equal([]);
      expect(defaultDevice()).to.equal('cpu');
    }
  });

  it('MINI_VLLM_DEVICE=cpu disables CUDA without asking the runtime', () => {
    const report = inChild(
      `import { backends, defaultDevice, Tensor } from '${indexUrl}';
       let error = null;
       try { Tensor.empty([1], { device: 'cuda' }); } catch (e) { error = e.code + ': ' + e.message; }
       console.log(JSON.stringify({ cuda: backends().cuda, device: defaultDevice(), error }));`,
      { MINI_VLLM_DEVICE: 'cpu' },
    ) as { cuda: { available: boolean; error: string; runtimeVersion?: number }; device: string; error: string };
    // a build without CUDA gives that reason instead, which says more
    const reason = backends().cuda.compiled ? 'disabled by MINI_VLLM_DEVICE=cpu' : backends().cuda.error!;
    expect(report.cuda.available).to.equal(false);
    expect(report.cuda.error).to.equal(reason);
    expect(report.cuda.runtimeVersion, 'the CUDA runtime was not asked').to.equal(undefined);
    expect(report.device).to.equal('cpu');
    expect(report.error).to.equal(`ERR_UNSUPPORTED: CUDA is not available: ${reason}`);
  });

  it('MINI_VLLM_NUM_THREADS sets the CPU thread count; setNumThreads changes it', () => {
    const child = inChild(`import { numThreads } from '${indexUrl}'; console.log(JSON.stringify(numThreads()));`, {
      MINI_VLLM_NUM_THREADS: '3',
    });
    expect(child).to.equal(3);
    const before = numThreads();
    setNumThreads(1);
    expect(numThreads()).to.equal(1);
    setNumThreads(before);
    expect(numThreads()).to.equal(before);
    expect(() => setNumThreads(-1)).to.throw(RangeError, /setNumThreads: n must be an integer/);
  });
});
