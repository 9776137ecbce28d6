// Paged attention for prefill and mixed batches on tensor cores (f16 / bf16): FlashAttention-2 over the paged cache.
//
// One block per (sequence, tile of 64 rows, KV head), 4 warps of 16 rows. A row is a (query token, query head) pair
// of the KV head's group, token-major, so the group's heads share every K/V tile the block loads (FlashInfer's GQA
// packing). Per key tile (64 keys, 32 at head size 256): the slot of each key is looked up once into shared memory,
// then its K and V rows arrive by cp.async into padded shared rows (the next tile's copies overlap this tile's math);
// S = Q·Kᵀ and O += P·V run on mma.sync m16n8k16 with fragments from ldmatrix (V through .trans), the online softmax
// stays in registers, P goes from the S accumulators straight into the A fragments of P·V. Causal masking is applied
// only to tiles that reach past the smallest position of the block's rows.
//
// Sequences with one query token (decodes in a mixed batch) are left to the decode kernel (attention_decode with
// only_single), which serves a KV head's whole group from one block instead of one row of a 64-row tile.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "attention.cuh"
#include "ptx.cuh"

namespace mvllm::cuda {
namespace {

constexpr int kRows = 64, kWarps = 4, kThreads = kWarps * 32;

// Keys per tile: 64, or 32 at head size 256 (shared memory and registers).
template <int D>
constexpr int key_tile() {
  return D > 128 ? 32 : 64;
}
// Shared row pitch in elements: 16 bytes of padding make 8 consecutive rows fall in 8 different bank groups (D / 8 + 1
// is odd for every D that is a multiple of 16), so ldmatrix does not conflict.
template <int D>
constexpr int pitch() {
  return D + 8;
}
template <int D>
constexpr size_t smem_bytes() {
  return size_t(kRows + 4 * key_tile<D>()) * pitch<D>() * 2 + size_t(2 * key_tile<D>()) * sizeof(int64_t);
}

// Two floats rounded to T, the first in the low half: the register layout of an mma.sync fragment.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  Pack<T, 2> p;
  p.v[0] = from_f<T>(lo);
  p.v[1] = from_f<T>(hi);
  return *reinterpret_cast<const uint32_t*>(&p);
}

// grid: (numSeqs, ceil(maxQueryLen * group / 64), numKvHeads), block: 128, dynamic shared memory smem_bytes<D>().
template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
    prefill_mma_kernel(T* __restrict__ out, int64_t out_s0, int64_t out_s1, const T* __restrict__ query, int64_t q_s0,
                       int64_t q_s1, const T* __restrict__ key_cache, const T* __restrict__ value_cache, MetaArgs m,
                       int num_heads, int kv_heads, float scale, bool skip_single, unsigned* flags) {
  constexpr int BN = key_tile<D>(), P = pitch<D>(), CH = D / 8;  // CH: 16-byte chunks per row
  MVLLM_DYNAMIC_SHARED(uint4, smem_raw);
  T* q_s = reinterpret_cast<T*>(smem_raw);                         // [64][P]
  T* k_s = q_s + kRows * P;                                        // [2][BN][P]
  T* v_s = k_s + 2 * BN * P;                                       // [2][BN][P]
  int64_t* slot_s = reinterpret_cast<int64_t*>(v_s + 2 * BN * P);  // [2][BN]: element offset of the key's row, or -1

  const int s = blockIdx.x, kvh = blockIdx.z;
  if (!seq_valid(m, s, flags)) return;
  const int q_start = m.query_start_loc[s], q_len = m.query_start_loc[s + 1] - q_start;
  if (skip_single && q_len == 1) return;  // the decode kernel's
  const int group = num_heads / kv_heads;
  const int row0 = blockIdx.y * kRows;
  if (row0 >= q_len * group) return;
  const int first_pos = m.seq_lens[s] - q_len;
  const int rows = min(kRows, q_len * group - row0);
  const int min_pos = first_pos + row0 / group, max_pos = first_pos + (row0 + rows - 1) / group;
  const int64_t slot_stride = int64_t(kv_heads) * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;

  // Q rows (zeros past the block's rows), by cp.async in the first group.
  for (int c = threadIdx.x; c < kRows * CH; c += kThreads) {
    const int r = c / CH, ch = c % CH;
    const int row = row0 + r, tok = row / group, h = kvh * group + row % group;
    const bool in = r < rows;
    cp_async16(q_s + r * P + ch * 8, in ? query + int64_t(q_start + tok) * q_s0 + int64_t(h) * q_s1 + ch * 8 : query,
               in ? 16 : 0);
  }
  // keys [lo, max_pos]: none before the first row's sliding window is read (a tile's slots before lo are zero-filled)
  const int lo = window_start(m, min_pos);
  const int t0 = lo / BN, tiles = (max_pos + 1 + BN - 1) / BN;
  // Stage the slots of tile t, then start its K/V copies (the caller commits).
  auto load = [&](int t) {
    const int buf = t & 1, k0 = t * BN;
    __syncthreads();  // slot_s[buf] and the buffers were last read two tiles ago, before this point
    for (int j = threadIdx.x; j < BN; j += kThreads) {
      const int p = k0 + j;
      int64_t off = -1;
      if (p >= lo && p <= max_pos) {
        const int64_t blk = block_of(m, s, p, flags);
        if (blk >= 0) off = (blk * m.block_size + p % m.block_size) * slot_stride + int64_t(kvh) * D;
      }
      slot_s[buf * BN + j] = off;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < BN * CH; c += kThreads) {
      const int j = c / CH, ch = c % CH;
      const int64_t off = slot_s[buf * BN + j];
      T* kd = k_s + (buf * BN + j) * P + ch * 8;
      T* vd = v_s + (buf * BN + j) * P + ch * 8;
      cp_async16(kd, off >= 0 ? key_cache + off + ch * 8 : key_cache, off >= 0 ? 16 : 0);
      cp_async16(vd, off >= 0 ? value_cache + off + ch * 8 : value_cache, off >= 0 ? 16 : 0);
    }
  };
  load(t0);
  cp_async_commit();

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float mx[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // rows g and g + 8 of this warp
  const int wr = warp * 16;
  // This lane's two rows: their positions (a row past the block's rows takes the last one's, and is not written).
  int pos[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) pos[h] = first_pos + (row0 + min(wr + g + 8 * h, rows - 1)) / group;

  int lo_row[2];  // each of this lane's two rows' first visible key
#pragma unroll
  for (int h = 0; h < 2; ++h) lo_row[h] = window_start(m, pos[h]);
  for (int t = t0; t < tiles; ++t) {
    if (t + 1 < tiles) load(t + 1);
    cp_async_commit();
    cp_async_wait<1>();  // everything but tile t + 1's copies
    __syncthreads();
    const T* ks = k_s + (t & 1) * BN * P;
    const T* vs = v_s + (t & 1) * BN * P;
    const int k0 = t * BN;

    float sc[BN / 8][4];
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
#pragma unroll
    for (int kd = 0; kd < D / 16; ++kd) {
      uint32_t a[4];
      ldmatrix_x4(a, q_s + (wr + (lane & 15)) * P + (2 * kd + (lane >> 4)) * 8);
#pragma unroll
      for (int jp = 0; jp < BN / 16; ++jp) {
        uint32_t r[4];
        ldmatrix_x4(r, ks + (jp * 16 + (lane & 7) + ((lane >> 4) << 3)) * P + (2 * kd + ((lane >> 3) & 1)) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(sc[2 * jp], a, b0);
        mma16816<T>(sc[2 * jp + 1], a, b1);
      }
    }

    // Scale, soft-cap, mask (only where the tile reaches past the smallest position, or before the largest one's
    // window), and the online softmax per row.
    const bool masked = k0 + BN - 1 > min_pos || k0 < window_start(m, max_pos);
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = k0 + j * 8 + 2 * tq + (e & 1);
        float v = soft_cap(m, sc[j][e] * scale);
        if (masked && (key > pos[e >> 1] || key < lo_row[e >> 1])) v = -INFINITY;
        sc[j][e] = v;
        tile_max[e >> 1] = fmaxf(tile_max[e >> 1], v);
      }
    float corr[2], sum[2] = {0.f, 0.f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
      const float mn = fmaxf(mx[h], tile_max[h]);
      corr[h] = mx[h] == -INFINITY ? 0.f : __expf(mx[h] - mn);
      mx[h] = mn;
    }
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float mn = mx[e >> 1];
        const float p = sc[j][e] == -INFINITY ? 0.f : __expf(sc[j][e] - mn);
        sc[j][e] = p;
        sum[e >> 1] += p;
      }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 1);
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 2);
      l[h] = l[h] * corr[h] + sum[h];
    }
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[j][0] *= corr[0];
      o[j][1] *= corr[0];
      o[j][2] *= corr[1];
      o[j][3] *= corr[1];
    }

    // O += P · V, 16 keys at a time; P's A fragment is the S accumulators of two adjacent key tiles.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const uint32_t a[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]), pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                             pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                             pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int dj = 0; dj < D / 8; dj += 2) {
        uint32_t r[4];
        ldmatrix_x4_trans(r, vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * P + (dj + (lane >> 4)) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(o[dj], a, b0);
        if (dj + 1 < D / 8) mma16816<T>(o[dj + 1], a, b1);
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = wr + g + 8 * h;
    if (r >= rows) continue;
    const int row = row0 + r, tok = row / group, head = kvh * group + row % group;
    T* dst = out + int64_t(q_start + tok) * out_s0 + int64_t(head) * out_s1;
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int d = j * 8 + 2 * tq;
      dst[d] = from_f<T>(o[j][2 * h] * inv);
      dst[d + 1] = from_f<T>(o[j][2 * h + 1] * inv);
    }
  }
}

