// The fused 2-D multi-direction selective scan on a CPU: every direction walks the raster-ordered
// feature map by index arithmetic, so no unrolled copy of the map is ever made.
//
// A direction is a walk of the H x W grid: step t visits (row, col) = (t / W, t % W), or with
// `transpose` (t % H, t / H) (column by column), then row -> H-1-row if `flip_rows` and
// col -> W-1-col if `flip_cols`. Raster, row-flipped raster, their reverses and the column walks
// (VMamba's cross scan) are all such walks.
//
// Inputs, all read through their strides (any layout; the layer passes views of its projections):
//   u      (batch, H, W, d)        the branch features, shared by every direction
//   dt     (batch, H, W, K, R)     direction k's low-rank step-size features (Mamba's dt_rank R)
//   dt_w   (K*d, R)                their projection: delta = softplus(dt_w . dt + bias), formed
//                                  per step inside the kernel, so the (K*d)-channel delta of the
//                                  whole map never exists in memory (nor its gradient)
//   B, C   (batch, H, W, K, N)     input and output projections of direction k
//   A      (K*d, N), D, bias (K*d) per-direction parameters, rows k*d .. k*d+d-1
//   h0     (batch, K*d, N)         optional state entering each walk (inference in pieces)
// Output y (batch, H, W, d) = sum_k (scan_k(u) + D_k * u): the merge of the directions is fused.
// For each direction the recurrence is the 1-D one of selective_scan_cpu.cpp (see there for the
// adjoint equations); the backward sums du over directions, and turns the step sizes' gradient dd
// into d dt[t, r] = sum_c dd[t, c] dt_w[c, r], d dt_w[c, r] = sum_t dd[t, c] dt[t, r], dbias = sum_t dd.
//
// Parallel work item = (batch, a set of blocks of W channels), looping over the K directions inside,
// so each item owns its channels of y and du; dB and dC are summed over channel blocks into
// per-slice slabs as in the 1-D kernel.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

#include "block_params.h"
#include "scan_steps.h"
#include "simd_pack.h"

