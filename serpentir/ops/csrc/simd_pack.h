// A pack of W lanes of one floating type: the only vector abstraction the scan kernel uses.
//
// The kernel vectorises over W neighbouring channels (one pack = one channel block) so that every
// time step is pure lane-wise arithmetic with no horizontal sums in the forward. With AVX2 a
// float pack is one __m256 with hand-written exp/log (exp is ~75% of the scan's time, and
// scalar libm calls would dominate); every other case (double, or a CPU without AVX2) uses a
// plain array whose loops the compiler may vectorise, with libm for exactness.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace serpentir_scan {

constexpr int W = 8;  // lanes (channels) per pack

// torch's softplus: x above the threshold passes through unchanged (F.softplus, beta=1).
constexpr double kSoftplusThreshold = 20.0;

template <typename T>
struct Pack {
  T v[W];

  // The decays exp(delta * A) go through exp_of_scaled(delta * (A * kExpArgScale)): the AVX2 float
  // pack computes 2^x (scale log2(e), folded into A once per channel block), which saves the range
  // reduction's multiplications; elsewhere it is exp itself, exact for float64 gradchecks.
  static constexpr T kExpArgScale = T(1);

  static Pack fill(T x) {
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = x;
    return r;
  }
  static Pack load(const T* p) {
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = p[i];
    return r;
  }
  void store(T* p) const {
    for (int i = 0; i < W; ++i) p[i] = v[i];
  }
  T sum() const {
    T s = 0;
    for (int i = 0; i < W; ++i) s += v[i];
    return s;
  }
  friend Pack operator+(const Pack& a, const Pack& b) {
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = a.v[i] + b.v[i];
    return r;
  }
  friend Pack operator*(const Pack& a, const Pack& b) {
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = a.v[i] * b.v[i];
    return r;
  }
  friend Pack fma(const Pack& a, const Pack& b, const Pack& c) {  // a * b + c
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
    return r;
  }
  friend Pack exp(const Pack& a) {
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = std::exp(a.v[i]);
    return r;
  }
  friend Pack exp_of_scaled(const Pack& a) { return exp(a); }
  friend Pack softplus(const Pack& a) {
    Pack r;
    for (int i = 0; i < W; ++i)
      r.v[i] = a.v[i] > T(kSoftplusThreshold) ? a.v[i] : std::log1p(std::exp(a.v[i]));
    return r;
  }
  // d softplus / dx, with torch's convention of exactly 1 above the threshold
  friend Pack softplus_grad(const Pack& a) {
    Pack r;
    for (int i = 0; i < W; ++i) {
      T e = std::exp(a.v[i]);
      r.v[i] = a.v[i] > T(kSoftplusThreshold) ? T(1) : e / (e + T(1));
    }
    return r;
  }
  friend Pack sigmoid(const Pack& a) {
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = T(1) / (T(1) + std::exp(-a.v[i]));
    return r;
  }
};

// out[i] = in[i].sum() for i < count: lane sums of many packs (dB and dC reduce over channels).
template <typename T>
inline void lane_sums(const Pack<T>* in, int64_t count, T* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = in[i].sum();
}

#ifdef __AVX2__

template <>
struct Pack<float> {
  __m256 v;
  static constexpr float kExpArgScale = 1.44269504088896341f;  // log2(e)