template <typename T, int D>
bool launch(const TensorView& out, const TensorView& query, const TensorView& key_cache, const TensorView& value_cache,
            const MetaArgs& m, float scale, int max_q, cudaStream_t st, unsigned* flags) {
  const int device = key_cache.device_index;
  static const bool tensor_cores = mma_supported(prefill_mma_kernel<T, D>);
  constexpr size_t smem = smem_bytes<D>();
  if (!tensor_cores || smem > smem_optin(device)) return false;
  check(cudaFuncSetAttribute(prefill_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
        "pagedAttention (shared memory)");
  const int num_heads = int(query.size(1)), kv_heads = int(key_cache.size(2));
  const int group = num_heads / kv_heads;
  const int64_t tiles = (int64_t(std::max(1, max_q)) * group + kRows - 1) / kRows;
  if (tiles > 65535 || kv_heads > 65535)
    fail(ErrorKind::Range, "pagedAttention: too many query tokens per sequence or heads for the CUDA grid");
  dim3 grid(unsigned(m.num_seqs), unsigned(tiles), unsigned(kv_heads));
  MVLLM_LAUNCH(grid, kThreads, smem, st, prefill_mma_kernel<T, D>)(
      out.ptr<T>(), out.stride(0), out.stride(1), query.ptr<T>(), query.stride(0), query.stride(1), key_cache.ptr<T>(),
      value_cache.ptr<T>(), m, num_heads, kv_heads, scale, true, flags);
  check_launch("pagedAttention (prefill, tensor cores)");
  return true;
}

template <typename T>
bool dispatch_head(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                   const TensorView& value_cache, const MetaArgs& m, float scale, int max_q, cudaStream_t st,
                   unsigned* flags) {
  switch (key_cache.size(3)) {
    case 64: return launch<T, 64>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
    case 80: return launch<T, 80>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
    case 96: return launch<T, 96>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
    case 112: return launch<T, 112>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
    case 128: return launch<T, 128>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
    case 256: return launch<T, 256>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
    default: return false;
  }
}

}  // namespace

bool attention_prefill_mma(const TensorView& out, const TensorView& query, const TensorView& key_cache,
                           const TensorView& value_cache, const MetaArgs& m, float scale, int max_q, cudaStream_t st,
                           unsigned* flags) {
  // 16-byte rows: cp.async needs every query row, and the pools, aligned (the head size is a multiple of 8).
  const bool aligned = aligned16(query.data) && aligned16(key_cache.data) && aligned16(value_cache.data) &&
                       query.stride(0) % 8 == 0 && query.stride(1) % 8 == 0 && query.stride(2) == 1;
  if (!aligned) return false;
  if (query.dtype == DType::Float16)
    return dispatch_head<__half>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
  if (query.dtype == DType::BFloat16)
    return dispatch_head<__nv_bfloat16>(out, query, key_cache, value_cache, m, scale, max_q, st, flags);
  return false;
}

}  // namespace mvllm::cuda
