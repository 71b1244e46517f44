// Per-channel scan parameters of one block of W channels, loaded once per block as packs: shared
// by the 1-D scan (selective_scan_cpu.cpp) and the fused 2-D multi-direction scan (scan_2d_cpu.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "simd_pack.h"

namespace serpentir_scan {

// Per-channel parameters of one channel block, as packs.
template <typename T>
struct BlockParams {
  std::vector<Pack<T>> A;         // A[n], lanes = channels
  std::vector<Pack<T>> A_scaled;  // A[n] * kExpArgScale, the argument scale of exp_of_scaled
  Pack<T> D, bias;
  BlockParams(const at::Tensor& A_, const std::optional<at::Tensor>& D_, const std::optional<at::Tensor>& bias_,
              int64_t c0, int lanes, int64_t N)
      : A(N), A_scaled(N) {
    const T* a = A_.data_ptr<T>();
    T tmp[W];
    for (int64_t n = 0; n < N; ++n) {
      for (int w = 0; w < W; ++w) tmp[w] = w < lanes ? a[(c0 + w) * N + n] : T(0);
      A[n] = Pack<T>::load(tmp);
      A_scaled[n] = A[n] * Pack<T>::fill(Pack<T>::kExpArgScale);
    }
    auto lanes_of = [&](const std::optional<at::Tensor>& v) {
      for (int w = 0; w < W; ++w) tmp[w] = (v.has_value() && w < lanes) ? v->data_ptr<T>()[c0 + w] : T(0);
      return Pack<T>::load(tmp);
    };
    D = lanes_of(D_);
    bias = lanes_of(bias_);
  }
};

}  // namespace serpentir_scan
