// The emulated CUDA device's own tests (csrc/emu), against documented semantics: each warp primitive as the CUDA
// Programming Guide defines it, mma.sync against a plain matrix product, conversions against the TS reference, and
// each fault the emulator must report as a JS error naming the kernel. Only the emulated build runs them.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';

import { MiniVllmError, Tensor } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { roundTo } from '../../lib/reference/dtype.js';
import { childEnv, emulated, expectThrow, prng } from '../helpers.js';

const probe = (name: string, args: number[] = []): number[] => native.emuProbe(name, args);

function describeEmu(title: string, body: () => void): void {
  describe(emulated ? title : `${title} (skipped: needs the emulated device, npm run build:emu)`, function () {
    if (!emulated) {
      before(function () {
        this.skip(); // the suite's title says why
      });
    }
    body();
  });
}

/** What lane `lane` receives from a shuffle of `kind`, per the CUDA Programming Guide (values: lane * 10 + 1). */
function shuffled(kind: 'idx' | 'up' | 'down' | 'xor', lane: number, arg: number, width: number): number {
  const group = Math.floor(lane / width) * width;
  let src = lane;
  if (kind === 'idx') src = group + (arg % width);
  if (kind === 'up') src = lane - group >= arg ? lane - arg : lane;
  if (kind === 'down') src = lane - group + arg < width ? lane + arg : lane;
  if (kind === 'xor') src = (lane ^ arg) < group + width ? lane ^ arg : lane; // earlier groups allowed, later not
  return src * 10 + 1;
}

function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const man = bits & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return exp === 0 ? sign * man * 2 ** -24 : sign * (1 + man / 1024) * 2 ** (exp - 15);
}
function bf16Value(bits: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setUint32(0, bits << 16);
  return b.getFloat32(0);
}

/** Runs `script` (ES module text) in a child process with `env` added; its stdout. */
function child(script: string, env: Record<string, string>): string {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...childEnv(), ...env },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return r.stdout;
}

describeEmu('emulated device: warp primitives', () => {
  const kinds = ['idx', 'up', 'down', 'xor'] as const;
  for (const [k, kind] of kinds.entries())
    for (const width of [32, 16, 8, 4, 2, 1])
      it(`__shfl${kind === 'idx' ? '' : `_${kind}`}_sync at width ${width}`, () => {
        const args = kind === 'idx' ? [0, 3, 5, 31, 40] : kind === 'xor' ? [1, 2, 4, 8, 16, 31] : [0, 1, 3, 16];
        for (const arg of args) {
          const got = probe('shfl', [k, arg, width]);
          const want = Array.from({ length: 32 }, (_, lane) => shuffled(kind, lane, arg, width));
          expect(got, `arg ${arg}`).to.deep.equal(want);
        }
      });

  it('__ballot_sync, __any_sync and __all_sync over the full warp and a partial mask', () => {
    const rand = prng(4);
    for (const mask of [0xffffffff, 0x0000ffff, 0xf0f0f0f0, 0x80000001]) {
      for (let trial = 0; trial < 6; ++trial) {
        const preds = trial === 0 ? 0 : trial === 1 ? 0xffffffff : Math.floor(rand() * 2 ** 32);
        const got = probe('vote', [preds, mask]);
        const ballot = (preds & mask) >>> 0;
        for (let lane = 0; lane < 32; ++lane) {
          const [lo, hi, any, all] = got.slice(lane * 4, lane * 4 + 4) as [number, number, number, number];
          const seen = lo === -1 ? null : [lo + hi * 65536, any, all];
          const want = (mask >>> lane) & 1 ? [ballot, ballot ? 1 : 0, ballot === mask >>> 0 ? 1 : 0] : null;
          expect(seen, `mask ${mask.toString(16)} lane ${lane}`).to.deep.equal(want);
        }
      }
    }
  });

  it('__activemask: the calling lane and lanes that have not exited, never one that has', () => {
    // lanes run independently here (as with independent thread scheduling): a lane that has finished is not active
    for (const live of [32, 17, 1]) {
      const got = probe('activemask', [live]);
      const liveMask = live === 32 ? 0xffffffff : 2 ** live - 1;
      for (let lane = 0; lane < 32; ++lane) {
        const m = got[2 * lane]! + got[2 * lane + 1]! * 65536;
        if (lane >= live) expect(got[2 * lane], `lane ${lane} exited`).to.equal(-1);
        else expect([(m >>> lane) & 1, (m & ~liveMask) >>> 0], `lane ${lane} of ${live}`).to.deep.equal([1, 0]);
      }
    }
  });
});

