// Reference sampling in float64: which tokens each filter keeps, with what probability, and which token a uniform
// draw picks. The native sampler (ops.sampleRows) is held to it.

export interface ReferenceSampleParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/** The kept token ids (in id order) and their renormalised probabilities. temperature must be > 0. */
export function keptDistribution(
  logits: ArrayLike<number>,
  p: ReferenceSampleParams,
): { ids: number[]; probs: number[] } {
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; ++i) max = Math.max(max, logits[i]!);
  const weight = (i: number) => Math.exp((logits[i]! - max) / p.temperature);
  // Highest logit first, then the lower id.
  let cand = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  // min-p: prob >= minP * maxProb, that is logit >= max + T log(minP)
  if (p.minP > 0) cand = cand.filter((i) => logits[i]! >= max + p.temperature * Math.log(p.minP));
  if (p.topK > 0) cand = cand.slice(0, p.topK);
  if (p.topP < 1) {
    const total = cand.reduce((s, i) => s + weight(i), 0);
    let mass = 0;
    let keep = cand.length;
    for (let j = 0; j < cand.length; ++j) {
      mass += weight(cand[j]!);
      if (mass >= p.topP * total) {
        keep = j + 1;
        break;
      }
    }
    cand = cand.slice(0, keep);
  }
  const ids = cand.sort((a, b) => a - b);
  const z = ids.reduce((s, i) => s + weight(i), 0);
  return { ids, probs: ids.map((i) => weight(i) / z) };
}

/** The token a uniform draw u in [0, 1) picks: walk the kept ids in id order until the cumulative mass passes u. */
export function sampleReference(logits: ArrayLike<number>, p: ReferenceSampleParams, u: number): number {
  if (p.temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; ++i) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  const { ids, probs } = keptDistribution(logits, p);
  let acc = 0;
  for (let j = 0; j < ids.length; ++j) {
    acc += probs[j]!;
    if (acc > u) return ids[j]!;
  }
  return ids.at(-1)!;
}

/** sampleRows on [rows, vocab] logits: the token each row's draw picks under that row's settings. */
export function sampleRows(
  logits: ArrayLike<number>,
  rows: number,
  vocab: number,
  params: {
    temperature: ArrayLike<number>;
    topK: ArrayLike<number>;
    topP: ArrayLike<number>;
    minP: ArrayLike<number>;
    uniform: ArrayLike<number>;
  },
): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; ++r) {
    const row = Array.prototype.slice.call(logits, r * vocab, (r + 1) * vocab) as number[];
    const p = {
      temperature: params.temperature[r]!,
      topK: params.topK[r]!,
      topP: params.topP[r]!,
      minP: params.minP[r]!,
    };
    out[r] = sampleReference(row, p, params.uniform[r]!);
  }
  return out;
}

/** Whether bit `token % 32` of mask word `token / 32` is set (a set bit allows the token). */
export function bitmaskAllows(mask: ArrayLike<number>, token: number): boolean {
  return ((mask[Math.floor(token / 32)]! >>> (token % 32)) & 1) === 1;
}

/** logits [numRows, vocab] with -Infinity wherever mask row i refuses a token of logits row rows[i]. */
export function applyTokenBitmask(
  logits: ArrayLike<number>,
  vocab: number,
  bitmask: ArrayLike<number>,
  rows: readonly number[],
): Float32Array {
  const out = Float32Array.from(logits);
  const words = Math.ceil(vocab / 32);
  rows.forEach((row, i) => {
    const mask = Array.from({ length: words }, (_, w) => bitmask[i * words + w]!);
    for (let t = 0; t < vocab; ++t) if (!bitmaskAllows(mask, t)) out[row * vocab + t] = -Infinity;
  });
  return out;
}