namespace serpentir_scan2d {

using serpentir_scan::BlockParams;
using serpentir_scan::lane_sums;
using serpentir_scan::Pack;
using serpentir_scan::W;
using serpentir_scan::adjoint_step;
using serpentir_scan::recompute_step;
using serpentir_scan::state_step;

struct Walk {
  bool transpose = false, flip_rows = false, flip_cols = false;
};

// A (batch, H, W, [K,] channel) tensor seen through its strides; `k` selects a direction.
template <typename T>
struct GridView {
  T* ptr = nullptr;
  int64_t sb = 0, sr = 0, sc = 0, sk = 0, sch = 0;
  GridView() = default;
  explicit GridView(const at::Tensor& t) {
    ptr = reinterpret_cast<T*>(t.data_ptr());
    sb = t.stride(0), sr = t.stride(1), sc = t.stride(2);
    if (t.dim() == 5) {
      sk = t.stride(3), sch = t.stride(4);
    } else {
      sch = t.stride(3);
    }
  }
  T* at(int64_t b, int64_t k, int64_t ch) const { return ptr + b * sb + k * sk + ch * sch; }
};

// Problem shape, channel blocks and time chunks.
struct Shape {
  int64_t batch, height, width, length, dim, dirs, nstate, blocks, chunk, chunks;
  Shape(const at::Tensor& u, const at::Tensor& B, int64_t chunk_)
      : batch(u.size(0)), height(u.size(1)), width(u.size(2)), length(u.size(1) * u.size(2)), dim(u.size(3)),
        dirs(B.size(3)), nstate(B.size(4)), blocks((dim + W - 1) / W), chunk(chunk_),
        chunks((length + chunk_ - 1) / chunk_) {}
  int lanes(int64_t block) const { return static_cast<int>(std::min<int64_t>(W, dim - block * W)); }
};

// Element offsets (row * stride_r + col * stride_c) of the grid cells visited at steps t0 .. t0+nt-1.
inline void walk_cells(const Walk& w, const Shape& s, int64_t t0, int64_t nt, int64_t* rows, int64_t* cols) {
  // one division for the chunk's first step, then the inner index steps and wraps (a 64-bit
  // division per step would cost about as much as the step's arithmetic)
  const int64_t inner_len = w.transpose ? s.height : s.width;
  int64_t outer = t0 / inner_len, inner = t0 % inner_len;
  for (int64_t i = 0; i < nt; ++i) {
    const int64_t r = w.transpose ? inner : outer, c = w.transpose ? outer : inner;
    rows[i] = w.flip_rows ? s.height - 1 - r : r;
    cols[i] = w.flip_cols ? s.width - 1 - c : c;
    if (++inner == inner_len) inner = 0, ++outer;
  }
}

// buf[i * W + w] = src[b, cell i, k, c0 + w]; absent lanes get 0.
template <typename T>
inline void gather_lanes(const GridView<const T>& src, int64_t b, int64_t k, int64_t c0, int lanes,
                         const int64_t* rows, const int64_t* cols, int64_t nt, T* buf) {
  const T* base = src.at(b, k, c0);
  for (int64_t i = 0; i < nt; ++i) {
    const T* p = base + rows[i] * src.sr + cols[i] * src.sc;
    T* out = buf + i * W;
    if (lanes == W && src.sch == 1) {
      std::copy(p, p + W, out);
    } else {
      for (int w = 0; w < W; ++w) out[w] = w < lanes ? p[w * src.sch] : T(0);
    }
  }
}

// dst[b, cell i, k, c0 + w] (+)= buf[i * W + w] for the block's lanes.
template <typename T>
inline void scatter_lanes(const T* buf, int64_t b, int64_t k, int64_t c0, int lanes, const int64_t* rows,
                          const int64_t* cols, int64_t nt, const GridView<T>& dst, bool accumulate) {
  T* base = dst.at(b, k, c0);
  for (int64_t i = 0; i < nt; ++i) {
    T* p = base + rows[i] * dst.sr + cols[i] * dst.sc;
    const T* in = buf + i * W;
    if (accumulate) {
      for (int w = 0; w < lanes; ++w) p[w * dst.sch] += in[w];
    } else {
      for (int w = 0; w < lanes; ++w) p[w * dst.sch] = in[w];
    }
  }
}

// buf[i * N + n] = X[b, cell i, k, n]: a step's N values as one contiguous row.
template <typename T>
inline void gather_states(const GridView<const T>& X, int64_t b, int64_t k, int64_t N, const int64_t* rows,
                          const int64_t* cols, int64_t nt, T* buf) {
  const T* base = X.at(b, k, 0);
  for (int64_t i = 0; i < nt; ++i) {
    const T* p = base + rows[i] * X.sr + cols[i] * X.sc;
    for (int64_t n = 0; n < N; ++n) buf[i * N + n] = p[n * X.sch];
  }
}

std::vector<Walk> parse_walks(const std::vector<int64_t>& codes) {
  std::vector<Walk> walks;
  for (int64_t code : codes) {
    TORCH_CHECK(code >= 0 && code < 8, "a walk code is 4 * transpose + 2 * flip_rows + flip_cols");
    walks.push_back(Walk{(code & 4) != 0, (code & 2) != 0, (code & 1) != 0});
  }
  return walks;
}

void check_inputs(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& dt_w, const at::Tensor& A,
                  const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                  const std::optional<at::Tensor>& bias, size_t walks) {
  TORCH_CHECK(u.device().is_cpu() && u.dim() == 4, "u must be a (batch, H, W, d) CPU tensor");
  const auto ct = u.scalar_type();
  TORCH_CHECK(ct == at::kFloat || ct == at::kDouble, "the fused 2-D scan computes in float32 or float64");
  const int64_t K = static_cast<int64_t>(walks);
  TORCH_CHECK(dt.dim() == 5 && dt.size(0) == u.size(0) && dt.size(1) == u.size(1) && dt.size(2) == u.size(2) &&
                  dt.size(3) == K && dt.scalar_type() == ct, "dt must be (batch, H, W, K, R) in u's dtype");
  TORCH_CHECK(dt_w.dim() == 2 && dt_w.size(0) == K * u.size(3) && dt_w.size(1) == dt.size(4) &&
                  dt_w.is_contiguous() && dt_w.scalar_type() == ct, "dt_w must be a contiguous (K * d, R) tensor");
  for (const auto* X : {&B, &C})
    TORCH_CHECK(X->dim() == 5 && X->sizes().slice(0, 4) == dt.sizes().slice(0, 4) &&
                    X->size(4) == A.size(1) && X->scalar_type() == ct,
                "B and C must be (batch, H, W, K, N) in u's dtype");
  TORCH_CHECK(A.dim() == 2 && A.size(0) == K * u.size(3) && A.is_contiguous() && A.scalar_type() == ct,
              "A must be a contiguous (K * d, N) tensor in u's dtype");
  for (const auto* v : {&D, &bias})
    if (v->has_value())
      TORCH_CHECK((*v)->dim() == 1 && (*v)->size(0) == K * u.size(3) && (*v)->is_contiguous() &&
                      (*v)->scalar_type() == ct, "D and delta_bias must be contiguous (K * d,) tensors");
}

// ---------------------------------------------------------------------------------------------
// forward

// out[r] = the block's lanes of dt_w[:, r]: the step-size projection, one pack per rank.
template <typename T>
void load_dt_weights(const at::Tensor& dt_w, int64_t ck, int lanes, int64_t R, Pack<T>* out) {
  const T* p = dt_w.data_ptr<T>();
  T tmp[W];
  for (int64_t r = 0; r < R; ++r) {
    for (int w = 0; w < W; ++w) tmp[w] = w < lanes ? p[(ck + w) * R + r] : T(0);
    out[r] = Pack<T>::load(tmp);
  }
}

// The raw step size of step t: bias + sum_r dt_w[:, r] * dt[t, r].
template <typename T>
inline Pack<T> raw_step(const Pack<T>& bias, const Pack<T>* dtw, const T* dt_t, int64_t R) {
  Pack<T> v = bias;
  for (int64_t r = 0; r < R; ++r) v = fma(dtw[r], Pack<T>::fill(dt_t[r]), v);
  return v;
}

template <typename T, int NS>
void forward_kernel(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& dt_w, const at::Tensor& A,
                    const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& h0,
                    const std::vector<Walk>& walks, bool softplus_on, const Shape& s, at::Tensor& y, at::Tensor& last,
                    at::Tensor* ckpt) {
  using P = Pack<T>;
  const int64_t N = NS ? NS : s.nstate, KD = s.dirs * s.dim, R = dt.size(4);
  GridView<const T> u_v(u), dt_v(dt), B_v(B), C_v(C);
  GridView<T> y_v(y);
  const T* h0_p = h0.has_value() ? h0->data_ptr<T>() : nullptr;
  T* last_p = last.data_ptr<T>();
  T* ckpt_p = ckpt ? ckpt->data_ptr<T>() : nullptr;
  // Work item = (batch, a contiguous set of channel blocks): as few sets as keep every thread busy,
  // so that a chunk's walk and its dt, B and C rows (shared by all channels) are gathered once for
  // the whole set, not once per block.
  const int64_t threads = at::get_num_threads();
  const int64_t sets = std::max<int64_t>(1, std::min<int64_t>(s.blocks, (threads + s.batch - 1) / s.batch));
  const int64_t per_set = (s.blocks + sets - 1) / sets;
  const int64_t items = s.batch * sets;

#pragma omp parallel num_threads(std::max<int64_t>(1, std::min<int64_t>(threads, items)))
  {
    const int64_t CT = s.chunk;
    std::vector<T> d_buf(CT * W), u_buf(CT * W), y_buf(CT * W), B_buf(CT * N), C_buf(CT * N), dt_buf(CT * R);
    std::vector<int64_t> rows(CT), cols(CT);
    std::vector<P> states(per_set * N), dtw(per_set * R);  // per block of the set: h[n], dt_w[:, r]
    std::vector<BlockParams<T>> prm;
    prm.reserve(per_set);
    T tmp[W];
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item / sets, first = (item % sets) * per_set;
      const int64_t count = std::max<int64_t>(0, std::min(per_set, s.blocks - first));
      for (int64_t k = 0; k < s.dirs; ++k) {
        prm.clear();
        for (int64_t j = 0; j < count; ++j) {  // the blocks' rows of the per-direction parameters
          const int64_t ck = k * s.dim + (first + j) * W;
          const int lanes = s.lanes(first + j);
          prm.emplace_back(A, D, bias, ck, lanes, N);
          load_dt_weights(dt_w, ck, lanes, R, &dtw[j * R]);
          for (int64_t n = 0; n < N; ++n) {
            for (int w = 0; w < W; ++w) tmp[w] = (h0_p && w < lanes) ? h0_p[(b * KD + ck + w) * N + n] : T(0);
            states[j * N + n] = P::load(tmp);
          }
        }
        for (int64_t chunk = 0; chunk < s.chunks; ++chunk) {
          const int64_t t0 = chunk * CT, nt = std::min(CT, s.length - t0);
          walk_cells(walks[k], s, t0, nt, rows.data(), cols.data());
          gather_states(dt_v, b, k, R, rows.data(), cols.data(), nt, dt_buf.data());
          gather_states(B_v, b, k, N, rows.data(), cols.data(), nt, B_buf.data());
          gather_states(C_v, b, k, N, rows.data(), cols.data(), nt, C_buf.data());
          for (int64_t j = 0; j < count; ++j) {
            const int64_t c0 = (first + j) * W, ck = k * s.dim + c0;
            const int lanes = s.lanes(first + j);
            P* h = &states[j * N];
            if (ckpt_p) {  // the state entering this chunk, as ckpt[b, k * d + c, chunk, n]
              for (int w = 0; w < lanes; ++w)
                for (int64_t n = 0; n < N; ++n)
                  ckpt_p[((b * KD + ck + w) * s.chunks + chunk) * N + n] = reinterpret_cast<const T*>(&h[n])[w];
            }
            gather_lanes(u_v, b, 0, c0, lanes, rows.data(), cols.data(), nt, u_buf.data());
            for (int64_t t = 0; t < nt; ++t) {  // element-wise prologue: independent steps pipeline well
              P delta = raw_step(prm[j].bias, &dtw[j * R], &dt_buf[t * R], R);
              if (softplus_on) delta = softplus(delta);
              delta.store(&d_buf[t * W]);
            }
            for (int64_t t = 0; t < nt; ++t)
              state_step<T, NS>(prm[j], N, P::load(&d_buf[t * W]), P::load(&u_buf[t * W]), &B_buf[t * N],
                                &C_buf[t * N], h).store(&y_buf[t * W]);
            scatter_lanes(y_buf.data(), b, 0, c0, lanes, rows.data(), cols.data(), nt, y_v, k > 0);
          }
        }
        for (int64_t j = 0; j < count; ++j) {
          const int64_t ck = k * s.dim + (first + j) * W;
          for (int w = 0; w < s.lanes(first + j); ++w)
            for (int64_t n = 0; n < N; ++n)
              last_p[(b * KD + ck + w) * N + n] = reinterpret_cast<const T*>(&states[j * N + n])[w];
        }
      }
    }
  }
}