describeEmu('emulated device: ldmatrix and cp.async', () => {
  for (const trans of [false, true])
    it(`ldmatrix .x4${trans ? '.trans' : ''}: lanes 8i..8i+7 give the rows of matrix i; lane l gets ${
      trans ? 'rows 2(l%4), 2(l%4)+1 of column l/4' : 'row l/4, elements 2(l%4), 2(l%4)+1'
    }`, () => {
      const rows = Array.from({ length: 256 }, (_, i) => (i * 37 + 11) % 65536);
      const got = probe('ldmatrix', [trans ? 1 : 0, ...rows]);
      // matrix i's row r came from lane 8i + r, which pointed at shared row 31 - (8i + r)
      const el = (i: number, r: number, c: number) => rows[(31 - (8 * i + r)) * 8 + c];
      for (let lane = 0; lane < 32; ++lane)
        for (let i = 0; i < 4; ++i) {
          const a = Math.floor(lane / 4),
            b = 2 * (lane % 4);
          const want = trans ? [el(i, b, a), el(i, b + 1, a)] : [el(i, a, b), el(i, a, b + 1)];
          expect([got[lane * 8 + 2 * i], got[lane * 8 + 2 * i + 1]], `lane ${lane} register ${i}`).to.deep.equal(want);
        }
    });

  it('cp.async: done by the wait_group that covers its group, not before; src-size 0 writes zeros', () => {
    const got = probe('cpAsync');
    for (let lane = 0; lane < 32; ++lane) {
      const a = lane % 3 === 0 ? 0 : lane * 4 + 1;
      expect(got.slice(lane * 4, lane * 4 + 4), `lane ${lane}`).to.deep.equal([-1, a, -1, 128 + lane * 4 + 1]);
    }
  });
});

describeEmu('emulated device: mma.sync m16n8k16 and conversions', () => {
  for (const dtype of ['float16', 'bfloat16'] as const)
    it(`mma.sync ${dtype}: d = a · b + c, as a plain matrix product of the rounded inputs`, () => {
      const rand = prng(dtype === 'float16' ? 1 : 2);
      const a = Array.from({ length: 256 }, () => roundTo(rand() * 4 - 2, dtype));
      const bt = Array.from({ length: 128 }, () => roundTo(rand() * 4 - 2, dtype)); // b transposed: [n][k]
      const c = Array.from({ length: 128 }, () => Math.fround(rand() - 0.5));
      const d = probe('mma', [dtype === 'bfloat16' ? 1 : 0, ...a, ...bt, ...c]);
      for (let m = 0; m < 16; ++m)
        for (let n = 0; n < 8; ++n) {
          let want = c[m * 8 + n]!;
          for (let k = 0; k < 16; ++k) want += a[m * 16 + k]! * bt[n * 16 + k]!;
          expect(d[m * 8 + n], `d[${m}][${n}]`).to.be.closeTo(want, 1e-5 * Math.max(1, Math.abs(want)));
        }
    });

  it('float32 to float16 and bfloat16: round to nearest even, overflow, subnormals, and the canonical NaN', () => {
    const rand = prng(9);
    const xs = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 + 2 ** -11];
    xs.push(1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity, -Infinity, NaN, 3.4e38, 1e-40);
    for (let i = 0; i < 400; ++i) xs.push((rand() - 0.5) * 2 ** Math.floor(rand() * 60 - 30));
    const f32 = xs.map((x) => Math.fround(x));
    const bits = probe('convert', f32);
    f32.forEach((x, i) => {
      const [h, b] = [bits[2 * i]!, bits[2 * i + 1]!];
      if (Number.isNaN(x)) {
        expect([h, b], 'NaN').to.deep.equal([0x7fff, 0x7fff]);
        return;
      }
      expect(f16Value(h), `float16 of ${x}`).to.equal(roundTo(x, 'float16'));
      expect(bf16Value(b), `bfloat16 of ${x}`).to.equal(roundTo(x, 'bfloat16'));
    });
  });
});

