// Data parallelism on one node, N = 2 on the CPU: the greedy outputs of two cores equal one core's, both cores take
// work, the dispatcher's choice (outstanding tokens, cached prefix), a core killed under load failing only its own
// requests while the other goes on, and the server's probes and metrics through it all.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { Dispatcher, type GenerationResult, generate, InferenceEngine } from '../lib/engine/index.js';
import { MiniVllmError } from '../lib/errors.js';
import { loadModel } from '../lib/model/index.js';
import { OpenAIServer } from '../lib/server/index.js';
import { backends } from '../lib/native.js';
import { emulated, expectReject } from './helpers.js';

const MODEL = 'dummy:stories15M';
const OPTS = { model: MODEL, device: 'cpu', maxModelLen: 256, seed: 3 } as const;
/** POST /v1/completions with this body. */
const complete = (base: string, body: object) =>
  fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const PROMPTS = Array.from({ length: 12 }, (_, i) => `Once upon a time ${'there was '.repeat(i % 4)}a cat number ${i}`);

describe('data parallel: the dispatcher', () => {
  const ids = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

  it('sends a request to the core with the fewest outstanding tokens, then lower rank', () => {
    const d = new Dispatcher(3, 16);
    const alive = () => true;
    expect(d.pick(d.key(ids(10)), alive)).to.equal(0);
    d.assign('a', 0, d.key(ids(10)), 20); // core 0 owes 30
    expect(d.pick(d.key(ids(10, 500)), alive)).to.equal(1);
    d.assign('b', 1, d.key(ids(10, 500)), 5); // core 1 owes 15
    expect(d.pick(d.key(ids(10, 900)), alive)).to.equal(2);
    d.assign('c', 2, d.key(ids(40, 900)), 40); // core 2 owes 80
    expect(d.pick(d.key(ids(3, 2000)), alive)).to.equal(1);
    expect(d.pick(d.key(ids(3, 2000)), (r) => r !== 1)).to.equal(0);
    expect(d.pick(d.key(ids(3, 2000)), () => false)).to.equal(null);
    // Tokens come and the request ends: its debt leaves its core.
    d.progress('a'); // prompt done + 1 token
    d.progress('a');
    expect(d.loads()[0]!.outstandingTokens).to.equal(30 - 11 - 1);
    d.release('a');
    expect(d.loads()[0]).to.deep.equal({ rank: 0, requests: 0, outstandingTokens: 0 });
    expect(d.loads().map((l) => l.requests)).to.deep.equal([0, 1, 1]);
  });

  it('prefers the core holding the prompt prefix, unless its queue costs more than the prefix saves', () => {
    const d = new Dispatcher(2, 16);
    const alive = () => true;
    const system = ids(64, 7); // 4 full blocks
    d.assign('x', 1, d.key([...system, 100, 101]), 8); // core 1: owes 74 and holds the 4 blocks
    d.assign('y', 0, d.key(ids(50, 3000)), 8); // core 0: owes 58
    // 64 cached tokens on core 1: cost 74 + 70 - 64 = 80 against 58 + 70 = 128 on core 0.
    expect(d.pick(d.key([...system, 200, 201, 202, 203, 204, 205]), alive)).to.equal(1);
    // A different prefix: the lighter core.
    expect(d.pick(d.key([...ids(64, 5000), 1, 2, 3, 4, 5, 6]), alive)).to.equal(0);
    // Core 1 much busier than the prefix is worth: the other core.
    d.assign('z', 1, d.key(ids(16, 9000)), 200);
    expect(d.pick(d.key([...system, 200, 201, 202, 203, 204, 205]), alive)).to.equal(0);
    // A dead core's cache is gone.
    d.release('z');
    d.forget(1);
    expect(d.pick(d.key([...system, 200, 201, 202, 203, 204, 205]), alive)).to.equal(0);
  });
});

