// The Mamba (S6) selective scan on a CPU: forward and a checkpointed backward, C++ with OpenMP.
//
// Per channel d and state n (delta already shifted by its bias and passed through softplus):
//   a[t]  = exp(delta[t] * A[d, n])                          decay, computed directly every step
//   h[t]  = a[t] * h[t-1] + delta[t] * B[n, t] * u[t]        state, h[-1] = 0
//   y[t]  = (sum_n C[n, t] * h[t] + D[d] * u[t]) * silu(z[t])
// Layout of the work: one "pack" = W neighbouring channels of one group (they share B and C), so
// every step is lane-wise arithmetic over W channels and N independent states; OpenMP spreads the
// (batch, group, channel block) items over threads. Time is cut into chunks of `chunk` steps: the
// inputs of a chunk are gathered (any strides, any of half/bfloat16/float/double, converted to the
// compute type) into small buffers, scanned, and the results scattered back. B and C are copied
// once per call into a time-major (L, N) layout, so a step's N values are one contiguous row.
//
// The forward saves the state entering every chunk (checkpoints, O(L / chunk * dim * N)); the
// backward walks the chunks from last to first, recomputes the chunk's states from its checkpoint
// and runs the adjoint recurrence backwards in time:
//   dyp[t] = dy[t] * silu(z[t])                              gradient on the ungated output
//   g[t]   = C[n, t] * dyp[t] + a[t+1] * g[t+1]              dL/dh[t]; a[L] g[L] := dL/d(last state)
//   dC[n, t] += dyp[t] * h[t]          dB[n, t] += g[t] * delta[t] * u[t]     (summed over channels)
//   du[t]  = delta[t] * sum_n g[t] B[n, t] + D * dyp[t]
//   s[t]   = g[t] * a[t] * h[t-1]                            dL/d(delta[t] * A) through the decay
//   ddelta[t] = sum_n (g[t] * B[n, t] * u[t] + s[t] * A)     times softplus' if softplus is on
//   dA     = sum_t s[t] * delta[t],   dD = sum_t dyp[t] * u[t],   dz = dy * ypre * silu'(z)

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

