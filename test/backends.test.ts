import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { arch } from 'node:os';

import { backends, defaultDevice, numThreads, setCpuIsa, setNumThreads } from '../lib/index.js';
import { addonPath } from '../lib/native.js';
import { skipBecause } from './helpers.js';

const indexUrl = new URL('../lib/index.js', import.meta.url).href;

/** Runs a snippet in a fresh Node with extra environment and returns its stdout parsed as JSON. */
function inChild(code: string, env: Record<string, string>): unknown {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'], // a failing child's stderr goes to the error, not to the test output
  });
  return JSON.parse(out);
}

describe('backends', () => {
  it('reports the CPU backend and what CUDA can do here', () => {
    const b = backends();
    expect(b.cpu.threads).to.be.at.least(1);
    expect(['avx512', 'avx2', 'scalar']).to.include(b.cpu.simd);
    expect(b.cpu.isa).to.equal(b.cpu.simd);
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

  describe('CPU levels (csrc/cpu/level.h)', () => {
    it('lists the levels this machine runs, best first, and uses the best one', () => {
      const { isa, isas, builtIsas } = backends().cpu;
      const order = ['avx512', 'avx2', 'scalar'];
      expect(isas.length).to.be.at.least(1);
      expect(isas).to.deep.equal(
        order.filter((l) => isas.includes(l)),
        'best first',
      );
      expect(builtIsas).to.include.members(isas);
      if (!process.env.MINI_VLLM_CPU_ISA) expect(isa).to.equal(isas[0]);
      // a CMake build for the generic x86-64 baseline holds all three; the gyp build and a native one hold one
      if (backends().cpu.arch === 'x86-64' && !backends().cuda.emulated && !process.env.MINI_VLLM_ADDON)
        expect(builtIsas).to.deep.equal(order);
    });

    it('setCpuIsa switches every kernel to another level, and refuses one this machine cannot run', () => {
      const { isa, isas } = backends().cpu;
      try {
        for (const level of isas) {
          setCpuIsa(level);
          expect(backends().cpu.isa).to.equal(level);
        }
      } finally {
        setCpuIsa(isa);
      }
      expect(() => setCpuIsa('neon')).to.throw(RangeError, new RegExp(`expected one of ${isas.join(', ')}`));
      expect(() => setCpuIsa(7 as unknown as string)).to.throw(
        TypeError,
        /setCpuIsa: isa must be a string, got number/,
      );
      expect(backends().cpu.isa).to.equal(isa);
    });

    it('MINI_VLLM_CPU_ISA picks the level at load; one not runnable here fails the load, listing the others', () => {
      const { isas } = backends().cpu;
      const lowest = isas[isas.length - 1]!;
      const child = inChild(`import { backends } from '${indexUrl}'; console.log(JSON.stringify(backends().cpu));`, {
        MINI_VLLM_CPU_ISA: lowest,
      }) as { isa: string; isas: string[] };
      expect(child.isa).to.equal(lowest);
      expect(child.isas).to.deep.equal(isas);
      let message = '';
      try {
        inChild(`import { backends } from '${indexUrl}'; console.log(JSON.stringify(backends().cpu));`, {
          MINI_VLLM_CPU_ISA: 'sve',
        });
      } catch (e) {
        message = String((e as { stderr?: string }).stderr);
      }
      expect(message).to.match(/RangeError: MINI_VLLM_CPU_ISA = 'sve' is not a CPU level/);
      expect(message).to.include(`expected one of ${isas.join(', ')}`);
    });

    // csrc/check-levels.mjs on this build, once for the tests below (it disassembles the whole addon).
    let checkLevels: string | undefined;
    function runCheckLevels(ctx: Mocha.Context): string {
      ctx.timeout(120000);
      if (arch() !== 'x64') skipBecause(ctx, `the check reads x86-64 code; this machine is ${arch()}`);
      if (backends().cuda.emulated)
        skipBecause(ctx, 'the emulated-device build is compiled for this machine only (one level, -march=native)');
      if (backends().cpu.arch !== 'x86-64')
        skipBecause(ctx, `built for baseline ${backends().cpu.arch}: the check is for a generic x86-64 baseline`);
      if (checkLevels !== undefined) return checkLevels;
      const script = fileURLToPath(new URL('../../csrc/check-levels.mjs', import.meta.url));
      try {
        checkLevels = execFileSync(process.execPath, [script, addonPath()], { encoding: 'utf8' });
      } catch (e) {
        const err = e as { status?: number; stdout?: string; stderr?: string };
        if (err.status === 2) skipBecause(ctx, `objdump or nm is not usable here: ${err.stderr}`);
        throw new Error(`check-levels found code reachable from a lower level:\n${err.stdout}`);
      }
      return checkLevels;
    }

    it('no code outside a level needs that level (csrc/check-levels.mjs on this build)', function () {
      expect(runCheckLevels(this)).to.match(/; 0 reachable from a lower level/);
    });

    it('avx512 runs avx2’s quantised GEMVs and embeddings (it has no integer dot products of its own)', function () {
      // csrc/cpu/quant.cc: the entry points of the avx512 level call the avx2 level's for these paths, rather than
      // run the same AVX2 source recompiled for x86-64-v4
      const built = backends().cpu.builtIsas;
      if (!built.includes('avx512') || !built.includes('avx2'))
        skipBecause(this, `this build holds ${built.join(', ')}: no avx512 level to call avx2's`);
      const line = /avx512 code calls avx2's: (.*)/.exec(runCheckLevels(this));
      expect(line, 'check-levels printed no line of avx2 functions that avx512 code calls').to.not.equal(null);
      expect(line![1]!.split(', ')).to.include.members([
        'quant_embedding',
        'quant_embedding_packed',
        'quant_linear',
        'quant_linear_packed',
      ]);
    });
  });
});
