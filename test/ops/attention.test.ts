// pagedAttention against the reference: batches of sequences of random lengths whose K/V live in shuffled blocks of
// a large pool that is otherwise NaN (stale memory), written there by reshapeAndCache, in the spirit of vLLM's tests.
import { expect } from 'chai';

import { type Device, FLOAT_DTYPES, type FloatDType, Tensor, ops } from '../../lib/index.js';
import * as ref from '../../lib/reference/index.js';
import {
  UNIT_ROUNDOFF,
  describeKernel,
  onEmulator,
  drawDistinct as drawBlocks,
  expectThrow,
  expectWithin,
  halfUlp,
  poisoned,
  prng,
  randn,
  uniform,
} from '../helpers.js';

interface Geometry {
  numHeads: number;
  numKvHeads: number;
  headSize: number;
  blockSize: number;
}

/** One sequence of the batch: its context length (this step's tokens included) and this step's tokens. */
interface SeqSpec {
  seqLen: number;
  qLen: number;
}

interface Batch {
  out: Tensor;
  query: Tensor;
  keyCache: Tensor;
  valueCache: Tensor;
  meta: ops.AttentionMetadata;
  /** the reference from the inputs as stored, before its rounding to dtype, and the magnitudes behind the bound */
  terms: ref.AttentionTerms;
  /** per query token: whether CUDA's tensor-core prefill computes it (P rounded to 16 bits for P·V) */
  tensorCore: boolean[];
  free: () => void;
}

/** How q, K and V are drawn. */
interface Inputs {
  /**
   * The standard deviation of q's and K's components: a scaled logit q·k/√headSize then has standard deviation qkStd²
   * whatever the head size (default √2: logits spread over a few units, so a kernel that gets Q·K wrong is far off).
   */
  qkStd?: number;
  /**
   * One key per sequence and KV head aligned with a direction that every query of its group shares, 8 units of logit
   * above the rest, so it takes most of the softmax: the last, middle or first position, by sequence.
   */
  dominant?: boolean;
  /** meta.slidingWindow; the K/V before every query token's window are NaN in the pool (they must not be read) */
  slidingWindow?: number;
  /** meta.logitsSoftCap */
  logitsSoftCap?: number;
}

/**
 * Builds a batch: the pool (NaN everywhere), every sequence's K/V written into it with reshapeAndCache through
 * shuffled block tables (padded with ids past the pool, which must never be read), the query, and the
 * reference output. V is uniform in [-1, 1).
 */