template <typename F>
void with_state_size(int64_t N, F&& run) {
  if (N == 16)
    run(std::integral_constant<int, 16>());
  else if (N == 8)
    run(std::integral_constant<int, 8>());
  else
    run(std::integral_constant<int, 0>());
}

// Returns y (batch, H, W, d), the last states (batch, K*d, N) and, if asked, the checkpoints
// (batch, K*d, chunks, N) that the backward recomputes from.
std::tuple<at::Tensor, at::Tensor, at::Tensor> scan2d_forward(
    const at::Tensor& u, const at::Tensor& dt, const at::Tensor& dt_w, const at::Tensor& A, const at::Tensor& B,
    const at::Tensor& C, const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& h0, std::vector<int64_t> walk_codes, bool softplus_on, int64_t chunk,
    bool save_checkpoints) {
  TORCH_CHECK(chunk > 0, "chunk must be positive");
  const auto walks = parse_walks(walk_codes);
  check_inputs(u, dt, dt_w, A, B, C, D, bias, walks.size());
  const Shape s(u, B, chunk);
  const int64_t KD = s.dirs * s.dim;
  if (h0.has_value())
    TORCH_CHECK(h0->dim() == 3 && h0->size(0) == s.batch && h0->size(1) == KD && h0->size(2) == s.nstate &&
                    h0->is_contiguous() && h0->scalar_type() == u.scalar_type(),
                "h0 must be a contiguous (batch, K * d, N) tensor in u's dtype");
  auto opts = u.options();
  at::Tensor y = at::empty({s.batch, s.height, s.width, s.dim}, opts);
  at::Tensor last = at::empty({s.batch, KD, s.nstate}, opts);
  at::Tensor ckpt = save_checkpoints ? at::empty({s.batch, KD, s.chunks, s.nstate}, opts) : at::empty({0}, opts);
  if (s.length == 0 || s.dirs == 0) {
    if (h0.has_value())
      last.copy_(*h0);
    else
      last.zero_();
    return {y.zero_(), last, ckpt};
  }
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "serpentir_scan2d_forward", [&] {
    with_state_size(s.nstate, [&](auto state_size) {
      forward_kernel<scalar_t, decltype(state_size)::value>(u, dt, dt_w, A, B, C, D, bias, h0, walks, softplus_on,
                                                            s, y, last, save_checkpoints ? &ckpt : nullptr);
    });
  });
  return {y, last, ckpt};
}

