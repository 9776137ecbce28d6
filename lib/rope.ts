// RoPE's frequencies and cos/sin table, computed as vLLM and Hugging Face compute them (float32). A neutral module:
// the op's cache (ops.ropeCosSinCache), the model config (rope_scaling) and the reference all read it.

/**
 * RoPE frequency scaling, as Hugging Face's rope_scaling: 'linear' divides every frequency by factor; 'llama3'
 * (Llama 3.1+) divides the low frequencies, keeps the high ones and blends the band between; 'yarn' (Qwen2.5/3 long
 * context) blends interpolated and extrapolated frequencies over a ramp of dims and scales cos/sin by
 * attentionFactor; 'freqFactors' divides frequency i by factors[i] (a GGUF file's rope_freqs tensor, how llama.cpp's
 * converter stores Llama 3.1's scaling); 'longrope' (Phi-3/3.5/4-mini's LongRoPE) divides frequency i by
 * shortFactors[i] at positions below originalMaxPositionEmbeddings and by longFactors[i] from there on, and scales
 * cos/sin by attentionFactor.
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      /** cos and sin are multiplied by it: rope_scaling.attention_factor, else 0.1 ln(factor) + 1. */
      attentionFactor: number;
    }
  | { type: 'freqFactors'; factors: Float32Array }
  | {
      type: 'longrope';
      shortFactors: Float32Array;
      longFactors: Float32Array;
      /** The first position that takes the long factors. */
      originalMaxPositionEmbeddings: number;
      /** cos and sin are multiplied by it: rope_scaling.attention_factor, else longRopeAttentionFactor. */
      attentionFactor: number;
    };

/**
 * LongRoPE's default attention factor (Hugging Face's and llama.cpp's converter's): sqrt(1 + ln(s) / ln(original)),
 * s = maxPositionEmbeddings / original, and 1 where s <= 1.
 */
export function longRopeAttentionFactor(maxPositionEmbeddings: number, original: number): number {
  const s = maxPositionEmbeddings / original;
  return s <= 1 ? 1 : Math.sqrt(1 + Math.log(s) / Math.log(original));
}

/** YaRN's default attention factor (Hugging Face's get_mscale, llama.cpp's 1 + 0.1 ln(1 / freq_scale)). */
export function yarnAttentionFactor(factor: number): number {
  return factor <= 1 ? 1 : 0.1 * Math.log(factor) + 1;
}

/** YaRN: the dims below `low` keep their frequency, those above `high` are interpolated, a linear ramp between. */
function yarnInvFreq(s: Extract<RopeScaling, { type: 'yarn' }>, rotaryDim: number, base: number, i: number, f: number) {
  // the dim whose wavelength turns `rotations` times over the original context
  const dim = (rotations: number) =>
    (rotaryDim * Math.log(s.originalMaxPositionEmbeddings / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  const low = Math.max(0, Math.floor(dim(s.betaFast)));
  const high = Math.min(rotaryDim - 1, Math.ceil(dim(s.betaSlow)));
  const ramp = Math.min(1, Math.max(0, (i - low) / (high === low ? 0.001 : high - low)));
  const extrapolation = 1 - ramp;
  return (f / s.factor) * (1 - extrapolation) + f * extrapolation;
}

/**
 * The rotaryDim/2 inverse frequencies 1 / base^(2i / rotaryDim), scaled if asked, rounded to float32. LongRoPE's are
 * those of the positions below its original context (short factors), or from there on where `long` is set.
 */
export function ropeInvFreq(
  rotaryDim: number,
  base: number,
  scaling: RopeScaling | null = null,
  long = false,
): Float32Array {
  const half = rotaryDim / 2;
  const inv = new Float32Array(half);
  const divisors =
    scaling?.type === 'freqFactors'
      ? scaling.factors
      : scaling?.type === 'longrope'
        ? long
          ? scaling.longFactors
          : scaling.shortFactors
        : null;
  if (divisors && divisors.length !== half)
    throw new RangeError(`ropeInvFreq: ${divisors.length} frequency factors for ${half} frequencies`);
  for (let i = 0; i < half; ++i) {
    const f = 1 / Math.fround(base ** Math.fround((2 * i) / rotaryDim));
    if (scaling === null) inv[i] = f;
    else if (scaling.type === 'linear') inv[i] = f / scaling.factor;
    else if (scaling.type === 'freqFactors' || scaling.type === 'longrope') inv[i] = f / divisors![i]!;
    else if (scaling.type === 'yarn') inv[i] = yarnInvFreq(scaling, rotaryDim, base, i, f);
    else {
      const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: old } = scaling;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < old / hi)
        inv[i] = f; // high frequency: kept
      else if (wavelen > old / lo)
        inv[i] = f / factor; // low frequency: scaled
      else {
        const smooth = (old / wavelen - lo) / (hi - lo);
        inv[i] = (1 - smooth) * (f / factor) + smooth * f;
      }
    }
  }
  return inv;
}

/**
 * The cos/sin table, row-major [maxPosition, rotaryDim]: row p holds cos(p·f_0..f_{k-1}) then sin(p·f_0..f_{k-1}),
 * k = rotaryDim/2, f_i = 1 / base^(2i / rotaryDim) (scaled as `scaling` says; YaRN and LongRoPE also scale cos and
 * sin). Frequencies and angles are float32, as in vLLM and Hugging Face. LongRoPE's rows below its original context
 * take the short factors and the rest the long ones: a position's rotation never depends on the batch it runs in
 * or on the context the engine was started with (vLLM switches a whole batch to the long factors once any of its
 * positions passes the original context; llama.cpp picks one set from its context size).
 */
export function ropeCosSin(
  rotaryDim: number,
  maxPosition: number,
  base: number,
  scaling: RopeScaling | null = null,
): Float32Array {
  if (!Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim % 2 !== 0)
    throw new RangeError(`ropeCosSinCache: rotaryDim must be an even integer >= 2, got ${rotaryDim}`);
  if (!Number.isInteger(maxPosition) || maxPosition < 1 || maxPosition > 2 ** 24)
    throw new RangeError(`ropeCosSinCache: maxPosition must be an integer in [1, 2^24], got ${maxPosition}`);
  if (typeof base !== 'number' || !Number.isFinite(base) || base <= 1)
    throw new RangeError(`ropeCosSinCache: base must be a finite number > 1, got ${String(base)}`);
  const half = rotaryDim / 2;
  const invFreq = ropeInvFreq(rotaryDim, base, scaling);
  const longFrom = scaling?.type === 'longrope' ? scaling.originalMaxPositionEmbeddings : Infinity;
  const longFreq = scaling?.type === 'longrope' ? ropeInvFreq(rotaryDim, base, scaling, true) : invFreq;
  const m = scaling?.type === 'yarn' || scaling?.type === 'longrope' ? scaling.attentionFactor : 1;
  const table = new Float32Array(maxPosition * rotaryDim);
  for (let p = 0; p < maxPosition; ++p) {
    const inv = p < longFrom ? invFreq : longFreq;
    for (let i = 0; i < half; ++i) {
      const angle = Math.fround(p * inv[i]!);
      table[p * rotaryDim + i] = Math.cos(angle) * m;
      table[p * rotaryDim + half + i] = Math.sin(angle) * m;
    }
  }
  return table;
}
