// One time step of the S6 recurrence for a block of W channels, forward and adjoint: the arithmetic
// shared by the 1-D scan (selective_scan_cpu.cpp) and the fused 2-D scan (scan_2d_cpu.cpp), which
// differ only in where a step's inputs come from. NS > 0 is the state size known at compile time
// (the loops unroll and the states stay in registers); NS == 0 takes N at run time.
#pragma once

#include <cstdint>

#include "block_params.h"
#include "simd_pack.h"

namespace serpentir_scan {

// h[n] = exp(delta A[n]) h[n] + delta u B[n]; returns D u + sum_n C[n] h[n] (before any gate).
template <typename T, int NS>
inline Pack<T> state_step(const BlockParams<T>& prm, int64_t N_, const Pack<T>& delta, const Pack<T>& ut,
                          const T* Bt, const T* Ct, Pack<T>* h) {
  using P = Pack<T>;
  const int64_t N = NS ? NS : N_;
  const P du = delta * ut;
  P y_even = prm.D * ut, y_odd = P::fill(T(0));  // two sums: half the latency of one chain
#pragma GCC unroll 16
  for (int64_t n = 0; n < N; ++n) {
    h[n] = fma(exp_of_scaled(delta * prm.A_scaled[n]), h[n], du * P::fill(Bt[n]));
    if (n & 1)
      y_odd = fma(P::fill(Ct[n]), h[n], y_odd);
    else
      y_even = fma(P::fill(Ct[n]), h[n], y_even);
  }
  return y_even + y_odd;
}

// The backward's recomputation of one step from the previous state: the decays a[n] and states hs[n].
template <typename T, int NS>
inline void recompute_step(const BlockParams<T>& prm, int64_t N_, const Pack<T>& delta, const Pack<T>& ut,
                           const T* Bt, const Pack<T>* prev, Pack<T>* a, Pack<T>* hs) {
  using P = Pack<T>;
  const int64_t N = NS ? NS : N_;
  const P du = delta * ut;
#pragma GCC unroll 16
  for (int64_t n = 0; n < N; ++n) {
    a[n] = exp_of_scaled(delta * prm.A_scaled[n]);
    hs[n] = fma(a[n], prev[n], du * P::fill(Bt[n]));
  }
}

// One step of the adjoint recurrence, backwards in time, with dyp the gradient on the ungated output:
//   g[n] = C[n] dyp + a[t+1, n] g_next[n]      (g_next carries a[t+1] g[t+1] in and a[t] g[t] out)
//   dC[n] = dyp hs[n],  dB[n] = g[n] delta u,  dA[n] += g[n] a[n] prev[n] delta
// and returns du = delta sum_n g[n] B[n] + D dyp and the step size's gradient
// sum_n (g[n] B[n] u + g[n] a[n] prev[n] A[n]).
template <typename T, int NS>
inline void adjoint_step(const BlockParams<T>& prm, int64_t N_, const Pack<T>& delta, const Pack<T>& ut,
                         const Pack<T>& dyp, const T* Bt, const T* Ct, const Pack<T>* a, const Pack<T>* hs,
                         const Pack<T>* prev, Pack<T>* g_next, Pack<T>* dA_acc, Pack<T>* dB, Pack<T>* dC,
                         Pack<T>& du, Pack<T>& ddelta) {
  using P = Pack<T>;
  const int64_t N = NS ? NS : N_;
  const P dtu = delta * ut;
  P gB = P::fill(T(0)), sA = P::fill(T(0));
#pragma GCC unroll 16
  for (int64_t n = 0; n < N; ++n) {
    const P gt = fma(P::fill(Ct[n]), dyp, g_next[n]);
    const P st = gt * a[n] * prev[n];
    dC[n] = dyp * hs[n];
    dB[n] = gt * dtu;
    gB = fma(gt, P::fill(Bt[n]), gB);
    sA = fma(st, prm.A[n], sA);
    dA_acc[n] = fma(st, delta, dA_acc[n]);
    g_next[n] = a[n] * gt;
  }
  du = fma(delta, gB, prm.D * dyp);
  ddelta = fma(gB, ut, sA);
}

}  // namespace serpentir_scan