// ---------------------------------------------------------------------------------------------
// backward

// Per-slice gradient slabs, each (H*W, K, X) in raster order, that one work item owns.
template <typename T>
struct Slab {
  T* ptr;
  int64_t dirs, width, x;
  // slab[cell(row, col), k, :] += sums[:]
  void add(int64_t row, int64_t col, int64_t k, const T* sums) const {
    T* p = ptr + ((row * width + col) * dirs + k) * x;
    for (int64_t i = 0; i < x; ++i) p[i] += sums[i];
  }
};

template <typename T, int NS>
void backward_kernel(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& dt_w, const at::Tensor& A,
                     const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                     const std::optional<at::Tensor>& bias, const std::vector<Walk>& walks, bool softplus_on,
                     const Shape& s, const at::Tensor& ckpt, const at::Tensor& dy, int64_t slices, at::Tensor& du,
                     at::Tensor& ddt_part, at::Tensor& dB_part, at::Tensor& dC_part, at::Tensor& dA_part,
                     at::Tensor& ddtw_part, at::Tensor& dD_part, at::Tensor& dbias_part) {
  using P = Pack<T>;
  const int64_t N = NS ? NS : s.nstate, KD = s.dirs * s.dim, R = dt.size(4);
  GridView<const T> u_v(u), dt_v(dt), B_v(B), C_v(C), dy_v(dy);
  GridView<T> du_v(du);
  const T* ckpt_p = ckpt.data_ptr<T>();
  // per channel, summed over the batch afterwards: (batch, K*d, N), (batch, K*d, R), (batch, K*d) x 2
  T *dA_p = dA_part.data_ptr<T>(), *ddtw_p = ddtw_part.data_ptr<T>();
  T *dD_p = dD_part.data_ptr<T>(), *dbias_p = dbias_part.data_ptr<T>();
  // Work item = (slice, batch): it owns the slabs [slice, b] of dt's, B's and C's gradients, summed
  // over channel blocks, and the channel blocks slice, slice + slices, ...
  const int64_t items = slices * s.batch;

#pragma omp parallel num_threads(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), items)))
  {
    const int64_t CT = s.chunk;
    std::vector<T> d_buf(CT * W), sp_buf(CT * W), u_buf(CT * W), dy_buf(CT * W), du_buf(CT * W);
    std::vector<T> B_buf(CT * N), C_buf(CT * N), dt_buf(CT * R), dB_sum(CT * N), dC_sum(CT * N), ddt_sum(CT * R);
    std::vector<int64_t> rows(CT), cols(CT);
    std::vector<P> a(CT * N), hs(CT * N), dB_lanes(CT * N), dC_lanes(CT * N), ddt_lanes(CT * R);  // [t][n or r]
    std::vector<P> h0_v(N), g_next_v(N), dA_acc_v(N), dtw(R), ddtw_acc(R);
    P *h0 = h0_v.data(), *g_next = g_next_v.data(), *dA_acc = dA_acc_v.data();
    T tmp[W];
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t slice = item % slices, b = item / slices, slab_cells = s.length * s.dirs;
      const Slab<T> dB_slab{dB_part.data_ptr<T>() + (slice * s.batch + b) * slab_cells * N, s.dirs, s.width, N};
      const Slab<T> dC_slab{dC_part.data_ptr<T>() + (slice * s.batch + b) * slab_cells * N, s.dirs, s.width, N};
      const Slab<T> ddt_slab{ddt_part.data_ptr<T>() + (slice * s.batch + b) * slab_cells * R, s.dirs, s.width, R};
      for (int64_t block = slice; block < s.blocks; block += slices) {
        const int64_t c0 = block * W;
        const int lanes = s.lanes(block);
        for (int64_t k = 0; k < s.dirs; ++k) {
          const int64_t ck = k * s.dim + c0;
          BlockParams<T> prm(A, D, bias, ck, lanes, N);
          load_dt_weights(dt_w, ck, lanes, R, dtw.data());
          for (int64_t n = 0; n < N; ++n) {
            g_next[n] = P::fill(T(0));
            dA_acc[n] = P::fill(T(0));
          }
          for (int64_t r = 0; r < R; ++r) ddtw_acc[r] = P::fill(T(0));
          P dD_acc = P::fill(T(0)), dbias_acc = P::fill(T(0));
          for (int64_t chunk = s.chunks - 1; chunk >= 0; --chunk) {
            const int64_t t0 = chunk * CT, nt = std::min(CT, s.length - t0);
            for (int64_t n = 0; n < N; ++n) {
              for (int w = 0; w < W; ++w)
                tmp[w] = w < lanes ? ckpt_p[((b * KD + ck + w) * s.chunks + chunk) * N + n] : T(0);
              h0[n] = P::load(tmp);
            }
            walk_cells(walks[k], s, t0, nt, rows.data(), cols.data());
            gather_lanes(u_v, b, 0, c0, lanes, rows.data(), cols.data(), nt, u_buf.data());
            gather_lanes(dy_v, b, 0, c0, lanes, rows.data(), cols.data(), nt, dy_buf.data());
            gather_states(dt_v, b, k, R, rows.data(), cols.data(), nt, dt_buf.data());
            gather_states(B_v, b, k, N, rows.data(), cols.data(), nt, B_buf.data());
            gather_states(C_v, b, k, N, rows.data(), cols.data(), nt, C_buf.data());
            for (int64_t t = 0; t < nt; ++t) {  // step sizes and softplus'
              const P raw = raw_step(prm.bias, dtw.data(), &dt_buf[t * R], R);
              if (softplus_on) {
                softplus(raw).store(&d_buf[t * W]);
                softplus_grad(raw).store(&sp_buf[t * W]);
              } else {
                raw.store(&d_buf[t * W]);
              }
            }
            for (int64_t t = 0; t < nt; ++t)  // the chunk's decays and states, from its checkpoint
              recompute_step<T, NS>(prm, N, P::load(&d_buf[t * W]), P::load(&u_buf[t * W]), &B_buf[t * N],
                                    t ? &hs[(t - 1) * N] : h0, &a[t * N], &hs[t * N]);
            for (int64_t t = nt - 1; t >= 0; --t) {  // adjoint recurrence, backwards in time
              const P ut = P::load(&u_buf[t * W]), dyt = P::load(&dy_buf[t * W]);
              dD_acc = fma(dyt, ut, dD_acc);
              P du, dd;
              adjoint_step<T, NS>(prm, N, P::load(&d_buf[t * W]), ut, dyt, &B_buf[t * N], &C_buf[t * N], &a[t * N],
                                  &hs[t * N], t ? &hs[(t - 1) * N] : h0, g_next, dA_acc, &dB_lanes[t * N],
                                  &dC_lanes[t * N], du, dd);
              du.store(&du_buf[t * W]);  // dd: d loss / d step size, then through softplus to the raw one
              if (softplus_on) dd = dd * P::load(&sp_buf[t * W]);
              dbias_acc = dbias_acc + dd;
              for (int64_t r = 0; r < R; ++r) {
                ddtw_acc[r] = fma(dd, P::fill(dt_buf[t * R + r]), ddtw_acc[r]);
                ddt_lanes[t * R + r] = dd * dtw[r];
              }
            }
            scatter_lanes(du_buf.data(), b, 0, c0, lanes, rows.data(), cols.data(), nt, du_v, k > 0);
            // dB, dC and d dt: sums over the block's channels, into this item's slabs at the cells' places
            lane_sums(dB_lanes.data(), nt * N, dB_sum.data());
            lane_sums(dC_lanes.data(), nt * N, dC_sum.data());
            lane_sums(ddt_lanes.data(), nt * R, ddt_sum.data());
            for (int64_t t = 0; t < nt; ++t) {
              dB_slab.add(rows[t], cols[t], k, &dB_sum[t * N]);
              dC_slab.add(rows[t], cols[t], k, &dC_sum[t * N]);
              ddt_slab.add(rows[t], cols[t], k, &ddt_sum[t * R]);
            }
          }
          for (int w = 0; w < lanes; ++w) {
            const int64_t c = b * KD + ck + w;
            for (int64_t n = 0; n < N; ++n) dA_p[c * N + n] = reinterpret_cast<const T*>(&dA_acc[n])[w];
            for (int64_t r = 0; r < R; ++r) ddtw_p[c * R + r] = reinterpret_cast<const T*>(&ddtw_acc[r])[w];
            dD_p[c] = reinterpret_cast<const T*>(&dD_acc)[w];
            dbias_p[c] = reinterpret_cast<const T*>(&dbias_acc)[w];
          }
        }
      }
    }
  }
}

