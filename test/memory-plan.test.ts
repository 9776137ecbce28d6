// Memory planning: a model that cannot fit is refused before anything is allocated, with each part and what is
// available named. The host's memory is injected (MINI_VLLM_MEM_AVAILABLE, MINI_VLLM_MEM_LIMIT) so the answers do not
// depend on this machine; the cgroup reader runs on made-up v1 and v2 hierarchies.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { EngineCore, InferenceEngine } from '../lib/engine/index.js';
import { finishEngineOptions, resolveEngineOptions } from '../lib/engine/options.js';
import { MiniVllmError } from '../lib/errors.js';
import { cgroupLimit, hostMemory, parseBytes } from '../lib/host-memory.js';
import { presetConfig } from '../lib/model/presets.js';
import { loadModel } from '../lib/model/loader.js';
import { planMemory } from '../lib/engine/kv-budget.js';
import { weightsBytesFor, workspaceBytesFor } from '../lib/model/memory-plan.js';
import { Tensor } from '../lib/tensor.js';
import { expectReject } from './helpers.js';

const run = promisify(execFile);
const CLI = new URL('../lib/cli.js', import.meta.url).pathname;
const GIB = 2 ** 30;

/**
 * Runs `fn` with the host memory readings replaced (a limit of 1 TiB, i.e. none that matters, unless given), then
 * puts the environment back.
 */
async function withMemory<T>(env: { available?: string; limit?: string }, fn: () => Promise<T> | T): Promise<T> {
  const saved = [process.env['MINI_VLLM_MEM_AVAILABLE'], process.env['MINI_VLLM_MEM_LIMIT']] as const;
  const set = (k: string, v: string | undefined) => (v === undefined ? delete process.env[k] : (process.env[k] = v));
  set('MINI_VLLM_MEM_AVAILABLE', env.available);
  set('MINI_VLLM_MEM_LIMIT', env.limit ?? '1T');
  try {
    return await fn();
  } finally {
    set('MINI_VLLM_MEM_AVAILABLE', saved[0]);
    set('MINI_VLLM_MEM_LIMIT', saved[1]);
  }
}

async function oom(p: Promise<unknown>): Promise<MiniVllmError> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected an ERR_OUT_OF_MEMORY').to.be.instanceOf(MiniVllmError);
  expect((thrown as MiniVllmError).code).to.equal('ERR_OUT_OF_MEMORY');
  return thrown as MiniVllmError;
}

