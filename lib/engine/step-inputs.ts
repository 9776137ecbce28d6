// The step's inputs: one persistent int32 buffer (host staging and its device twin), sized once for the largest step
// and written by both ways a step runs. An eager step (any mix of prefill chunks and decodes) stages its sequences and
// uploads the prefix it uses in one copy; a decode graph (decode-graphs.ts) bakes views of the same buffer into its
// capture, so a replay stages the batch padded to the graph's size and uploads, and the graph reads it in place.
//
//   tokenIds [T] | positions [T] | slotMapping [T] | seqLens [S] | logitsIndices [S] | queryStartLoc [S + 1] |
//   blockTables [S, width]
//
// T = maxNumBatchedTokens, S = maxNumSeqs, width = the longest sequence's blocks. An eager step packs its block tables
// as [numSeqs, its widest table]; a graph reads them as [size, width].
import type { OpProfiler } from '../calls.js';
import type { ForwardInput, LlamaModel } from '../model/llama.js';
import { Tensor } from '../tensor.js';
import type { ScheduledSequence } from './scheduler.js';

/** The largest step the buffer holds (what the model runner is built for). */
export interface StepLimits {
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  /** Block-table width: blocks of the longest sequence (maxModelLen / blockSize, rounded up). */
  maxBlocksPerSeq: number;
}

type Field = 'tokenIds' | 'positions' | 'slotMapping' | 'seqLens' | 'logitsIndices' | 'queryStartLoc' | 'blockTables';

