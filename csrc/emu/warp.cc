// What a warp operation computes once every lane of its mask has arrived: the shuffles (with the PTX ISA's segment
// rules), the votes, and mma.sync m16n8k16 (the PTX ISA fragment layout). scheduler.cc decides when.
#include <cstdint>
#include <cstring>
#include <string>

#include "internal.h"

namespace mvllm::emu {

const char* op_name(WarpOpKind k) {
  switch (k) {
    case WarpOpKind::Shfl: return "__shfl_sync";
    case WarpOpKind::ShflUp: return "__shfl_up_sync";
    case WarpOpKind::ShflDown: return "__shfl_down_sync";
    case WarpOpKind::ShflXor: return "__shfl_xor_sync";
    case WarpOpKind::Ballot: return "__ballot_sync";
    case WarpOpKind::Any: return "__any_sync";
    case WarpOpKind::All: return "__all_sync";
    case WarpOpKind::SyncWarp: return "__syncwarp";
    case WarpOpKind::MmaF16: return "mma.sync.m16n8k16.f16";
    case WarpOpKind::MmaBf16: return "mma.sync.m16n8k16.bf16";
    case WarpOpKind::LdMatrix: return "ldmatrix.sync.m8n8.b16";
  }
  return "?";
}

void warp_compute(WarpOpKind kind, unsigned mask, WarpArgs* const (&lanes)[32], uint64_t (&results)[32]) {
  if (kind == WarpOpKind::MmaF16 || kind == WarpOpKind::MmaBf16) {
    // The PTX ISA fragment layout, g = lane / 4, t = lane % 4: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 =
    // A[g][2t+8..], a3 = A[g+8][2t+8..]; b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]; c0, c1 = C[g][2t, 2t+1],
    // c2, c3 = C[g+8][2t, 2t+1]. A 32-bit register holds the lower column (or row) in its low half.
    const bool bf = kind == WarpOpKind::MmaBf16;
    auto f = [bf](uint32_t reg, int hi) {
      const uint16_t h = uint16_t(hi ? reg >> 16 : reg & 0xffffu);
      return bf ? double(bf16_to_float(h)) : double(f16_to_float(h));
    };
    double A[16][16], B[16][8], C[16][8];
    for (int lane = 0; lane < 32; ++lane) {
      const WarpArgs& w = *lanes[lane];
      const int g = lane >> 2, t = lane & 3;
      for (int h = 0; h < 2; ++h) {
        A[g][2 * t + h] = f(w.a[0], h);
        A[g + 8][2 * t + h] = f(w.a[1], h);
        A[g][2 * t + 8 + h] = f(w.a[2], h);
        A[g + 8][2 * t + 8 + h] = f(w.a[3], h);
        B[2 * t + h][g] = f(w.b[0], h);
        B[2 * t + 8 + h][g] = f(w.b[1], h);
      }
      C[g][2 * t] = w.d[0];
      C[g][2 * t + 1] = w.d[1];
      C[g + 8][2 * t] = w.d[2];
      C[g + 8][2 * t + 1] = w.d[3];
    }
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane >> 2, t = lane & 3;
      float* d = lanes[lane]->d;
      for (int e = 0; e < 4; ++e) {
        const int r = g + (e >= 2 ? 8 : 0), c = 2 * t + (e & 1);
        double acc = C[r][c];
        for (int k = 0; k < 16; ++k) acc += A[r][k] * B[k][c];
        d[e] = float(acc);
      }
    }
    return;
  }
  if (kind == WarpOpKind::LdMatrix) {
    // Every lane must name the same count; lanes 8i..8i+7 give the rows of matrix i, each 16 bytes, 16-byte aligned.
    const int n = lanes[0]->arg & 0xff;
    const bool trans = lanes[0]->arg & 0x100;
    for (int lane = 0; lane < 32; ++lane)
      if (lanes[lane]->arg != lanes[0]->arg || (n != 1 && n != 2 && n != 4))
        fault(cudaErrorLaunchFailure, "ldmatrix: the lanes of a warp must all load .x1, .x2 or .x4 alike");
    for (int lane = 0; lane < 8 * n; ++lane)
      if (lanes[lane]->value & 15)
        fault(cudaErrorMisalignedAddress,
              ("ldmatrix: lane " + std::to_string(lane) + "'s row address is not 16-byte aligned").c_str());
    auto at = [&](int i, int r, int c) {  // element (r, c) of matrix i
      uint16_t v;
      std::memcpy(&v, reinterpret_cast<const char*>(uintptr_t(lanes[8 * i + r]->value)) + 2 * c, 2);
      return uint32_t(v);
    };
    for (int lane = 0; lane < 32; ++lane)
      for (int i = 0; i < n; ++i) {
        const int a = lane / 4, b = 2 * (lane % 4);
        lanes[lane]->regs[i] = trans ? at(i, b, a) | at(i, b + 1, a) << 16 : at(i, a, b) | at(i, a, b + 1) << 16;
      }
    return;
  }
  unsigned votes = 0;
  for (int lane = 0; lane < 32; ++lane)
    if ((mask >> lane & 1) && lanes[lane]->value) votes |= 1u << lane;
  for (int lane = 0; lane < 32; ++lane) {
    if (!(mask >> lane & 1)) continue;
    uint64_t& result = results[lane];
    const WarpArgs& w = *lanes[lane];
    switch (kind) {
      case WarpOpKind::Ballot: result = votes; continue;
      case WarpOpKind::Any: result = votes != 0; continue;
      case WarpOpKind::All: result = votes == mask; continue;
      case WarpOpKind::SyncWarp: result = 0; continue;
      default: break;
    }
    // shfl.sync per the PTX ISA: c = ((32 - width) << 8) | (up ? 0 : 31); segmask = c[12:8].
    const int segmask = (32 - w.width) & 31, cval = kind == WarpOpKind::ShflUp ? 0 : 31, b = w.arg & 31;
    const int max_lane = (lane & segmask) | (cval & ~segmask), min_lane = lane & segmask;
    int j = lane;
    bool ok = false;
    switch (kind) {
      case WarpOpKind::ShflUp: j = lane - b, ok = j >= max_lane; break;
      case WarpOpKind::ShflDown: j = lane + b, ok = j <= max_lane; break;
      case WarpOpKind::ShflXor: j = lane ^ b, ok = j <= max_lane; break;
      default: j = min_lane | (b & ~segmask), ok = j <= max_lane; break;
    }
    if (!ok) j = lane;
    // A source lane outside the mask: undefined on the device; all ones (a NaN) here, so it shows.
    result = (mask >> j & 1) ? lanes[j]->value : ~uint64_t(0);
  }
}

}  // namespace mvllm::emu