  static Pack make(__m256 x) {
    Pack r;
    r.v = x;
    return r;
  }
  static Pack fill(float x) { return make(_mm256_set1_ps(x)); }
  static Pack load(const float* p) { return make(_mm256_loadu_ps(p)); }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  float sum() const {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  friend Pack operator+(const Pack& a, const Pack& b) { return make(_mm256_add_ps(a.v, b.v)); }
  friend Pack operator*(const Pack& a, const Pack& b) { return make(_mm256_mul_ps(a.v, b.v)); }
  friend Pack fma(const Pack& a, const Pack& b, const Pack& c) { return make(_mm256_fmadd_ps(a.v, b.v, c.v)); }

  // exp(x) = 2^k * exp(r) with k = round(x / ln 2) and |r| <= ln(2) / 2 (Cody-Waite split of ln 2);
  // exp(r) by Cephes' degree-5 polynomial, ~1 ulp. k is rounded by adding 1.5 * 2^23 (the sum's
  // low mantissa bits are then k itself), and 2^k is built from those bits. x is clamped to
  // [-88, 88.38]: at -88 k = -127, whose 2^k bits are 0, so every x below about -87.7 gives exactly
  // 0, which is what a decay exp(delta * A) of -70 or -1000 per step should be.
  friend Pack exp(const Pack& a) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23
    __m256 x = _mm256_max_ps(_mm256_min_ps(a.v, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-88.0f));
    __m256 j = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 k = _mm256_sub_ps(j, magic);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i two_k = _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(j), _mm256_set1_epi32(127)), 23);
    return make(_mm256_mul_ps(y, _mm256_castsi256_ps(two_k)));
  }

  // 2^x = 2^k * 2^f with k = round(x), |f| <= 1/2; 2^f by Cephes' exp2f polynomial. Clamped to
  // [-127, 127.49]: k = -127 gives 2^k bits of 0, so very strong decays are exactly 0.
  friend Pack exp_of_scaled(const Pack& a) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23
    __m256 x = _mm256_max_ps(_mm256_min_ps(a.v, _mm256_set1_ps(127.49f)), _mm256_set1_ps(-127.0f));
    __m256 j = _mm256_add_ps(x, magic);
    __m256 f = _mm256_sub_ps(x, _mm256_sub_ps(j, magic));
    __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
    __m256 y = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i two_k = _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(j), _mm256_set1_epi32(127)), 23);
    return make(_mm256_mul_ps(y, _mm256_castsi256_ps(two_k)));
  }

  // log(x) for x >= 1 (all the kernel needs): x = 2^e * m with m in [sqrt(1/2), sqrt(2)),
  // log(m) by Cephes' polynomial in m - 1.
  static __m256 log_ge1(__m256 x) {
    __m256i bits = _mm256_castps_si256(x);
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    __m256 m = _mm256_or_ps(_mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x007fffff))),
                            _mm256_set1_ps(0.5f));  // m in [0.5, 1)
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(small, _mm256_set1_ps(1.0f)));
    m = _mm256_add_ps(_mm256_sub_ps(m, _mm256_set1_ps(1.0f)), _mm256_and_ps(small, m));  // m - 1, doubled if small
    __m256 z = _mm256_mul_ps(m, m);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(3.3333331174e-1f));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, m), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(m, y));
  }

  // softplus(x) = log1p(exp(x)); log1p(e) = log(1 + e) * e / ((1 + e) - 1) keeps full relative
  // precision when e is tiny (Goldberg's trick), and is e itself when 1 + e rounds to 1.
  friend Pack softplus(const Pack& a) {
    __m256 e = exp(a).v;
    __m256 u = _mm256_add_ps(e, _mm256_set1_ps(1.0f));
    __m256 um1 = _mm256_sub_ps(u, _mm256_set1_ps(1.0f));
    __m256 exact = _mm256_cmp_ps(um1, _mm256_setzero_ps(), _CMP_EQ_OQ);
    __m256 l = _mm256_mul_ps(log_ge1(u), _mm256_div_ps(e, _mm256_blendv_ps(um1, _mm256_set1_ps(1.0f), exact)));
    l = _mm256_blendv_ps(l, e, exact);
    __m256 above = _mm256_cmp_ps(a.v, _mm256_set1_ps(float(kSoftplusThreshold)), _CMP_GT_OQ);
    return make(_mm256_blendv_ps(l, a.v, above));
  }
  friend Pack sigmoid(const Pack& a) {
    __m256 e = exp(make(_mm256_sub_ps(_mm256_setzero_ps(), a.v))).v;
    return make(_mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
  }
  friend Pack softplus_grad(const Pack& a) {
    __m256 above = _mm256_cmp_ps(a.v, _mm256_set1_ps(float(kSoftplusThreshold)), _CMP_GT_OQ);
    return make(_mm256_blendv_ps(sigmoid(a).v, _mm256_set1_ps(1.0f), above));
  }
};

// Eight packs at a time: three rounds of pairwise horizontal adds give eight lane sums in one pack.
template <>
inline void lane_sums<float>(const Pack<float>* in, int64_t count, float* out) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 s01 = _mm256_hadd_ps(in[i].v, in[i + 1].v), s23 = _mm256_hadd_ps(in[i + 2].v, in[i + 3].v);
    __m256 s45 = _mm256_hadd_ps(in[i + 4].v, in[i + 5].v), s67 = _mm256_hadd_ps(in[i + 6].v, in[i + 7].v);
    __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
    // each 128-bit half now holds partial sums: low halves + high halves give the totals
    __m256 lo = _mm256_permute2f128_ps(s0123, s4567, 0x20), hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
    _mm256_storeu_ps(out + i, _mm256_add_ps(lo, hi));
  }
  for (; i < count; ++i) out[i] = in[i].sum();
}

#endif  // __AVX2__

}  // namespace serpentir_scan
