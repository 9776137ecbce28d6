// RoPE's frequencies and cos/sin table, computed as vLLM and Hugging Face compute them (float32). A neutral module:
// the op's cache (ops.ropeCosSinCache), the model config (rope_scaling) and the reference all read it.

/** RoPE frequency scaling, as Hugging Face's rope_scaling: 'linear' divides every frequency by factor; 'llama3'
 * (Llama 3.1+) divides the low frequencies, keeps the high ones and blends the band between. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/** The rotaryDim/2 inverse frequencies 1 / base^(2i / rotaryDim), scaled if asked, rounded to float32. */
export function ropeInvFreq(rotaryDim: number, base: number, scaling: RopeScaling | null = null): Float32Array {
  const half = rotaryDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; ++i) {
    const f = 1 / Math.fround(base ** Math.fround((2 * i) / rotaryDim));
    if (scaling === null) inv[i] = f;
    else if (scaling.type === 'linear') inv[i] = f / scaling.factor;
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
 * k = rotaryDim/2, f_i = 1 / base^(2i / rotaryDim). Frequencies and angles are float32, as in vLLM and Hugging Face.
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
  const table = new Float32Array(maxPosition * rotaryDim);
  for (let p = 0; p < maxPosition; ++p) {
    for (let i = 0; i < half; ++i) {
      const angle = Math.fround(p * invFreq[i]!);
      table[p * rotaryDim + i] = Math.cos(angle);
      table[p * rotaryDim + half + i] = Math.sin(angle);
    }
  }
  return table;
}