describe('data parallel: two CPU engine cores', function () {
  let dp: InferenceEngine | undefined;
  let one: InferenceEngine | undefined;
  const greedy = { temperature: 0, maxTokens: 24 };

  before(async () => {
    dp = await InferenceEngine.create({ ...OPTS, dataParallelSize: 2 });
    one = await InferenceEngine.create(OPTS);
  });
  after(async () => {
    await dp?.stop();
    await one?.stop();
  });

  it('checks dataParallelSize: an integer, at most the CPU threads', async () => {
    await expectReject(InferenceEngine.create({ ...OPTS, dataParallelSize: 0 }), RangeError, /dataParallelSize/);
    await expectReject(
      InferenceEngine.create({ ...OPTS, dataParallelSize: '2' as unknown as number }),
      TypeError,
      /dataParallelSize must be a number/,
    );
    await expectReject(
      InferenceEngine.create({ ...OPTS, dataParallelSize: 64 }),
      RangeError,
      /dataParallelSize 64 needs 64 CPU threads, this machine has \d+/,
    );
  });

  it('offline generate(), which steps one core on this thread, refuses dataParallelSize', async () => {
    const loaded = await loadModel(MODEL, { device: 'cpu' });
    try {
      await expectReject(
        generate(loaded, 'Once', {}, { dataParallelSize: 2 } as never),
        TypeError,
        /generate: dataParallelSize needs engine cores of their own \(InferenceEngine\)/,
      );
    } finally {
      loaded.model.dispose();
    }
  });

  it('gives the same greedy outputs as one core, and uses both cores', async () => {
    const before = await dp!.getStats();
    const [a, b] = await Promise.all([dp!.generate(PROMPTS, greedy), one!.generate(PROMPTS, greedy)]);
    expect(a.map((r) => r.text)).to.deep.equal(b.map((r) => r.text));
    expect(a.map((r) => r.tokenIds)).to.deep.equal(b.map((r) => r.tokenIds));
    const after = await dp!.getStats();
    expect(after.cores).to.have.length(2);
    const made = after.cores.map(
      (c, r) => c.stats!.throughput.generationTokens - before.cores[r]!.stats!.throughput.generationTokens,
    );
    expect(made[0], 'core 0 generated').to.be.greaterThan(0);
    expect(made[1], 'core 1 generated').to.be.greaterThan(0);
    expect(made[0]! + made[1]!).to.equal(PROMPTS.length * greedy.maxTokens);
    // The total adds the cores up.
    expect(after.throughput.generationTokens).to.equal(
      after.cores[0]!.stats!.throughput.generationTokens + after.cores[1]!.stats!.throughput.generationTokens,
    );
    expect(after.memory.numBlocks).to.equal(
      after.cores[0]!.stats!.memory.numBlocks + after.cores[1]!.stats!.memory.numBlocks,
    );
    expect(dp!.coreStates().map((c) => [c.state, c.requests, c.outstandingTokens])).to.deep.equal([
      ['ready', 0, 0],
      ['ready', 0, 0],
    ]);
  });

  it('a killed core fails its requests (ERR_ENGINE_DEAD); the other finishes its own and serves on', async () => {
    const long = { temperature: 0, maxTokens: 200, ignoreEos: true };
    const streams = PROMPTS.slice(0, 8).map((p) => dp!.stream(p, long));
    const runs = streams.map((s) =>
      s.result.then(
        (r): GenerationResult | Error => r,
        (e: Error) => e,
      ),
    );
    // Every request has its first token: all 8 are running on their cores (an event, where a sleep would guess).
    await Promise.all(streams.map((s) => s.next()));
    const onCore = dp!.coreStates().map((c) => c.requests);
    expect(onCore[0]! + onCore[1]!).to.equal(8);
    expect(onCore[1], 'requests on core 1 when it was killed').to.be.greaterThan(0);
    await dp!.killCore(1);
    const results = await Promise.all(runs);
    const failed = results.filter((r): r is Error => r instanceof Error);
    const done = results.filter((r): r is GenerationResult => !(r instanceof Error));
    expect(failed).to.have.length(onCore[1]!);
    expect(done).to.have.length(onCore[0]!);
    for (const e of failed) {
      expect(e).to.be.instanceOf(MiniVllmError);
      expect((e as MiniVllmError).code).to.equal('ERR_ENGINE_DEAD');
      expect(e.message).to.match(/engine core 1 died: .*the other 1 core\(s\) go on serving/);
    }
    for (const r of done) expect(r.tokenIds).to.have.length(200);
    expect(dp!.coreStates().map((c) => c.state)).to.deep.equal(['ready', 'dead']);
    // New requests go to the live core, with the same greedy answers.
    const again = await dp!.generate(PROMPTS.slice(0, 4), greedy);
    const ref = await one!.generate(PROMPTS.slice(0, 4), greedy);
    expect(again.map((r) => r.text)).to.deep.equal(ref.map((r) => r.text));
    const stats = await dp!.getStats();
    expect(stats.cores.map((c) => [c.state, c.stats === null])).to.deep.equal([
      ['ready', false],
      ['dead', true],
    ]);
    // start() brings the dead core back.
    await dp!.start();
    expect(dp!.coreStates().map((c) => c.state)).to.deep.equal(['ready', 'ready']);
  });
});