namespace serpentir_scan {

template <typename in_t>
struct ComputeType {
  using type = float;  // half, bfloat16 and float accumulate in float32
};
template <>
struct ComputeType<double> {
  using type = double;
};

// A (batch, channel, time) tensor seen through its strides; `channel` may be a group for B and C.
template <typename S>
struct View3 {
  S* ptr = nullptr;
  int64_t sb = 0, sc = 0, st = 0;
  View3() = default;
  // an undefined or empty tensor (absent z, dz) gives a null view
  View3(const at::Tensor& t, int c_dim, int t_dim) {
    if (!t.defined() || t.dim() != 3 || t.numel() == 0) return;
    ptr = reinterpret_cast<S*>(t.data_ptr());
    sb = t.stride(0), sc = t.stride(c_dim), st = t.stride(t_dim);
  }
  S* at(int64_t b, int64_t c, int64_t t) const { return ptr + b * sb + c * sc + t * st; }
};

// Problem shape and the chunking of channels and time shared by forward and backward.
struct Shape {
  int64_t batch, dim, length, nstate, groups, per_group, blocks_per_group, chunk, chunks;
  Shape(const at::Tensor& u, const at::Tensor& A, const at::Tensor& B, int64_t chunk_)
      : batch(u.size(0)), dim(u.size(1)), length(u.size(2)), nstate(A.size(1)), groups(B.size(1)),
        per_group(dim / groups), blocks_per_group((per_group + W - 1) / W), chunk(chunk_),
        chunks((length + chunk_ - 1) / chunk_) {}
  int64_t lanes(int64_t block) const { return std::min<int64_t>(W, per_group - block * W); }
};

// buf[t * W + w] = src[channel c0 + w, time t0 + t] in the compute type; absent lanes get 0.
template <typename in_t, typename T>
void gather(const View3<const in_t>& src, int64_t b, int64_t c0, int lanes, int64_t t0, int64_t nt, T* buf) {
  std::fill(buf, buf + nt * W, T(0));
  if (!src.ptr) return;
  for (int w = 0; w < lanes; ++w) {
    const in_t* p = src.at(b, c0 + w, t0);
    for (int64_t t = 0; t < nt; ++t) buf[t * W + w] = static_cast<T>(p[t * src.st]);
  }
}

template <typename out_t, typename T>
void scatter(const T* buf, int64_t b, int64_t c0, int lanes, int64_t t0, int64_t nt, const View3<out_t>& dst) {
  for (int w = 0; w < lanes; ++w) {
    out_t* p = dst.at(b, c0 + w, t0);
    for (int64_t t = 0; t < nt; ++t) p[t * dst.st] = static_cast<out_t>(buf[t * W + w]);
  }
}

// B or C (batch, groups, N, L), any strides and dtype -> (batch, groups, L, N) contiguous in the
// compute dtype: one small copy per call (N values per step, against dim * N of work per step),
// after which every channel block reads a step's N values from one contiguous row.
at::Tensor time_major(const at::Tensor& X, at::ScalarType ct) {
  return at::empty({X.size(0), X.size(1), X.size(3), X.size(2)}, X.options().dtype(ct)).copy_(X.transpose(2, 3));
}

// The Python wrapper (serpentir/ops/scan_cpu.py) prepares the arguments; these checks turn a
// misuse into an error message instead of a wrong read.
void check_inputs(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                  const at::Tensor& C, const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
                  const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(u.device().is_cpu() && u.dim() == 3, "u must be a (batch, dim, L) CPU tensor");
  const auto io = u.scalar_type();
  const auto ct = io == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(delta.sizes() == u.sizes() && delta.scalar_type() == io, "delta must match u in shape and dtype");
  if (z.has_value()) TORCH_CHECK(z->sizes() == u.sizes() && z->scalar_type() == io, "z must match u");
  TORCH_CHECK(A.dim() == 2 && A.size(0) == u.size(1) && A.is_contiguous() && A.scalar_type() == ct,
              "A must be a contiguous (dim, N) tensor in the compute dtype");
  for (const auto* X : {&B, &C})
    TORCH_CHECK(X->dim() == 4 && X->size(0) == u.size(0) && X->size(1) == B.size(1) && X->size(2) == A.size(1) &&
                    X->size(3) == u.size(2) && X->scalar_type() == io && u.size(1) % X->size(1) == 0,
                "B and C must be (batch, groups, N, L) in u's dtype, groups dividing dim");
  for (const auto* v : {&D, &bias})
    if (v->has_value())
      TORCH_CHECK((*v)->dim() == 1 && (*v)->size(0) == u.size(1) && (*v)->is_contiguous() &&
                      (*v)->scalar_type() == ct,
                  "D and delta_bias must be contiguous (dim,) tensors in the compute dtype");
}

// ---------------------------------------------------------------------------------------------
// forward

// NS > 0: the state size known at compile time (16, Mamba's default), so the state loop unrolls
// and the states can live in registers; NS == 0: any state size.
template <typename in_t, int NS>
void forward_kernel(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                    const at::Tensor& C, const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
                    const std::optional<at::Tensor>& bias, bool softplus_on, const Shape& s, at::Tensor& y,
                    at::Tensor& last, at::Tensor* ckpt) {
  using T = typename ComputeType<in_t>::type;
  using P = Pack<T>;
  const int64_t N = NS ? NS : s.nstate;
  View3<const in_t> u_v(u, 1, 2), d_v(delta, 1, 2), z_v(z.has_value() ? *z : at::Tensor(), 1, 2);
  View3<in_t> y_v(y, 1, 2);
  const T* B_tm = B.data_ptr<T>();  // (batch, groups, L, N), see time_major
  const T* C_tm = C.data_ptr<T>();
  T* last_p = last.data_ptr<T>();
  T* ckpt_p = ckpt ? ckpt->data_ptr<T>() : nullptr;
  const int64_t items = s.batch * s.groups * s.blocks_per_group;

#pragma omp parallel num_threads(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), items)))
  {
    std::vector<T> d_buf(s.chunk * W), u_buf(s.chunk * W), z_buf(s.chunk * W), y_buf(s.chunk * W);
    std::vector<P> h_heap(NS ? 0 : N);
    P h_stack[NS ? NS : 1];
    P* h = NS ? h_stack : h_heap.data();
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item / (s.groups * s.blocks_per_group), g = (item / s.blocks_per_group) % s.groups;
      const int64_t block = item % s.blocks_per_group, c0 = g * s.per_group + block * W;
      const int lanes = static_cast<int>(s.lanes(block));
      BlockParams<T> prm(A, D, bias, c0, lanes, N);
      std::fill(h, h + N, P::fill(T(0)));
      for (int64_t k = 0; k < s.chunks; ++k) {
        const int64_t t0 = k * s.chunk, nt = std::min(s.chunk, s.length - t0);
        if (ckpt_p) {  // the state entering chunk k, as ckpt[b, c, k, n]
          for (int w = 0; w < lanes; ++w)
            for (int64_t n = 0; n < N; ++n)
              ckpt_p[((b * s.dim + c0 + w) * s.chunks + k) * N + n] = reinterpret_cast<const T*>(&h[n])[w];
        }
        gather(d_v, b, c0, lanes, t0, nt, d_buf.data());
        gather(u_v, b, c0, lanes, t0, nt, u_buf.data());
        gather(z_v, b, c0, lanes, t0, nt, z_buf.data());
        const T* B_chunk = B_tm + ((b * s.groups + g) * s.length + t0) * N;
        const T* C_chunk = C_tm + ((b * s.groups + g) * s.length + t0) * N;
        // element-wise prologue for the whole chunk first: independent steps pipeline well, while
        // inside the scan loop their latency (exp, log, division) would stall every step
        for (int64_t t = 0; t < nt; ++t) {
          P dt = P::load(&d_buf[t * W]) + prm.bias;
          if (softplus_on) dt = softplus(dt);
          dt.store(&d_buf[t * W]);
          if (z_v.ptr) {
            const P zt = P::load(&z_buf[t * W]);
            (zt * sigmoid(zt)).store(&z_buf[t * W]);  // the gate silu(z)
          }
        }
        for (int64_t t = 0; t < nt; ++t) {
          P yt = state_step<T, NS>(prm, N, P::load(&d_buf[t * W]), P::load(&u_buf[t * W]), B_chunk + t * N,
                                   C_chunk + t * N, h);
          if (z_v.ptr) yt = yt * P::load(&z_buf[t * W]);
          yt.store(&y_buf[t * W]);
        }
        scatter(y_buf.data(), b, c0, lanes, t0, nt, y_v);
      }
      for (int w = 0; w < lanes; ++w)
        for (int64_t n = 0; n < N; ++n) last_p[(b * s.dim + c0 + w) * N + n] = reinterpret_cast<const T*>(&h[n])[w];
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> scan_forward(
    const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
    const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z, const std::optional<at::Tensor>& bias,
    bool softplus_on, int64_t chunk, bool save_checkpoints) {
  TORCH_CHECK(chunk > 0, "chunk must be positive");
  check_inputs(u, delta, A, B, C, D, z, bias);
  const Shape s(u, A, B, chunk);
  const auto ct = A.scalar_type();
  at::Tensor y = at::empty(u.sizes(), u.options());
  at::Tensor last = at::empty({s.batch, s.dim, s.nstate}, u.options().dtype(ct));
  at::Tensor ckpt = save_checkpoints ? at::empty({s.batch, s.dim, s.chunks, s.nstate}, u.options().dtype(ct))
                                     : at::empty({0}, u.options().dtype(ct));
  if (s.length == 0) return {y, last.zero_(), ckpt};
  const at::Tensor B_tm = time_major(B, ct), C_tm = time_major(C, ct);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "serpentir_scan_forward", [&] {
    auto run = [&](auto state_size) {
      forward_kernel<scalar_t, decltype(state_size)::value>(u, delta, A, B_tm, C_tm, D, z, bias, softplus_on, s, y,
                                                            last, save_checkpoints ? &ckpt : nullptr);
    };
    if (s.nstate == 16)
      run(std::integral_constant<int, 16>());
    else
      run(std::integral_constant<int, 0>());
  });
  return {y, last, ckpt};
}

// ---------------------------------------------------------------------------------------------
// backward

template <typename in_t, int NS>
void backward_kernel(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                     const at::Tensor& C, const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
                     const std::optional<at::Tensor>& bias, bool softplus_on, const Shape& s, const at::Tensor& dy,
                     const std::optional<at::Tensor>& dlast, const at::Tensor& ckpt, int64_t slices, at::Tensor& du,
                     at::Tensor& ddelta, at::Tensor& dz, at::Tensor& dB_part, at::Tensor& dC_part,
                     at::Tensor& dA_part, at::Tensor& dD_part) {
  using T = typename ComputeType<in_t>::type;
  using P = Pack<T>;
  const int64_t N = NS ? NS : s.nstate, L = s.length;
  View3<const in_t> u_v(u, 1, 2), d_v(delta, 1, 2), z_v(z.has_value() ? *z : at::Tensor(), 1, 2), dy_v(dy, 1, 2);
  View3<T> du_v(du, 1, 2), ddelta_v(ddelta, 1, 2), dz_v(dz, 1, 2);
  const T* B_tm = B.data_ptr<T>();  // (batch, groups, L, N), see time_major
  const T* C_tm = C.data_ptr<T>();
  const T* ckpt_p = ckpt.data_ptr<T>();
  const T* dlast_p = dlast.has_value() ? dlast->data_ptr<T>() : nullptr;
  T *dB_p = dB_part.data_ptr<T>(), *dC_p = dC_part.data_ptr<T>();  // (slices, batch, groups, L, N)
  T *dA_p = dA_part.data_ptr<T>(), *dD_p = dD_part.data_ptr<T>();  // (batch, dim, N), (batch, dim)
  // Work item = (slice, batch, group): it owns one (L, N) slab of dB_part and dC_part, so no two
  // threads ever add into the same place; slices > 1 only when batch * groups < threads.
  const int64_t items = slices * s.batch * s.groups;

#pragma omp parallel num_threads(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), items)))
  {
    const int64_t CT = s.chunk;
    std::vector<T> d_buf(CT * W), sp_buf(CT * W), u_buf(CT * W), z_buf(CT * W), dy_buf(CT * W);
    std::vector<T> du_buf(CT * W), ddelta_buf(CT * W), dz_buf(CT * W), sg_buf(CT * W);
    std::vector<T> dB_sum(CT * N), dC_sum(CT * N);
    std::vector<P> a(CT * N), hs(CT * N), dB_lanes(CT * N), dC_lanes(CT * N);  // [t][n]
    std::vector<P> h0_v(N), g_next_v(N), dA_acc_v(N);
    P *h0 = h0_v.data(), *g_next = g_next_v.data(), *dA_acc = dA_acc_v.data();
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t slice = item % slices, b = (item / slices) / s.groups, g = (item / slices) % s.groups;
      T* dB_slab = dB_p + ((slice * s.batch + b) * s.groups + g) * N * L;
      T* dC_slab = dC_p + ((slice * s.batch + b) * s.groups + g) * N * L;
      for (int64_t block = slice; block < s.blocks_per_group; block += slices) {
        const int64_t c0 = g * s.per_group + block * W;
        const int lanes = static_cast<int>(s.lanes(block));
        BlockParams<T> prm(A, D, bias, c0, lanes, N);
        T tmp[W];
        for (int64_t n = 0; n < N; ++n) {  // g[L-1] starts from the last state's gradient
          for (int w = 0; w < W; ++w) tmp[w] = (dlast_p && w < lanes) ? dlast_p[(b * s.dim + c0 + w) * N + n] : T(0);
          g_next[n] = P::load(tmp);
          dA_acc[n] = P::fill(T(0));
        }
        P dD_acc = P::fill(T(0));
        for (int64_t k = s.chunks - 1; k >= 0; --k) {
          const int64_t t0 = k * s.chunk, nt = std::min(s.chunk, L - t0);
          for (int64_t n = 0; n < N; ++n) {
            for (int w = 0; w < W; ++w)
              tmp[w] = w < lanes ? ckpt_p[((b * s.dim + c0 + w) * s.chunks + k) * N + n] : T(0);
            h0[n] = P::load(tmp);
          }
          gather(d_v, b, c0, lanes, t0, nt, d_buf.data());
          gather(u_v, b, c0, lanes, t0, nt, u_buf.data());
          gather(z_v, b, c0, lanes, t0, nt, z_buf.data());
          gather(dy_v, b, c0, lanes, t0, nt, dy_buf.data());
          const T* B_chunk = B_tm + ((b * s.groups + g) * L + t0) * N;
          const T* C_chunk = C_tm + ((b * s.groups + g) * L + t0) * N;

          // element-wise prologue for the whole chunk (independent steps pipeline well): the
          // effective delta, softplus' and the gate's sigmoid
          for (int64_t t = 0; t < nt; ++t) {
            const P raw = P::load(&d_buf[t * W]) + prm.bias;
            if (softplus_on) {
              softplus(raw).store(&d_buf[t * W]);
              softplus_grad(raw).store(&sp_buf[t * W]);
            } else {
              raw.store(&d_buf[t * W]);
            }
            if (z_v.ptr) sigmoid(P::load(&z_buf[t * W])).store(&sg_buf[t * W]);
          }
          // recompute the chunk's decays and states from its checkpoint
          for (int64_t t = 0; t < nt; ++t)
            recompute_step<T, NS>(prm, N, P::load(&d_buf[t * W]), P::load(&u_buf[t * W]), B_chunk + t * N,
                                  t ? &hs[(t - 1) * N] : h0, &a[t * N], &hs[t * N]);

          // adjoint recurrence, backwards in time
          for (int64_t t = nt - 1; t >= 0; --t) {
            const P dt = P::load(&d_buf[t * W]), ut = P::load(&u_buf[t * W]), dyt = P::load(&dy_buf[t * W]);
            const T* Bt = B_chunk + t * N;
            const T* Ct = C_chunk + t * N;
            P dyp = dyt;
            if (z_v.ptr) {
              P ypre = prm.D * ut;
#pragma GCC unroll 16
              for (int64_t n = 0; n < N; ++n) ypre = fma(P::fill(Ct[n]), hs[t * N + n], ypre);
              const P zt = P::load(&z_buf[t * W]), sg = P::load(&sg_buf[t * W]);
              dyp = dyt * zt * sg;
              // silu'(z) = sg * (1 + z * (1 - sg))
              (dyt * ypre * sg * fma(zt, P::fill(T(1)) + sg * P::fill(T(-1)), P::fill(T(1)))).store(&dz_buf[t * W]);
            }
            dD_acc = fma(dyp, ut, dD_acc);
            P du, dd;
            adjoint_step<T, NS>(prm, N, dt, ut, dyp, Bt, Ct, &a[t * N], &hs[t * N], t ? &hs[(t - 1) * N] : h0, g_next,
                                dA_acc, &dB_lanes[t * N], &dC_lanes[t * N], du, dd);
            du.store(&du_buf[t * W]);
            if (softplus_on) dd = dd * P::load(&sp_buf[t * W]);
            dd.store(&ddelta_buf[t * W]);
          }
          scatter(du_buf.data(), b, c0, lanes, t0, nt, du_v);
          scatter(ddelta_buf.data(), b, c0, lanes, t0, nt, ddelta_v);
          if (z_v.ptr) scatter(dz_buf.data(), b, c0, lanes, t0, nt, dz_v);
          // dB and dC: sum over the block's channels, then into this item's own slab
          lane_sums(dB_lanes.data(), nt * N, dB_sum.data());
          lane_sums(dC_lanes.data(), nt * N, dC_sum.data());
          for (int64_t i = 0; i < nt * N; ++i) {
            dB_slab[t0 * N + i] += dB_sum[i];
            dC_slab[t0 * N + i] += dC_sum[i];
          }
        }
        for (int w = 0; w < lanes; ++w) {
          for (int64_t n = 0; n < N; ++n)
            dA_p[(b * s.dim + c0 + w) * N + n] = reinterpret_cast<const T*>(&dA_acc[n])[w];
          dD_p[b * s.dim + c0 + w] = reinterpret_cast<const T*>(&dD_acc)[w];
        }
      }
    }
  }
}

// Returns du, ddelta (w.r.t. the raw delta, before bias and softplus), dz (empty without z), dA,
// dB and dC as (batch, groups, N, L), dD (zeros without D). All in the compute type.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> scan_backward(
    const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
    const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z, const std::optional<at::Tensor>& bias,
    bool softplus_on, int64_t chunk, const at::Tensor& ckpt, const at::Tensor& dy,
    const std::optional<at::Tensor>& dlast) {
  check_inputs(u, delta, A, B, C, D, z, bias);
  const Shape s(u, A, B, chunk);
  TORCH_CHECK(ckpt.dim() == 4 && ckpt.size(2) == s.chunks && ckpt.is_contiguous() &&
                  ckpt.scalar_type() == A.scalar_type(), "checkpoints do not match the chunking");
  TORCH_CHECK(dy.sizes() == u.sizes() && dy.scalar_type() == u.scalar_type(), "dy must match u");
  if (dlast.has_value())
    TORCH_CHECK(dlast->dim() == 3 && dlast->size(1) == s.dim && dlast->size(2) == s.nstate && dlast->is_contiguous() &&
                    dlast->scalar_type() == A.scalar_type(), "dlast must be a contiguous (batch, dim, N) tensor");
  const auto ct = A.scalar_type();
  auto opts = u.options().dtype(ct);
  const int64_t threads = at::get_num_threads();
  const int64_t slices = std::max<int64_t>(
      1, std::min<int64_t>(s.blocks_per_group, (threads + s.batch * s.groups - 1) / (s.batch * s.groups)));
  at::Tensor du = at::empty(u.sizes(), opts), ddelta = at::empty(u.sizes(), opts);
  at::Tensor dz = z.has_value() ? at::empty(u.sizes(), opts) : at::empty({0}, opts);
  // dB and dC are accumulated time-major, (slices, batch, groups, L, N), like B and C are read
  at::Tensor dB_part = at::zeros({slices, s.batch, s.groups, s.length, s.nstate}, opts);
  at::Tensor dC_part = at::zeros({slices, s.batch, s.groups, s.length, s.nstate}, opts);
  at::Tensor dA_part = at::zeros({s.batch, s.dim, s.nstate}, opts);
  at::Tensor dD_part = at::zeros({s.batch, s.dim}, opts);
  if (s.length > 0) {
    const at::Tensor B_tm = time_major(B, ct), C_tm = time_major(C, ct);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "serpentir_scan_backward", [&] {
      auto run = [&](auto state_size) {
        backward_kernel<scalar_t, decltype(state_size)::value>(u, delta, A, B_tm, C_tm, D, z, bias, softplus_on, s,
                                                               dy, dlast, ckpt, slices, du, ddelta, dz, dB_part,
                                                               dC_part, dA_part, dD_part);
      };
      if (s.nstate == 16)
        run(std::integral_constant<int, 16>());
      else
        run(std::integral_constant<int, 0>());
    });
  }
  at::Tensor dB = (slices == 1 ? dB_part.squeeze(0) : dB_part.sum(0)).transpose(2, 3);
  at::Tensor dC = (slices == 1 ? dC_part.squeeze(0) : dC_part.sum(0)).transpose(2, 3);
  return {du, ddelta, dz, dA_part.sum(0), dB, dC, dD_part.sum(0)};
}

}  // namespace serpentir_scan

TORCH_LIBRARY(serpentir_scan, m) {
  m.def("forward", &serpentir_scan::scan_forward);
  m.def("backward", &serpentir_scan::scan_backward);
}
