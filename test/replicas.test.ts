// Replicas behind nginx, for real: deploy/nginx/mini-vllm.conf on loopback in front of two `mini-vllm serve`
// processes, a bounded load (streamed and not), and one replica stopped with SIGTERM halfway. Every request must
// complete with the single server's greedy answer or end with a clear retriable error (a 502/503/504, or an SSE error
// event); none may hang, none may come back wrong or cut short.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { emulated } from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'lib', 'cli.js');
const NGINX = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']
  .map((d) => join(d, 'nginx'))
  .find((p) => existsSync(p));
const skipWhy = !NGINX
  ? 'skipped: nginx is not installed (.ci/run installs the Debian package)'
  : emulated
    ? 'skipped: the emulated addon runs no CUDA code here; this runs in npm test'
    : null;

const TOTAL = 240;
const CONCURRENCY = 12;
const MAX_TOKENS = 16;
const PROMPTS = Array.from({ length: 16 }, (_, i) => `Once upon a time, ${'a '.repeat(i)}little fox number ${i} said`);

interface Replica {
  child: ChildProcess;
  url: string;
  port: number;
  exited: Promise<number | null>;
}

function startReplica(): Promise<Replica> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--port', '0', '--device', 'cpu', '--threads', '1', '--max-model-len', '128'].concat([
      '--shutdown-timeout',
      '30',
    ]),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving "[^"]+" at (http:\/\/127\.0\.0\.1:(\d+))\/v1/.exec(stderr);
      if (m) resolve({ child, url: m[1]!, port: Number(m[2]), exited });
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before serving: ${stderr}`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** deploy/nginx/mini-vllm.conf with the replicas' ports and a free listen port, inside a main config of a temp dir. */
function nginxConfig(dir: string, listen: number, replicas: number[]): string {
  let site = readFileSync(join(ROOT, 'deploy', 'nginx', 'mini-vllm.conf'), 'utf8');
  const servers = site.match(/^\s*server 127\.0\.0\.1:\d+ /gm) ?? [];
  expect(servers, 'the upstream servers in deploy/nginx/mini-vllm.conf').to.have.length(2);
  let k = 0;
  site = site.replace(/^(\s*server) 127\.0\.0\.1:\d+ /gm, (_, head: string) => `${head} 127.0.0.1:${replicas[k++]} `);
  expect(site).to.match(/^\s*listen 8080;$/m);
  site = site.replace(/^(\s*)listen 8080;$/m, `$1listen 127.0.0.1:${listen};`);
  writeFileSync(join(dir, 'mini-vllm.conf'), site);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`);
  const main = [
    process.getuid?.() === 0 ? 'user root;' : '', // workers that can write the temp dir
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 1024; }',
    `http { access_log ${dir}/access.log; ${temp.join(' ')} include ${dir}/mini-vllm.conf; }`,
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), main);
  return join(dir, 'nginx.conf');
}

type Outcome = {
  kind: 'completed' | 'retriable' | 'wrong' | 'hung' | 'transport';
  upstream: string;
  detail: string;
  /** performance.now() when it was sent and when it ended. */
  start?: number;
  end?: number;
};

const body = (i: number, stream: boolean) =>
  JSON.stringify({
    model: 'dummy:stories15M',
    prompt: PROMPTS[i % PROMPTS.length],
    max_tokens: MAX_TOKENS,
    temperature: 0,
    ignore_eos: true,
    stream,
  });

async function request(base: string, i: number, expected: string[]): Promise<Outcome> {
  const stream = i % 2 === 1;
  const want = expected[i % PROMPTS.length]!;
  let upstream = '';
  try {
    const r = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(i, stream),
      signal: AbortSignal.timeout(60_000),
    });
    upstream = r.headers.get('x-upstream') ?? '';
    if ([502, 503, 504].includes(r.status)) return { kind: 'retriable', upstream, detail: String(r.status) };
    if (r.status !== 200) return { kind: 'wrong', upstream, detail: `status ${r.status}: ${await r.text()}` };
    if (!stream) {
      const j = (await r.json()) as { choices: { text: string; finish_reason: string }[] };
      const ok = j.choices[0]!.text === want && j.choices[0]!.finish_reason === 'length';
      return { kind: ok ? 'completed' : 'wrong', upstream, detail: JSON.stringify(j.choices[0]) };
    }
    let text = '',
      finish: string | null = null,
      done = false;
    const raw = await r.text();
    for (const line of raw.split('\n')) {
      if (!line.startsWith('data: ')) continue;
      const data = line.slice(6);
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const event = JSON.parse(data) as {
        error?: { code: string };
        choices?: { text: string; finish_reason: string }[];
      };
      if (event.error) return { kind: 'retriable', upstream, detail: `SSE error ${event.error.code}` };
      for (const c of event.choices ?? []) {
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
    }
    const ok = done && text === want && finish === 'length';
    return { kind: ok ? 'completed' : 'wrong', upstream, detail: `stream ${JSON.stringify({ text, finish, done })}` };
  } catch (e) {
    const name = (e as Error).name;
    return { kind: name === 'TimeoutError' ? 'hung' : 'transport', upstream, detail: String(e) };
  }
}