describe('data parallel: the server probes and metrics', function () {
  let engine: InferenceEngine | undefined;
  let server: OpenAIServer | undefined;
  let base = '';

  after(async () => {
    await server?.close();
    await engine?.stop();
  });

  it('is not ready while the model loads; then per-core health, a dead core, and every core down', async () => {
    engine = await InferenceEngine.create({ ...OPTS, dataParallelSize: 2, start: false });
    server = new OpenAIServer(engine);
    base = (await server.listen('127.0.0.1', 0)).url;
    const probe = async (path: string) => {
      const r = await fetch(`${base}${path}`);
      return { status: r.status, body: (await r.json()) as { status: string; cores: { state: string }[] } };
    };
    expect((await probe('/ready')).status).to.equal(503);
    // The cores are loading from start() until this thread handles their 'ready' messages. A GET through inject()
    // is answered within this turn of the event loop (no macrotask runs before it resolves, checked), so no 'ready'
    // can be handled in between: the probes see the loading state however fast the model loads.
    let turned = false;
    setImmediate(() => (turned = true));
    const loading = engine.start();
    const during = await server.app.inject({ method: 'GET', url: '/ready' });
    const live = await server.app.inject({ method: 'GET', url: '/live' });
    expect(turned, 'a macrotask ran during the probes: the loading state was not held').to.equal(false);
    expect([during.statusCode, during.json<{ status: string }>().status]).to.deep.equal([503, 'loading']);
    expect(live.statusCode).to.equal(200);
    // A POST's body is read over a few turns: the cores still starting after it (a state only moves on) means it was
    // answered while the model loaded.
    const early = await server.app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: { model: MODEL, prompt: [1, 2, 3], max_tokens: 2 },
    });
    expect(engine.coreStates().map((c) => c.state)).to.deep.equal(['starting', 'starting']);
    expect(early.statusCode).to.equal(503);
    expect(early.json<{ error: { code: string } }>().error.code).to.equal('model_loading');
    await loading;
    for (const path of ['/ready', '/health', '/live']) {
      const p = await probe(path);
      expect([path, p.status, p.body.status]).to.deep.equal([path, 200, 'ok']);
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['vllm:num_requests_waiting', 'vllm:num_requests_running', 'vllm:kv_cache_usage_perc'])
      expect(metrics).to.match(new RegExp(`^${name}\\{model_name="${MODEL}"\\} 0$`, 'm'));
    expect(metrics).to.match(/^mini_vllm:num_requests_waiting\{model_name="[^"]+",engine="1"\} 0$/m);
    expect(metrics).to.match(/^vllm:cache_config_info\{block_size="16",num_gpu_blocks="\d+"\} 1$/m);

    await engine.killCore(0);
    const degraded = await probe('/health');
    expect([degraded.status, degraded.body.status, degraded.body.cores.map((c) => c.state)]).to.deep.equal([
      200,
      'degraded',
      ['dead', 'ready'],
    ]);
    expect((await probe('/ready')).status).to.equal(200);
    expect(await (await fetch(`${base}/metrics`)).text()).to.match(/^mini_vllm:engine_core_up\{[^}]*engine="0"\} 0$/m);

    await engine.killCore(1);
    const down = await probe('/health');
    expect([down.status, down.body.status]).to.deep.equal([503, 'down']);
    expect((await probe('/ready')).status).to.equal(503);
    expect((await probe('/live')).status).to.equal(503);
    const r = await complete(base, { model: MODEL, prompt: 'Once', max_tokens: 2 });
    expect(r.status).to.equal(503);
    expect(r.headers.get('retry-after')).to.equal('1');
    expect(((await r.json()) as { error: { code: string } }).error.code).to.equal('engine_unavailable');
  });
});