function buildBatch(
  seed: number,
  g: Geometry,
  seqs: SeqSpec[],
  dtype: FloatDType,
  device: Device,
  inputs: Inputs = {},
): Batch {
  const rand = prng(seed);
  const { numHeads, numKvHeads, headSize, blockSize } = g;
  const qkStd = inputs.qkStd ?? Math.SQRT2;
  const blocksPer = seqs.map((s) => Math.ceil(s.seqLen / blockSize));
  const width = Math.max(...blocksPer) + 2;
  const slotElems = numKvHeads * headSize;
  // thousands of blocks where the pool stays small enough to fill quickly (16 times fewer on the emulated device,
  // where a fill of 2^24 elements takes half a second); always room for the batch
  const needed = blocksPer.reduce((a, b) => a + b, 0);
  const poolElems = onEmulator(device) ? 1 << 20 : 1 << 24;
  const numBlocks = Math.max(2 * needed, Math.min(4096, Math.floor(poolElems / (blockSize * slotElems))));
  const ids = drawBlocks(rand, numBlocks, needed);
  const tables: number[][] = [];
  let next = 0;
  for (const n of blocksPer) {
    const row = ids.slice(next, next + n);
    next += n;
    while (row.length < width) row.push(numBlocks + 1000 + row.length); // never read
    tables.push(row);
  }
  // every context token's K/V, written to the pool by reshapeAndCache
  const totalCtx = seqs.reduce((a, s) => a + s.seqLen, 0);
  const slots = new Int32Array(totalCtx);
  let t = 0;
  seqs.forEach((s, i) => {
    for (let p = 0; p < s.seqLen; ++p)
      slots[t++] = tables[i]![Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
  });
  const keys = randn(rand, totalCtx * slotElems, qkStd);
  const values = uniform(rand, totalCtx * slotElems, 1);
  const qsl = [0];
  for (const s of seqs) qsl.push(qsl.at(-1)! + s.qLen);
  const numTokens = qsl.at(-1)!;
  const queries = randn(rand, numTokens * numHeads * headSize, qkStd);
  if (inputs.dominant) {
    // query += a·u for every query head of KV head kh; K[p*] = a·u: a logit of scale · a² = 8 above the others
    const a = Math.sqrt(8 * Math.sqrt(headSize));
    let ctx = 0;
    seqs.forEach((s, i) => {
      const star = [s.seqLen - 1, s.seqLen >> 1, 0][i % 3]!;
      for (let kh = 0; kh < numKvHeads; ++kh) {
        const u = randn(rand, headSize);
        const norm = Math.hypot(...u);
        for (let d = 0; d < headSize; ++d) {
          keys[((ctx + star) * numKvHeads + kh) * headSize + d] = (a * u[d]!) / norm;
          for (let tok = qsl[i]!; tok < qsl[i + 1]!; ++tok)
            for (let h = kh * (numHeads / numKvHeads); h < (kh + 1) * (numHeads / numKvHeads); ++h)
              queries[(tok * numHeads + h) * headSize + d]! += (a * u[d]!) / norm;
        }
      }
      ctx += s.seqLen;
    });
  }
  const w = inputs.slidingWindow ?? 0;
  if (w > 0) {
    // every position before its sequence's first query token's window holds NaN: read, it poisons the output
    let ctx = 0;
    for (const s of seqs) {
      const before = Math.max(0, s.seqLen - s.qLen - w + 1);
      keys.fill(NaN, ctx * slotElems, (ctx + before) * slotElems);
      values.fill(NaN, ctx * slotElems, (ctx + before) * slotElems);
      ctx += s.seqLen;
    }
  }
  const key = Tensor.fromArray(keys, [totalCtx, numKvHeads, headSize], { dtype, device });
  const value = Tensor.fromArray(values, [totalCtx, numKvHeads, headSize], { dtype, device });
  const keyCache = Tensor.full([numBlocks, blockSize, numKvHeads, headSize], NaN, { dtype, device });
  const valueCache = Tensor.full([numBlocks, blockSize, numKvHeads, headSize], NaN, { dtype, device });
  const slotT = Tensor.fromArray(slots, [totalCtx], { dtype: 'int32', device });
  ops.reshapeAndCache(key, value, keyCache, valueCache, slotT);
  // the reference's pool: a sparse host copy holding what the tensors hold
  const shape = { blockSize, numKvHeads, headSize };
  const hostK = new Float32Array(numBlocks * blockSize * slotElems);
  const hostV = new Float32Array(numBlocks * blockSize * slotElems);
  ref.reshapeAndCache(key.toArray(), value.toArray(), hostK, hostV, slots, shape);

  const query = Tensor.fromArray(queries, [numTokens, numHeads, headSize], { dtype, device });
  const scale = 1 / Math.sqrt(headSize);
  const seqLens = seqs.map((s) => s.seqLen);
  const outElems = numTokens * numHeads * headSize;
  const terms: ref.AttentionTerms = {
    exact: new Float64Array(outElems),
    absWeighted: new Float64Array(outElems),
    scoreMagnitude: new Float64Array(numTokens * numHeads),
  };
  ref.pagedAttention(
    query.toArray(),
    hostK,
    hostV,
    { queryStartLoc: qsl, seqLens, blockTables: tables, scale, slidingWindow: w, logitsSoftCap: inputs.logitsSoftCap },
    numHeads,
    shape,
    dtype,
    terms,
  );
  const maxQueryLen = Math.max(...seqs.map((s) => s.qLen));
  // csrc/cuda/attention.cu: a batch is a decode batch when maxQueryLen is 1 or every sequence has one token
  const decodeBatch = maxQueryLen === 1 || numTokens === seqs.length;
  const tensorCore = seqs.flatMap((s) =>
    new Array<boolean>(s.qLen).fill(device === 'cuda' && dtype !== 'float32' && !decodeBatch && s.qLen > 1),
  );
  const meta = {
    queryStartLoc: Tensor.fromArray(qsl, [qsl.length], { dtype: 'int32', device }),
    seqLens: Tensor.fromArray(seqLens, [seqs.length], { dtype: 'int32', device }),
    blockTables: Tensor.fromArray(tables.flat(), [seqs.length, width], { dtype: 'int32', device }),
    scale,
    maxSeqLen: Math.max(...seqLens),
    maxQueryLen,
    ...(w > 0 ? { slidingWindow: w } : {}),
    ...(inputs.logitsSoftCap ? { logitsSoftCap: inputs.logitsSoftCap } : {}),
  };
  const out = poisoned([numTokens, numHeads, headSize], dtype, device);
  const all = [out, query, keyCache, valueCache, key, value, slotT, meta.queryStartLoc, meta.seqLens, meta.blockTables];
  return { out, query, keyCache, valueCache, meta, terms, tensorCore, free: () => all.forEach((x) => x.dispose()) };
}

/** n sequences with random context lengths in [1, maxLen), the last one the longest (maxLen). */
function randomSeqs(seed: number, n: number, maxLen: number, qLen: (seqLen: number, i: number) => number): SeqSpec[] {
  const rand = prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const seqLen = i === n - 1 ? maxLen : 1 + Math.floor(rand() * (maxLen - 1));
    return { seqLen, qLen: qLen(seqLen, i) };
  });
}