/** The KV-cache slot of position `p` of a sequence whose blocks are `table`: row p % blockSize of its block. */
function slotOf(table: readonly number[], p: number, blockSize: number): number {
  return table[Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
}

export class StepInputs {
  readonly limits: StepLimits;
  readonly host: Int32Array;
  readonly device: Tensor;
  private readonly at: Record<Field, number>;

  constructor(limits: StepLimits, device: LlamaModel['device']) {
    const { maxNumBatchedTokens: T, maxNumSeqs: S, maxBlocksPerSeq: width } = limits;
    for (const [k, v] of Object.entries(limits))
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`StepInputs: ${k} must be a positive integer, got ${v}`);
    this.limits = { ...limits };
    this.at = {
      tokenIds: 0,
      positions: T,
      slotMapping: 2 * T,
      seqLens: 3 * T,
      logitsIndices: 3 * T + S,
      queryStartLoc: 3 * T + 2 * S,
      blockTables: 3 * T + 3 * S + 1,
    };
    this.host = new Int32Array(this.at.blockTables + S * width);
    this.device = Tensor.fromArray(this.host, [this.host.length], { dtype: 'int32', device });
  }

  /** The host staging of one field's first n entries. */
  field(name: Field, n: number): Int32Array {
    return this.host.subarray(this.at[name], this.at[name] + n);
  }

  /** Copies the first n staged ints to the device in one transfer (`profiler` times it). */
  upload(n: number, profiler?: OpProfiler): void {
    this.device.narrow(0, 0, n).write(this.host.subarray(0, n), profiler);
  }

  /**
   * Any step (the eager path): stages every scheduled sequence's tokens, uploads them, and returns the forward input
   * (views of the device buffer). The logits rows are the sampling sequences' last tokens in order; a step of prefill
   * chunks only samples nothing, and the lm-head still runs on one row, whose logits are dropped.
   */
  stageStep(seqs: readonly ScheduledSequence[], blockSize: number, scale: number, profiler?: OpProfiler): ForwardInput {
    const S = seqs.length;
    const { maxNumBatchedTokens: maxTokens, maxNumSeqs: maxSeqs, maxBlocksPerSeq } = this.limits;
    if (S < 1 || S > maxSeqs) throw new RangeError(`StepInputs.stageStep: ${S} sequences, the buffer holds ${maxSeqs}`);
    let width = 1,
      T = 0;
    for (const s of seqs) {
      width = Math.max(width, s.seq.blockTable.length);
      T += s.numTokens;
    }
    if (T > maxTokens) throw new RangeError(`StepInputs.stageStep: ${T} tokens, the buffer holds ${maxTokens}`);
    if (width > maxBlocksPerSeq)
      throw new RangeError(`StepInputs.stageStep: a table of ${width} blocks, the buffer holds ${maxBlocksPerSeq}`);
    const tok = this.field('tokenIds', T),
      pos = this.field('positions', T),
      slot = this.field('slotMapping', T);
    const qsl = this.field('queryStartLoc', S + 1),
      lens = this.field('seqLens', S),
      li = this.field('logitsIndices', S),
      tables = this.field('blockTables', S * width);
    let t = 0,
      numOutputs = 0,
      maxSeqLen = 0,
      maxQueryLen = 0;
    qsl[0] = 0;
    for (let i = 0; i < S; ++i) {
      const { seq, start, numTokens, sample } = seqs[i]!;
      const table = seq.blockTable;
      for (let p = start; p < start + numTokens; ++p, ++t) {
        tok[t] = seq.tokenAt(p);
        pos[t] = p;
        slot[t] = slotOf(table, p, blockSize);
      }
      qsl[i + 1] = t;
      lens[i] = start + numTokens;
      maxSeqLen = Math.max(maxSeqLen, start + numTokens);
      maxQueryLen = Math.max(maxQueryLen, numTokens);
      for (let j = 0; j < width; ++j) tables[i * width + j] = table[j] ?? 0;
      if (sample) li[numOutputs++] = t - 1;
    }
    const rows = Math.max(numOutputs, 1);
    if (numOutputs === 0) li[0] = t - 1;
    this.upload(this.at.blockTables + S * width, profiler);
    return this.views(T, rows, S, width, { scale, maxSeqLen, maxQueryLen });
  }

  /**
   * A decode batch for the graph of `size` rows: stages rows [0, seqs.length) and pads rows up to `size` (slot -1,
   * a one-token context; no sequences: all padding); returns how many leading ints of the buffer the graph reads
   * (what to upload).
   */
  stageDecode(seqs: readonly ScheduledSequence[], size: number, blockSize: number): number {
    const S = seqs.length;
    const largest = Math.min(this.limits.maxNumSeqs, this.limits.maxNumBatchedTokens);
    if (S > size || size < 1 || size > largest)
      throw new RangeError(`StepInputs.stageDecode: ${S} sequences do not fit a graph of ${size} (largest ${largest})`);
    const width = this.limits.maxBlocksPerSeq;
    const tok = this.field('tokenIds', size),
      pos = this.field('positions', size),
      slot = this.field('slotMapping', size);
    const lens = this.field('seqLens', size),
      li = this.field('logitsIndices', size),
      qsl = this.field('queryStartLoc', size + 1),
      tables = this.field('blockTables', size * width);
    for (let i = 0; i < S; ++i) {
      const { seq, start: p, numTokens } = seqs[i]!;
      const table = seq.blockTable;
      if (numTokens !== 1)
        throw new RangeError(
          `StepInputs.stageDecode: sequence ${i} runs ${numTokens} tokens; a decode graph runs one each`,
        );
      if (table.length > width)
        throw new RangeError(
          `StepInputs.stageDecode: sequence ${i} has ${table.length} blocks, the tables hold ${width}`,
        );
      tok[i] = seq.tokenAt(p);
      pos[i] = p;
      slot[i] = slotOf(table, p, blockSize);
      lens[i] = p + 1;
      // entries past the table are never read (attention stops at seqLens), so stale ones may stay
      tables.set(table, i * width);
    }
    for (let i = S; i < size; ++i) {
      tok[i] = 0;
      pos[i] = 0;
      slot[i] = -1;
      lens[i] = 1;
      tables[i * width] = 0;
    }
    // row i is sequence i's one token (an eager step in between may have written other offsets)
    for (let i = 0; i <= size; ++i) {
      if (i < size) li[i] = i;
      qsl[i] = i;
    }
    return this.at.blockTables + size * width;
  }

  /** The forward inputs of a decode graph of `size` rows: views of the device buffer, fixed for the graph's life. */
  decodeInput(size: number, blockSize: number, scale: number): ForwardInput {
    const width = this.limits.maxBlocksPerSeq;
    return this.views(size, size, size, width, { scale, maxSeqLen: width * blockSize, maxQueryLen: 1 });
  }

  /** The forward input over the buffer: T tokens, `rows` logits rows, S sequences, tables S x width. */
  private views(
    T: number,
    rows: number,
    S: number,
    width: number,
    attention: { scale: number; maxSeqLen: number; maxQueryLen: number },
  ): ForwardInput {
    const v = (name: Field, n: number) => this.device.narrow(0, this.at[name], n);
    return {
      tokenIds: v('tokenIds', T),
      positions: v('positions', T),
      slotMapping: v('slotMapping', T),
      logitsIndices: v('logitsIndices', rows),
      attention: {
        queryStartLoc: v('queryStartLoc', S + 1),
        seqLens: v('seqLens', S),
        blockTables: v('blockTables', S * width).view([S, width]),
        ...attention,
      },
    };
  }

  dispose(): void {
    this.device.dispose();
  }
}