describe('the server draining', () => {
  it('says draining in /health while in-flight requests finish after close()', async () => {
    const engine = await InferenceEngine.create(OPTS);
    const server = new OpenAIServer(engine);
    try {
      const { url } = await server.listen('127.0.0.1', 0);
      const req = complete(url, { model: MODEL, prompt: 'Once', max_tokens: 64, ignore_eos: true });
      while (server.inFlight === 0) await new Promise((r) => setTimeout(r, 5));
      expect(server.health().body.status).to.equal('ok');
      const closing = server.close(30_000);
      expect(server.health()).to.deep.include({ serving: true });
      expect(server.health().body.status).to.equal('draining');
      const r = await req;
      expect(r.status).to.equal(200);
      expect(((await r.json()) as { choices: { finish_reason: string }[] }).choices[0]!.finish_reason).to.equal(
        'length',
      );
      await closing;
    } finally {
      await engine.stop();
    }
  });
});

// Two CUDA cores need two devices: the emulated addon reports them with MINI_VLLM_EMU_DEVICES=2 (where it checks that
// every kernel, copy and stream of a core stays on that core's device), a GPU machine needs two.
const cuda = backends().cuda;
const twoDevices = cuda.available && (emulated || cuda.devices.length >= 2);
const cudaTitle = `data parallel: two CUDA engine cores${
  twoDevices ? '' : ' (skipped: needs two CUDA devices, or the emulated addon)'
}`;
describe(cudaTitle, function () {
  before(function () {
    if (!twoDevices) this.skip(); // the suite's title says why
  });

  it('each core on its own device, greedy equal to one core, decode graphs replayed on both', () => {
    const child = spawnSync(process.execPath, [join(import.meta.dirname, 'dp-cuda-child.js')], {
      encoding: 'utf8',
      env: { ...process.env, MINI_VLLM_EMU_DEVICES: '2' },
      timeout: 600_000,
    });
    expect(child.status, child.stderr).to.equal(0);
    const r = JSON.parse(child.stdout) as {
      two: number[][];
      one: number[][];
      devices: string[];
      generated: number[];
      graphs: number[];
      crossDevice: number[] | null;
    };
    expect(r.two).to.deep.equal(r.one);
    expect(r.devices).to.deep.equal(['cuda:0', 'cuda:1']);
    expect(r.generated[0]).to.be.greaterThan(0);
    expect(r.generated[1]).to.be.greaterThan(0);
    expect(r.graphs[0]! + r.graphs[1]!).to.be.greaterThan(0);
    // On the emulator: a kernel given device 0's memory on device 1 is an illegal address, a memset of it an invalid
    // value, a launch on device 0's stream from device 1 an invalid handle; device 1's own memory is fine.
    if (cuda.emulated) expect(r.crossDevice).to.deep.equal([700, 1, 400, 0]);
  });
});