describe(`replicas behind nginx${skipWhy ? ` (${skipWhy})` : ''}`, function () {
  const replicas: Replica[] = [];
  let nginx: ChildProcess | null = null;
  let dir = '';

  before(async function () {
    if (skipWhy) this.skip(); // the suite's title says why
    replicas.push(...(await Promise.all([startReplica(), startReplica()])));
    dir = mkdtempSync(join(tmpdir(), 'mini-vllm-nginx-'));
  });
  after(async () => {
    nginx?.kill('SIGTERM');
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    if (dir && !process.env.KEEP_NGINX_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it('deploy/nginx/mini-vllm.conf passes nginx -t', async () => {
    const conf = nginxConfig(dir, await freePort(), [replicas[0]!.port, replicas[1]!.port]);
    const t = spawnSync(NGINX!, ['-t', '-p', dir, '-c', conf], { encoding: 'utf8' });
    expect(t.status, t.stderr).to.equal(0);
  });

  it(`${TOTAL} requests, half streamed, SIGTERM to one replica halfway: none hangs or is lost`, async () => {
    const port = Number(/listen 127\.0\.0\.1:(\d+);/.exec(readFileSync(join(dir, 'mini-vllm.conf'), 'utf8'))![1]);
    nginx = spawn(NGINX!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; ++i) {
      const ok = await fetch(`${base}/nginx-health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      expect(i, 'nginx did not come up').to.be.below(100);
      await new Promise((r) => setTimeout(r, 50));
    }
    const [a, b] = replicas as [Replica, Replica];
    // A single server's greedy answers: each prompt alone, straight to replica A.
    const expected: string[] = [];
    for (let i = 0; i < PROMPTS.length; ++i) {
      const r = await fetch(`${a.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(i, false),
      });
      expected.push(((await r.json()) as { choices: { text: string }[] }).choices[0]!.text);
    }
    const outcomes: Outcome[] = [];
    let next = 0;
    let killedAt = -1;
    let killTime = Infinity;
    const worker = async () => {
      for (let i = next++; i < TOTAL; i = next++) {
        if (i === TOTAL / 2) {
          killedAt = i;
          killTime = performance.now();
          a.child.kill('SIGTERM');
        }
        const start = performance.now();
        outcomes[i] = { ...(await request(base, i, expected)), start, end: performance.now() };
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const aExit = await a.exited;

    const count = (kind: Outcome['kind'], from = 0, to = TOTAL) =>
      outcomes.slice(from, to).filter((o) => o.kind === kind).length;
    const served = (port: number, from: number, to: number) =>
      outcomes.slice(from, to).filter((o) => o.kind === 'completed' && o.upstream.endsWith(`:${port}`)).length;
    // In flight on A when it was signalled: A drained them (finished them) before it exited.
    const drained = outcomes.filter(
      (o) => o.kind === 'completed' && o.upstream.endsWith(`:${a.port}`) && o.start! < killTime && o.end! > killTime,
    ).length;
    // A request nginx tried on A and then retried on B (A refused, reset, or answered 503 while draining): nginx names
    // every upstream it tried in $upstream_addr, so X-Upstream lists both.
    const retried = outcomes.filter((o) => o.upstream.includes(`:${a.port},`)).length;
    const line =
      `nginx failover: ${TOTAL} requests (${TOTAL / 2} streamed, ${CONCURRENCY} at a time, ${MAX_TOKENS} tokens ` +
      `each); replica A sent SIGTERM at request ${killedAt}, exited ${aExit}; completed ${count('completed')} ` +
      `(before the signal: A ${served(a.port, 0, killedAt)}, B ${served(b.port, 0, killedAt)}; after: ` +
      `A ${served(a.port, killedAt, TOTAL)}, B ${served(b.port, killedAt, TOTAL)}), retriable errors ` +
      `${count('retriable')}, wrong or cut short ${count('wrong')}, transport errors ${count('transport')}, ` +
      `hung ${count('hung')}; ${drained} were in flight on A at the signal and finished there; ${retried} ` +
      `request(s) were tried on A first and retried on B (X-Upstream names both)`;
    console.log(`      ${line}`);
    const bad = outcomes.filter((o) => o.kind !== 'completed' && o.kind !== 'retriable');
    expect(bad.map((o) => o.detail)).to.deep.equal([]);
    expect(outcomes.filter(Boolean)).to.have.length(TOTAL);
    expect(aExit, 'replica A exits 0 after draining').to.equal(0);
    expect(served(a.port, 0, killedAt), 'A served before the signal').to.be.greaterThan(0);
    expect(served(b.port, 0, killedAt), 'B served before the signal').to.be.greaterThan(0);
    // Requests sent after A had exited all went to B: nginx retried the refused connections there.
    expect(count('completed')).to.be.at.least(TOTAL - CONCURRENCY);
  });
});