describeEmu('emulated device: what a GPU would hide or crash on is a JS error naming the kernel', () => {
  const faults: [string, RegExp][] = [
    [
      'deadlock',
      new RegExp(
        'cudaErrorLaunchFailure: .*kernel deadlock_kernel: block \\(0,0,0\\): no thread can go on: 63 of 64 .*' +
          '__syncthreads; warp 0 lanes 0x00000001 wait in __shfl_sync',
      ),
    ],
    [
      'exitedLane',
      new RegExp(
        // which lanes have arrived or exited depends on the thread order
        'kernel exited_lane_kernel: .*(exited while lanes 0x[0-9a-f]{8} of its warp wait for it in __shfl_xor_sync|' +
          '__shfl_xor_sync: mask 0xffffffff names lanes 0x[0-9a-f]{8} that have exited)',
      ),
    ],
    [
      'partialWarp',
      /kernel partial_warp_kernel: .*__shfl_xor_sync: mask 0xffffffff names lanes 0xffff0000 past the block's last/,
    ],
    [
      'misaligned',
      /cudaErrorMisalignedAddress: .*kernel misaligned_kernel: .*misaligned access: .* needs 16-byte alignment/,
    ],
    ['overflow', /cudaErrorIllegalAddress: .*kernel overflow_kernel: a write outside the 256-byte allocation/],
  ];
  for (const [name, pattern] of faults)
    it(`${name}`, () => {
      expectThrow(() => probe(name), MiniVllmError, pattern);
      expect(probe('shfl', [3, 1, 32])[0], 'the device works after the fault').to.equal(11);
    });

  it('launches out of sm_90 limits: threads per block, grid dims, dynamic shared memory without the opt-in', () => {
    expect(probe('launch', [1, 1, 64, 256, 0])).to.deep.equal([2]);
    expectThrow(
      () => probe('launch', [1, 1, 2048, 0, 0]),
      MiniVllmError,
      /cudaErrorInvalidConfiguration: .*block \(2048,1,1\)/,
    );
    expectThrow(
      () => probe('launch', [1, 70000, 64, 0, 0]),
      MiniVllmError,
      /cudaErrorInvalidConfiguration: .*grid \(1,70000,1\)/,
    );
    expectThrow(
      () => probe('launch', [1, 1, 64, 64 << 10, 0]),
      MiniVllmError,
      /cudaErrorInvalidValue: .*65536 bytes of dynamic shared memory/,
    );
    expect(probe('launch', [1, 1, 64, 64 << 10, 64 << 10]), 'with the opt-in').to.deep.equal([2]);
  });

  it('a graph replayed after its buffer was freed is an error, not a read of freed memory', () => {
    expectThrow(
      () => probe('graphFreed'),
      MiniVllmError,
      /cudaErrorIllegalAddress: .*kernel fill_kernel: pointer argument 1 points at no live device allocation/,
    );
  });

  it('a capture refuses allocation, synchronisation and host copies with the runtime error, records sets', () => {
    // [call, end of capture] for: cudaMalloc, cudaStreamSynchronize, host-to-device, device-to-host, cudaMemsetAsync
    const [unsupported, invalidated] = [900, 901];
    expect(probe('captureRefusals')).to.deep.equal([
      ...[unsupported, invalidated],
      ...[unsupported, invalidated],
      ...[unsupported, invalidated],
      ...[unsupported, invalidated],
      ...[0, 0],
    ]);
  });

  it('new device memory is poisoned (NaN), and the emulated memory size bounds allocations (out of memory)', () => {
    const t = Tensor.empty([8], { device: 'cuda' });
    expect(Array.from(t.toArray()).every(Number.isNaN)).to.equal(true);
    t.dispose();
    // a small device (MINI_VLLM_EMU_MEMORY), in a child: 40 MB fits in 64 MB, the second 40 MB does not
    const lib = JSON.stringify(new URL('../../lib/index.js', import.meta.url).href);
    const out = child(
      `import { Tensor, backends } from ${lib};
       const a = Tensor.empty([10 << 20], { device: 'cuda' });
       try { Tensor.empty([10 << 20], { device: 'cuda' }); console.log('no error'); }
       catch (e) { console.log(backends().cuda.devices[0].totalMemory, e.code, e.message); }`,
      { MINI_VLLM_EMU_MEMORY: '64M' },
    );
    expect(out).to.match(/^67108864 ERR_OUT_OF_MEMORY .*CUDA out of memory/);
  });
});

describeEmu('emulated device: thread order', () => {
  it('a missing barrier changes the result between two seeded orders; with the barrier both orders agree', function () {
    this.timeout(60_000);
    const lib = JSON.stringify(new URL('../../lib/native.js', import.meta.url).href);
    const run = (seed: number, barrier: number) =>
      child(
        `import { native } from ${lib}; console.log(JSON.stringify(native.emuProbe('neighbour', [${barrier}, 4])));`,
        {
          MINI_VLLM_EMU_SEED: String(seed),
        },
      );
    expect(run(1, 1)).to.equal(run(2, 1));
    expect(run(0, 1)).to.equal(run(1, 1));
    expect(run(1, 0)).to.not.equal(run(2, 0));
  });
});