// Returns du (batch, H, W, d), d dt (batch, H, W, K, R), d dt_w (K*d, R), dA (K*d, N), dB and dC
// (batch, H, W, K, N), dD and dbias (K*d).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
scan2d_backward(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& dt_w, const at::Tensor& A,
                const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                const std::optional<at::Tensor>& bias, std::vector<int64_t> walk_codes, bool softplus_on,
                int64_t chunk, const at::Tensor& ckpt, const at::Tensor& dy) {
  const auto walks = parse_walks(walk_codes);
  check_inputs(u, dt, dt_w, A, B, C, D, bias, walks.size());
  const Shape s(u, B, chunk);
  const int64_t KD = s.dirs * s.dim, R = dt.size(4);
  TORCH_CHECK(ckpt.dim() == 4 && ckpt.size(0) == s.batch && ckpt.size(1) == KD && ckpt.size(2) == s.chunks &&
                  ckpt.is_contiguous() && ckpt.scalar_type() == u.scalar_type(),
              "checkpoints do not match the chunking");
  TORCH_CHECK(dy.sizes() == u.sizes() && dy.scalar_type() == u.scalar_type(), "dy must match u");
  auto opts = u.options();
  const int64_t threads = at::get_num_threads();
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(s.blocks, (threads + s.batch - 1) / s.batch));
  at::Tensor du = at::zeros(u.sizes(), opts);
  at::Tensor ddt_part = at::zeros({slices, s.batch, s.height, s.width, s.dirs, R}, opts);
  at::Tensor dB_part = at::zeros({slices, s.batch, s.height, s.width, s.dirs, s.nstate}, opts);
  at::Tensor dC_part = at::zeros({slices, s.batch, s.height, s.width, s.dirs, s.nstate}, opts);
  at::Tensor dA_part = at::zeros({s.batch, KD, s.nstate}, opts);
  at::Tensor ddtw_part = at::zeros({s.batch, KD, R}, opts);
  at::Tensor dD_part = at::zeros({s.batch, KD}, opts);
  at::Tensor dbias_part = at::zeros({s.batch, KD}, opts);
  if (s.length > 0 && s.dirs > 0) {
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "serpentir_scan2d_backward", [&] {
      with_state_size(s.nstate, [&](auto state_size) {
        backward_kernel<scalar_t, decltype(state_size)::value>(u, dt, dt_w, A, B, C, D, bias, walks, softplus_on, s,
                                                               ckpt, dy, slices, du, ddt_part, dB_part, dC_part,
                                                               dA_part, ddtw_part, dD_part, dbias_part);
      });
    });
  }
  auto total = [&](const at::Tensor& part) { return slices == 1 ? part.squeeze(0) : part.sum(0); };
  return {du, total(ddt_part), ddtw_part.sum(0), dA_part.sum(0), total(dB_part), total(dC_part), dD_part.sum(0),
          dbias_part.sum(0)};
}

}  // namespace serpentir_scan2d

TORCH_LIBRARY(serpentir_scan2d, m) {
  m.def("forward", &serpentir_scan2d::scan2d_forward);
  m.def("backward", &serpentir_scan2d::scan2d_backward);
}