describe('memory planning', function () {
  this.timeout(60_000);

  it('reads byte counts with binary units and rejects anything else', () => {
    expect(parseBytes('24G', 'x')).to.equal(24 * GIB);
    expect(parseBytes('1.5 GiB', 'x')).to.equal(1.5 * GIB);
    expect(parseBytes('512m', 'x')).to.equal(512 * 2 ** 20);
    expect(parseBytes('4096', 'x')).to.equal(4096);
    expect(() => parseBytes('lots', 'MINI_VLLM_MEM_LIMIT')).to.throw(
      RangeError,
      /MINI_VLLM_MEM_LIMIT must be a byte count/,
    );
  });

  it('takes the smaller of the system and the container limit, less what the process holds', async () => {
    const m = await withMemory({ available: '20G', limit: '8G' }, () => hostMemory());
    expect(m.system).to.equal(20 * GIB);
    expect(m.container)
      .to.be.below(8 * GIB)
      .and.above(7 * GIB);
    expect(m.available).to.equal(m.container);
    expect(m.source).to.match(/MINI_VLLM_MEM_AVAILABLE 20\.0 GiB, MINI_VLLM_MEM_LIMIT 8\.00 GiB less this process/);
    const free = await withMemory({ available: '3G' }, () => hostMemory());
    expect(free.available).to.be.at.most(3 * GIB);
  });

  describe('the cgroup limit', () => {
    let root: string;
    beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'mvllm-cgroup-'))));
    afterEach(() => rmSync(root, { recursive: true, force: true }));
    const write = (dir: string, files: Record<string, string>) => {
      mkdirSync(join(root, dir), { recursive: true });
      for (const [k, v] of Object.entries(files)) writeFileSync(join(root, dir, k), v);
    };

    it('v2: the tightest memory.max from the process cgroup up, less unreclaimable usage', () => {
      write('', { 'memory.max': 'max' });
      write('kubepods', { 'memory.max': String(16 * GIB), 'memory.current': String(GIB) });
      write('kubepods/pod1', {
        'memory.max': String(6 * GIB),
        'memory.current': String(3 * GIB),
        'memory.stat': `anon 123\ninactive_file ${GIB}\nactive_file 5\n`,
      });
      const cg = cgroupLimit('0::/kubepods/pod1\n', root);
      expect(cg).to.deep.equal({ limit: 6 * GIB, usage: 2 * GIB, file: join(root, 'kubepods/pod1/memory.max') });
    });

    it('v1: memory.limit_in_bytes, with the page-rounded 2^63 meaning no limit', () => {
      write('memory/docker/abc', {
        'memory.limit_in_bytes': String(4 * GIB),
        'memory.usage_in_bytes': String(GIB),
        'memory.stat': `total_inactive_file ${2 ** 28}\n`,
      });
      write('memory', { 'memory.limit_in_bytes': '9223372036854771712' });
      const cg = cgroupLimit('5:cpuacct:/\n4:memory:/docker/abc\n', root);
      expect(cg).to.deep.equal({
        limit: 4 * GIB,
        usage: GIB - 2 ** 28,
        file: join(root, 'memory/docker/abc/memory.limit_in_bytes'),
      });
      rmSync(join(root, 'memory/docker'), { recursive: true });
      expect(cgroupLimit('4:memory:/docker/abc\n', root)).to.equal(null);
    });
  });

  it('refuses dummy:llama-2-7b in float32 on a 24 GiB machine, naming each part and the way to fit', async () => {
    const err = await withMemory({ available: '23G', limit: '24G' }, () =>
      oom(InferenceEngine.create({ model: 'dummy:llama-2-7b', device: 'cpu', dtype: 'float32' })),
    );
    expect(err.message).to.match(/^dummy:llama-2-7b does not fit in cpu memory: it needs [\d.]+ GiB: /);
    expect(err.message).to.match(
      /weights 25\.1 GiB \(float32\), KV cache 4\.00 GiB \(one sequence of maxModelLen 4096\)/,
    );
    expect(err.message).to.match(
      /workspace [\d.]+ GiB .*; [\d.]+ GiB is available \(MINI_VLLM_MEM_AVAILABLE 23\.0 GiB/,
    );
    expect(err.message).to.match(/To fit: --dtype bfloat16 \(dtype: 'bfloat16'; weights 12\.6 GiB\); a smaller model$/);
    expect(err.message).not.to.include('\n');
  });

  it('plans dummy:llama-2-7b in bfloat16 within the same limit, the KV cache from what is left', async () => {
    const config = presetConfig('llama-2-7b');
    const opts = finishEngineOptions(resolveEngineOptions({ device: 'cpu', blockSize: 16 }), config);
    expect(opts.maxModelLen).to.equal(4096);
    const layout = {
      dtype: 'bfloat16' as const,
      device: 'cpu' as const,
      tied: false,
      bytes: weightsBytesFor(config, 'bfloat16', false),
    };
    const plan = () => planMemory('x', opts, config, layout, true);
    const kv = await withMemory({ available: '23G', limit: '24G' }, plan);
    expect(kv).to.equal(4 * GIB);
    // With less room the default cache shrinks to what is left, in whole blocks, and never below one sequence.
    const weights = weightsBytesFor(config, 'bfloat16', false);
    const ws = workspaceBytesFor(config, 'bfloat16', 'cpu', opts.maxNumBatchedTokens, opts.maxNumSeqs);
    const small = (await withMemory({ available: '17G' }, plan))!;
    expect(small)
      .to.be.below(4 * GIB)
      .and.at.least(2 * GIB);
    expect(small % (16 * 2 * 32 * 4096 * 2)).to.equal(0);
    expect(weights + ws + small).to.be.at.most(17 * GIB);
    await withMemory({ available: '14G' }, () => oom(Promise.resolve().then(plan)));
  });

  it('EngineCore.create takes final options only: resolved ones without maxModelLen are a TypeError', async () => {
    await expectReject(
      EngineCore.create(resolveEngineOptions({ model: 'dummy:stories15M', device: 'cpu' }) as never),
      TypeError,
      /options must be final .*got maxModelLen null/,
    );
  });

  it('sizes the CPU default KV cache from what is left after the weights', async () => {
    const engine = await withMemory({ available: '1G' }, () =>
      EngineCore.create(
        finishEngineOptions(
          resolveEngineOptions({ model: 'dummy:stories15M', device: 'cpu', maxNumSeqs: 256 }),
          presetConfig('stories15M'),
        ),
      ),
    );
    try {
      const { kvCacheBytes, weightsBytes } = engine.stats().memory;
      // The old fixed default: every one of 256 sequences at its longest (256 tokens), about 0.9 GB.
      const old = 256 * 256 * engine.loaded.model.kvBytesPerSlot;
      expect(kvCacheBytes)
        .to.be.below(old)
        .and.at.least(256 * engine.loaded.model.kvBytesPerSlot);
      expect(weightsBytes + kvCacheBytes).to.be.below(GIB - 256 * 2 ** 20);
    } finally {
      engine.dispose();
    }
  });

  it('refuses a kvCacheBytes past the limit and says how much would fit', async () => {
    const err = await withMemory({ available: '2G' }, () =>
      oom(InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', kvCacheBytes: 8 * GIB })),
    );
    expect(err.message).to.match(/KV cache 8\.00 GiB \(kvCacheBytes\)/);
    expect(err.message).to.match(/--kv-cache-bytes \d+ or less \(kvCacheBytes\)/);
  });

  it('counts every expert of a MoE (dummy:qwen3-30b-a3b: 30.5B parameters) and fusedMoe scratch', async () => {
    const err = await withMemory({ available: '23G', limit: '24G' }, () =>
      oom(loadModel('dummy:qwen3-30b-a3b', { device: 'cpu', dtype: 'bfloat16' })),
    );
    expect(err.message).to.match(/^loadModel: dummy:qwen3-30b-a3b does not fit .*weights 56\.9 GiB \(bfloat16\)/);
    const c = presetConfig('qwen3-30b-a3b');
    // CUDA: each (token, expert) pair's activation (bf16) and fp32 output row, over the dense model's
    const dense = workspaceBytesFor({ ...c, moe: undefined, intermediateSize: 0 }, 'bfloat16', 'cuda', 512, 8);
    const moe = workspaceBytesFor(c, 'bfloat16', 'cuda', 512, 8);
    const rows = 1024; // the workspace's rows for 512 tokens: twice a step's, as it grows
    expect(moe - dense).to.equal(rows * 128 * 2 + 512 * 8 * (768 * 2 + 2048 * 4));
  });

  it('loadModel alone plans the weights, and says nothing fits but a smaller model', async () => {
    const err = await withMemory({ available: '8G' }, () =>
      oom(loadModel('dummy:llama-2-7b', { device: 'cpu', dtype: 'bfloat16' })),
    );
    expect(err.message).to.match(/^loadModel: dummy:llama-2-7b does not fit .*weights 12\.6 GiB \(bfloat16\)/);
    expect(err.message).to.match(/To fit: a smaller model$/);
  });

  it('turns a single CPU allocation past what the host has into the same error', async () => {
    await withMemory({ available: '512M' }, () =>
      expectReject(
        Promise.resolve().then(() => Tensor.empty([256, 2 ** 20], { dtype: 'float32', device: 'cpu' })),
        MiniVllmError,
        /Tensor.empty \[256, 1048576\]: out of host memory: 1\.00 GiB requested, 0\.50 GiB available/,
      ),
    );
  });

  for (const command of ['generate', 'serve'])
    it(`${command}: an unfittable model is one line on stderr and exit code 1, before anything runs`, async () => {
      const args = [
        CLI,
        command,
        '-m',
        'dummy:llama-2-7b',
        '--device',
        'cpu',
        ...(command === 'serve' ? ['--port', '0'] : []),
      ];
      let code = 0;
      let stdout = '';
      let stderr = '';
      try {
        await run(process.execPath, args, {
          env: { ...process.env, MINI_VLLM_MEM_AVAILABLE: '20G', MINI_VLLM_MEM_LIMIT: '1T' },
          timeout: 30_000,
        });
      } catch (e) {
        ({ code, stdout, stderr } = e as { code: number; stdout: string; stderr: string });
      }
      expect(code).to.equal(1);
      expect(stdout).to.equal('');
      const lines = stderr.trim().split('\n');
      expect(lines, stderr).to.have.length(1);
      expect(lines[0]).to.match(
        /^mini-vllm: MiniVllmError \[ERR_OUT_OF_MEMORY\]: dummy:llama-2-7b does not fit in cpu memory: .* --dtype/,
      );
    });
});