const HEADS: [number, number][] = [
  [8, 8],
  [32, 8],
  [64, 8],
  [17, 17],
];
const HEAD_SIZES = [64, 80, 96, 112, 128, 256];

/** fp32 arithmetic, as a multiple of u·W·(1 + S) (see attentionBound). */
const FP32_SLACK = 4;

/**
 * How far a kernel's out may be from the exact attention of the inputs as stored, element by element. The kernels
 * compute in fp32 from the stored q, K and V (the reference uses the same values, so input rounding is not an error):
 * - fp32 arithmetic: a score's rounding is relative to S = scale · Σ|q·k|, and moves the output by about u·S·W, where
 *   W = Σ softmax · |V| (what the output is a weighted mean of); the exponentials, the sums and P·V add a few u·W.
 * - CUDA's tensor-core prefill rounds the probabilities to the 16-bit dtype for the P·V product (the normaliser keeps
 *   them in fp32): at most u_dtype · W.
 * - storing out in dtype: half an ulp of the result.
 * Before: TOL (fp16 1e-3 + 2e-3 relative, bf16 1e-2 + 1.6e-2) on outputs of 6e-4..1.8e-2, which an all-zeros output
 * passed.
 */
function attentionBound(b: Batch, dtype: FloatDType, heads: number, headSize: number): Float64Array {
  const { exact, absWeighted, scoreMagnitude } = b.terms;
  const bound = new Float64Array(exact.length);
  for (let e = 0; e < exact.length; ++e) {
    const row = Math.floor(e / headSize);
    const tok = Math.floor(row / heads);
    const W = absWeighted[e]!;
    const err =
      FP32_SLACK * UNIT_ROUNDOFF.float32 * W * (1 + scoreMagnitude[row]!) +
      (b.tensorCore[tok] ? UNIT_ROUNDOFF[dtype] * W : 0);
    bound[e] = err + halfUlp(dtype, Math.abs(exact[e]!) + err);
  }
  return bound;
}

function check(b: Batch, dtype: FloatDType): void {
  ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, b.meta);
  const [, heads, headSize] = b.out.shape as [number, number, number];
  expectWithin(b.out.toArray(), b.terms.exact, attentionBound(b, dtype, heads, headSize), 'out');
  b.free();
}

describeKernel('pagedAttention', (device) => {
  // decode: one query token per sequence
  // The dtype rotates so that every head size meets every dtype over the four head counts.
  let i = 0;
  HEADS.forEach(([numHeads, numKvHeads], a) => {
    for (const headSize of HEAD_SIZES)
      for (const blockSize of [16, 32]) {
        const seed = i++;
        const dtype = FLOAT_DTYPES[(seed + a) % 3]!;
        it(`decode ${dtype} heads ${numHeads}/${numKvHeads} x ${headSize}, block ${blockSize}, 8 seqs`, () => {
          const seqs = randomSeqs(seed, 8, headSize >= 256 ? 150 : 300, () => 1);
          check(
            buildBatch(
              1000 + numHeads * headSize + blockSize,
              { numHeads, numKvHeads, headSize, blockSize },
              seqs,
              dtype,
              device,
            ),
            dtype,
          );
        });
      }
  });

  for (const dtype of FLOAT_DTYPES) {
    for (const [numHeads, numKvHeads] of HEADS) {
      const g = { numHeads, numKvHeads, headSize: 128, blockSize: 16 };
      it(`prefill ${dtype} heads ${numHeads}/${numKvHeads}: 7 whole prompts`, () => {
        const seqs = randomSeqs(numHeads, 7, 40, (len) => len);
        check(buildBatch(1, g, seqs, dtype, device), dtype);
      });
      it(
        `mixed ${dtype} heads ${numHeads}/${numKvHeads}: prefills, chunked prefills, prefix hits and decodes in one ` +
          `batch`,
        () => {
          // qLen: whole prompt, a chunk of a longer context (chunked prefill / prefix-cache hit), or one token
          const seqs = randomSeqs(
            numHeads + 1,
            9,
            70,
            (len, k) => [len, Math.max(1, len >> 1), 1, Math.min(len, 5)][k % 4]!,
          );
          check(buildBatch(2, g, seqs, dtype, device), dtype);
        },
      );
    }
    it(`prefill ${dtype}, blocks of 8 and 24 keys (not a multiple of 16): whole prompts, a chunk, a decode`, () => {
      // the CPU prefill holds a block's keys transposed, its rows padded to the vector width (16 lanes at avx512)
      for (const blockSize of [8, 24]) {
        const g = { numHeads: 8, numKvHeads: 2, headSize: 64, blockSize };
        const seqs = [
          { seqLen: 37, qLen: 37 },
          { seqLen: 50, qLen: 21 },
          { seqLen: 9, qLen: 9 },
          { seqLen: 30, qLen: 1 },
        ];
        check(buildBatch(30 + blockSize, g, seqs, dtype, device), dtype);
      }
    });
    it(`chunked prefill ${dtype}: one 100-token prompt in chunks of 40, 37 and 23 tokens, beside a decode`, () => {
      const g = { numHeads: 32, numKvHeads: 8, headSize: 80, blockSize: 32 };
      // each chunk's queries attend to everything cached before them plus their own causal prefix
      for (const [seqLen, qLen] of [
        [40, 40],
        [77, 37],
        [100, 23],
      ] as const) {
        check(
          buildBatch(
            4,
            g,
            [
              { seqLen, qLen },
              { seqLen: 100, qLen: 1 },
            ],
            dtype,
            device,
          ),
          dtype,
        );
      }
    });
    it(`sliding window ${dtype}: decodes, prompts, a chunk and a long split decode; keys before it are NaN`, () => {
      // windows shorter than, across and longer than the contexts; the window's start mid-block and on a block edge
      for (const [slidingWindow, blockSize] of [
        [37, 16],
        [16, 16],
        [1, 16],
        [100, 32],
        [500, 16],
      ] as const) {
        const g = { numHeads: 32, numKvHeads: 8, headSize: 128, blockSize };
        const seqs = [
          { seqLen: 300, qLen: 1 },
          { seqLen: 45, qLen: 45 },
          { seqLen: 120, qLen: 20 },
          { seqLen: 17, qLen: 1 },
          { seqLen: 64, qLen: 64 },
        ];
        check(buildBatch(40 + slidingWindow, g, seqs, dtype, device, { slidingWindow }), dtype);
        // decode alone: one long sequence on one KV head, split across threads (CPU) or SMs (CUDA)
        const long = { numHeads: 4, numKvHeads: 1, headSize: 64, blockSize };
        check(buildBatch(7, long, [{ seqLen: 1500, qLen: 1 }], dtype, device, { slidingWindow }), dtype);
      }
    });
    it(`soft-capped logits ${dtype} (Gemma 2's 50, and 3 on logits spread over 6 units), windowed or not`, () => {
      const g = { numHeads: 16, numKvHeads: 8, headSize: 256, blockSize: 16 };
      const seqs = [
        { seqLen: 90, qLen: 1 },
        { seqLen: 33, qLen: 33 },
        { seqLen: 70, qLen: 9 },
      ];
      for (const logitsSoftCap of [50, 3])
        for (const slidingWindow of [0, 24])
          check(buildBatch(50, g, seqs, dtype, device, { qkStd: Math.sqrt(6), logitsSoftCap, slidingWindow }), dtype);
    });
    it(`large logits ${dtype}: a spread of 6 units (a peaked softmax, online rescaling)`, () => {
      const g = { numHeads: 8, numKvHeads: 2, headSize: 64, blockSize: 16 };
      const seqs = randomSeqs(9, 4, 200, (len, k) => (k === 3 ? 9 : 1));
      check(buildBatch(5, g, seqs, dtype, device, { qkStd: Math.sqrt(6) }), dtype);
    });
    it(`one dominant key ${dtype}: last, middle or first, takes most of the softmax; masked before it`, () => {
      // decodes, a prefill whose early tokens must not see a later dominant key (the causal mask), and a chunk
      const g = { numHeads: 32, numKvHeads: 8, headSize: 128, blockSize: 16 };
      const seqs = [
        { seqLen: 70, qLen: 1 },
        { seqLen: 45, qLen: 45 },
        { seqLen: 90, qLen: 1 },
        { seqLen: 33, qLen: 33 },
        { seqLen: 120, qLen: 20 },
        { seqLen: 17, qLen: 1 },
      ];
      check(buildBatch(13, g, seqs, dtype, device, { dominant: true }), dtype);
      check(
        buildBatch(
          14,
          g,
          seqs.filter((s) => s.qLen === 1),
          dtype,
          device,
          { dominant: true },
        ),
        dtype,
      );
    });
  }

  for (const dtype of FLOAT_DTYPES)
    it(`split contexts ${dtype}: one KV head, 3000 and 700 keys, the parts merged, a dominant key in one`, () => {
      // 2 sequences x 1 KV head: fewer tasks than 4 per thread on any machine, so the CPU splits each context into
      // parts of 256 keys or more and merges them (CUDA splits long decodes by its SM count)
      const g = { numHeads: 8, numKvHeads: 1, headSize: 128, blockSize: 16 };
      const seqs = [
        { seqLen: 3000, qLen: 1 },
        { seqLen: 700, qLen: 1 },
      ];
      check(buildBatch(15, g, seqs, dtype, device, { dominant: true }), dtype);
      check(buildBatch(16, g, seqs, dtype, device), dtype);
    });

  // Every head size of the tensor-core prefill kernel (64-key tiles, 32 at 256), GQA 4: whole prompts across several
  // 64-row tiles and key tiles, a chunk after a cached prefix, decodes beside them, and a one-token prompt.
  for (const headSize of HEAD_SIZES)
    for (const dtype of ['float16', 'bfloat16'] as const)
      it(`prefill and mixed ${dtype} heads 32/8 x ${headSize}: prompts across tiles, a cached prefix, decodes`, () => {
        const g = { numHeads: 32, numKvHeads: 8, headSize, blockSize: 16 };
        const seqs = [
          { seqLen: 130, qLen: 130 },
          { seqLen: 75, qLen: 1 },
          { seqLen: 97, qLen: 33 },
          { seqLen: 1, qLen: 1 },
          { seqLen: 17, qLen: 17 },
        ];
        check(buildBatch(headSize + (dtype === 'float16' ? 1 : 2), g, seqs, dtype, device), dtype);
      });

  it('a long decode (4k context, 1 sequence) and a batch of 64 short ones', () => {
    const g = { numHeads: 32, numKvHeads: 8, headSize: 128, blockSize: 16 };
    check(buildBatch(6, g, [{ seqLen: 4000, qLen: 1 }], 'bfloat16', device), 'bfloat16');
    check(
      buildBatch(
        7,
        g,
        randomSeqs(8, 64, 64, () => 1),
        'float16',
        device,
      ),
      'float16',
    );
  });

  it('a sequence with no query tokens this step leaves nothing to write', () => {
    const g = { numHeads: 8, numKvHeads: 8, headSize: 64, blockSize: 16 };
    check(
      buildBatch(
        8,
        g,
        [
          { seqLen: 20, qLen: 3 },
          { seqLen: 9, qLen: 0 },
          { seqLen: 33, qLen: 1 },
        ],
        'float32',
        device,
      ),
      'float32',
    );
  });

  describe('bad arguments', () => {
    const g = { numHeads: 8, numKvHeads: 2, headSize: 64, blockSize: 16 };
    const seqs = [
      { seqLen: 20, qLen: 20 },
      { seqLen: 35, qLen: 1 },
    ];
    const int = (data: number[], shape: number[]): Tensor => Tensor.fromArray(data, shape, { dtype: 'int32', device });

    it('shape, dtype and head-count mismatches throw naming the argument', () => {
      const b = buildBatch(9, g, seqs, 'float32', device);
      const q16 = Tensor.zeros([21, 8, 64], { dtype: 'float16', device });
      expect(() => ops.pagedAttention(b.out, q16, b.keyCache, b.valueCache, b.meta)).to.throw(
        TypeError,
        /pagedAttention: query dtype float16 does not match keyCache/,
      );
      const q7 = Tensor.zeros([21, 7, 64], { device });
      expect(() => ops.pagedAttention(b.out, q7, b.keyCache, b.valueCache, b.meta)).to.throw(
        RangeError,
        /pagedAttention: out .*numHeads of query/,
      );
      const out7 = Tensor.zeros([21, 7, 64], { device });
      expect(() => ops.pagedAttention(out7, q7, b.keyCache, b.valueCache, b.meta)).to.throw(
        RangeError,
        /numHeads \(7\) must be a multiple of numKvHeads \(2\)/,
      );
      const q32 = Tensor.zeros([21, 8, 32], { device });
      expect(() => ops.pagedAttention(b.out, q32, b.keyCache, b.valueCache, b.meta)).to.throw(
        RangeError,
        /pagedAttention: query .*headSize/,
      );
      const badQsl = { ...b.meta, queryStartLoc: int([0, 21], [2]) };
      expect(() => ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, badQsl)).to.throw(
        RangeError,
        /queryStartLoc .*numSeqs \+ 1/,
      );
      const floatLens = { ...b.meta, seqLens: Tensor.fromArray([20, 35], [2], { device }) };
      expect(() => ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, floatLens)).to.throw(
        TypeError,
        /seqLens must have dtype int32/,
      );
      expect(() => ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, { ...b.meta, scale: NaN })).to.throw(
        RangeError,
        /scale/,
      );
      expect(() =>
        ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, { ...b.meta, maxSeqLen: 1e6 }),
      ).to.throw(RangeError, /maxSeqLen .*capacity/);
      expect(() =>
        ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, { ...b.meta, maxSeqLen: 1.5 }),
      ).to.throw(RangeError, /maxSeqLen must be a non-negative integer/);
      expect(() => ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, null as never)).to.throw(
        TypeError,
        /meta must be an object/,
      );
      expect(() => ops.pagedAttention(b.out, b.query, b.keyCache, b.query, b.meta)).to.throw(
        RangeError,
        /valueCache must be 4-D/,
      );
      [q16, q7, out7, q32, badQsl.queryStartLoc, floatLens.seqLens].forEach((t) => t.dispose());
      b.free();
    });

    // CPU checks the values before computing; CUDA finds them on the device and throws at the next synchronize.
    // [what, metadata, CPU message, CUDA message (the device reports the kind of fault, not the index)]
    const cases: [string, (b: Batch) => ops.AttentionMetadata, RegExp, RegExp][] = [
      [
        'a block id out of range',
        (b) => ({ ...b.meta, blockTables: int([0, 1, 4, 5, 2, 99999, 7, 8], [2, 4]) }),
        /blockTables\[1, 1\] = 99999 is outside \[0, numBlocks/,
        /a blockTables entry is outside \[0, numBlocks\)/,
      ],
      [
        'a negative block id',
        (b) => ({ ...b.meta, blockTables: int([0, 1, 4, 5, -3, 6, 7, 8], [2, 4]) }),
        /blockTables\[1, 0\] = -3 is outside/,
        /a blockTables entry is outside/,
      ],
      [
        "seqLens above the block tables' capacity",
        (b) => ({ ...b.meta, seqLens: int([20, 200], [2]), maxSeqLen: undefined }),
        /seqLens\[1\] = 200 is above the block tables' capacity/,
        /inconsistent seqLens/,
      ],
      [
        'seqLens below the query length',
        (b) => ({ ...b.meta, seqLens: int([19, 35], [2]) }),
        /seqLens\[0\] = 19 is below that sequence's 20 query tokens/,
        /inconsistent seqLens/,
      ],
      [
        'queryStartLoc not ending at numTokens',
        (b) => ({ ...b.meta, queryStartLoc: int([0, 20, 22], [3]) }),
        /queryStartLoc\[2\] = 22 must equal numTokens/,
        /inconsistent .*queryStartLoc/,
      ],
      [
        'a negative sliding window',
        (b) => ({ ...b.meta, slidingWindow: -2 }),
        /meta.slidingWindow must be a non-negative integer, got -2/,
        /meta.slidingWindow must be a non-negative integer, got -2/,
      ],
      [
        'a soft cap that is not a finite number >= 0',
        (b) => ({ ...b.meta, logitsSoftCap: NaN }),
        /meta.logitsSoftCap must be a finite number >= 0, got nan/i,
        /meta.logitsSoftCap must be a finite number >= 0, got nan/i,
      ],
      [
        'seqLens above maxSeqLen',
        (b) => ({ ...b.meta, maxSeqLen: 30 }),
        /seqLens\[1\] = 35 is above maxSeqLen 30/,
        /inconsistent seqLens/,
      ],
    ];
    it("a query past maxQueryLen is a RangeError; that sequence's rows keep what they held (split KV)", () => {
      // maxQueryLen 1 sends the batch down the decode path; contexts past 512 keys split it in two partitions. The
      // second sequence's two query tokens break the promise: its rows must not be written (no stale partials).
      const g1 = { numHeads: 4, numKvHeads: 2, headSize: 64, blockSize: 16 };
      const b = buildBatch(
        12,
        g1,
        [
          { seqLen: 600, qLen: 1 },
          { seqLen: 640, qLen: 2 },
        ],
        'float32',
        device,
      );
      // a good split-KV call first, so the device scratch holds partials of rows this batch shares
      ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, b.meta);
      b.out.toArray();
      b.out.fill(7);
      expectThrow(
        () => {
          ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, { ...b.meta, maxQueryLen: 1 });
          b.out.toArray();
        },
        RangeError,
        device === 'cpu' ? /2 query tokens, above maxQueryLen 1/ : /inconsistent seqLens/,
      );
      const rowElems = g1.numHeads * g1.headSize;
      const rows = b.out.toArray().subarray(rowElems); // tokens 1 and 2: the second sequence
      expect(Array.from(rows).every((v) => v === 7)).to.equal(true, 'the bad sequence rows were written');
      b.free();
    });

    for (const [what, meta, cpuPattern, cudaPattern] of cases) {
      it(`${what} is a RangeError`, () => {
        const b = buildBatch(10, g, seqs, 'float32', device);
        const pattern = device === 'cpu' ? cpuPattern : cudaPattern;
        expectThrow(
          () => {
            ops.pagedAttention(b.out, b.query, b.keyCache, b.valueCache, meta(b));
            b.out.toArray();
          },
          RangeError,
          new RegExp(`pagedAttention: ${pattern.source}`),
        );
        b.free();
      });
    }
  });
});
