// Fused CPU kernels of the gram family (Gram matrix, style loss). See
// csrc/common/gram_math.h for the formulas.
//
// Features arrive as (N, C, K) views, K = H*W, in one of two dense layouts per
// image: "ck" (contiguous NCHW: row c at stride sC, unit stride along K) or "kc"
// (channels_last: row k at stride sK, unit stride along C). Both run without copies.
//
// Work is cut into units (image n, K-split s); the number of splits depends on
// the shape only, so results are bitwise the same for any thread count. Each unit
// walks its K range in chunks of kChunk: the chunk is converted to the accumulator
// type (float32 for half/bf16/float32, float64 for float64) in a cache-resident
// buffer, and the BLAS that PyTorch ships (MKL/OpenBLAS through at::mm_out, called
// single-threaded inside the parallel region) accumulates the C x C product. What
// is ours: the style loss builds U = Fx + Fy and V = Fx - Fy chunk by chunk while
// converting, so one GEMM M = U V^T replaces the two Grams (D = s/2 (M + M^T));
// the Gram alone computes only the tiles of the upper block triangle; the
// criterion and dloss/dD are produced in the same op from the split partials
// (fixed-order sum); backward is one op for both inputs, (P + P^T) folded into
// one C x C matrix per image and per input, the scale and sign folded into it.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/add.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/neg.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "../common/gram_math.h"
#include "../host/gram_checks.h"
#include "buffer_pool.h"
#include "convert.h"
#include "isa.h"
#include "kernel_tables.h"

FASTIQA_ISA_BEGIN
namespace fastiqa {
namespace cpu {
namespace FASTIQA_ISA_NS {
namespace gram_impl {
namespace {

using namespace fastiqa::gram;

constexpr int64_t kChunk = 256;      // K alignment of the splits; least K per converted chunk
constexpr int64_t kChunkElems = 1 << 14;  // C x kc elements per converted chunk (64 KiB float: L2-resident)
constexpr int64_t kTile = 128;       // channel tile of the Gram's upper block triangle
constexpr int64_t kTargetUnits = 16; // units wanted for load balance (shape-only choice)
constexpr int64_t kMinSplitK = 1024; // K per split at least (GEMM efficiency)
constexpr int64_t kOneCallMaxC = 32;   // float32/64 Grams of at most this many channels: one bmm (one_call_plan)

struct Feat {
  int64_t N, C, K, sN, sC, sK;
  bool ck;  // unit stride along K (else along C)
};

Feat describe(const at::Tensor& f, const char* name) {
  host::check_features(f, name);
  Feat d{f.size(0), f.size(1), f.size(2), f.stride(0), f.stride(1), f.stride(2), true};
  if (d.K == 1) d.sK = 1;
  if (d.C == 1) d.sC = d.K;
  d.ck = d.sK == 1 && d.sC >= d.K;  // else dense along C (checked)
  return d;
}

int64_t splits_for(int64_t N, int64_t K) {
  const int64_t want = (kTargetUnits + N - 1) / std::max<int64_t>(N, 1);
  const int64_t most = std::max<int64_t>(1, K / kMinSplitK);
  return std::max<int64_t>(1, std::min(want, most));
}

// Rounds K / S up to whole chunks so every split but the last is kChunk-aligned.
int64_t split_len(int64_t K, int64_t S) {
  int64_t len = (K + S - 1) / S;
  return ((len + kChunk - 1) / kChunk) * kChunk;
}

template <typename T, typename A>
void convert_row(const T* __restrict__ a, A* __restrict__ out, int64_t len) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) out[i] = to_acc<A>(a[i]);
}

template <typename T, typename A>
void form_uv_row(const T* __restrict__ a, const T* __restrict__ b,
                                    A* __restrict__ u, A* __restrict__ v, int64_t len) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const A x = to_acc<A>(a[i]);
    const A y = to_acc<A>(b[i]);
    u[i] = x + y;
    v[i] = x - y;
  }
}

template <typename T, typename A>
void store_row(const A* __restrict__ src, T* __restrict__ out, int64_t len) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) out[i] = from_acc<T>(src[i]);
}

at::Tensor blob(void* p, at::IntArrayRef sizes, at::IntArrayRef strides, at::ScalarType t) {
  return at::from_blob(p, sizes, strides, at::TensorOptions().dtype(t));
}

// Copies (and converts) chunk [k0, k0 + kc) of one image into buf: (C, kc) row-major
// for ck, (kc, C) row-major for kc. With u/v given, writes U = x + y and V = x - y.
// K columns per GEMM call. Features read in place (no conversion): the whole range,
// one BLAS call (its own cache blocking; per-call overhead dominates thin shapes such
// as C = 3, K = 65536). Converted chunks: about kChunkElems elements, whole kChunks.
int64_t chunk_cols(int64_t C, bool direct, int64_t range) {
  if (direct) return std::max<int64_t>(range, 1);
  return std::max<int64_t>(kChunk, kChunkElems / std::max<int64_t>(C, 1) / kChunk * kChunk);
}

template <typename T, typename A>
void load_chunk(const Feat& f, const T* x, const T* y, int64_t k0, int64_t kc, A* u, A* v) {
  if (f.ck) {
    for (int64_t c = 0; c < f.C; ++c) {
      const int64_t off = c * f.sC + k0;
      if (y) form_uv_row<T, A>(x + off, y + off, u + c * kc, v + c * kc, kc);
      else convert_row<T, A>(x + off, u + c * kc, kc);
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const int64_t off = (k0 + k) * f.sK;
      if (y) form_uv_row<T, A>(x + off, y + off, u + k * f.C, v + k * f.C, f.C);
      else convert_row<T, A>(x + off, u + k * f.C, f.C);
    }
  }
}

// Partial products of one unit (image n, K range [kb, ke)) into m (C x C row-major,
// fully overwritten). Style (y != null): m = U V^T over the range. Gram: m = X X^T,
// upper block-triangle tiles only (the caller mirrors).
template <typename T, typename A>
void unit_product(const Feat& f, const T* x, const T* y, int64_t kb, int64_t ke, A* m,
                  std::vector<A>& ubuf, std::vector<A>& vbuf) {
  const auto st = c10::CppTypeToScalarType<A>::value;
  const int64_t C = f.C;
  at::Tensor M = blob(m, {C, C}, {C, 1}, st);
  const bool direct = std::is_same<T, A>::value && !y;  // read the features in place
  const int64_t ntiles = (C + kTile - 1) / kTile;
  bool first = true;
  const int64_t step = chunk_cols(C, direct, ke - kb);
  for (int64_t k0 = kb; k0 < ke; k0 += step) {
    const int64_t kc = std::min(step, ke - k0);
    at::Tensor U, V;  // U: (C, kc) view of the chunk, V likewise (style)
    if (direct) {
      T* p = const_cast<T*>(x) + (f.ck ? k0 : k0 * f.sK);
      U = f.ck ? blob(p, {C, kc}, {f.sC, 1}, st) : blob(p, {C, kc}, {1, f.sK}, st);
    } else {
      ubuf.resize(C * kc);
      if (y) vbuf.resize(C * kc);
      load_chunk<T, A>(f, x, y, k0, kc, ubuf.data(), y ? vbuf.data() : nullptr);
      U = f.ck ? blob(ubuf.data(), {C, kc}, {kc, 1}, st) : blob(ubuf.data(), {C, kc}, {1, C}, st);
      if (y) V = f.ck ? blob(vbuf.data(), {C, kc}, {kc, 1}, st) : blob(vbuf.data(), {C, kc}, {1, C}, st);
    }
    if (y) {
      if (first) at::mm_out(M, U, V.t());
      else M.addmm_(U, V.t());
    } else {
      for (int64_t ti = 0; ti < ntiles; ++ti) {
        const int64_t i0 = ti * kTile, ni = std::min(kTile, C - i0);
        at::Tensor Ui = U.narrow(0, i0, ni);
        for (int64_t tj = ti; tj < ntiles; ++tj) {
          const int64_t j0 = tj * kTile, nj = std::min(kTile, C - j0);
          at::Tensor Mij = M.narrow(0, i0, ni).narrow(1, j0, nj);
          at::Tensor Uj = U.narrow(0, j0, nj);
          if (first) at::mm_out(Mij, Ui, Uj.t());
          else Mij.addmm_(Ui, Uj.t());
        }
      }
    }
    first = false;
  }
  if (first) std::fill(m, m + C * C, A(0));  // empty range (K == 0)
}

// Runs unit_product over all (n, s) units into partials (N, S, C, C).
template <typename T, typename A>
void products(const Feat& f, const T* x, const T* y, int64_t S, A* partials) {
  const int64_t C = f.C, K = f.K, len = split_len(K, S);
  at::parallel_for(0, f.N * S, 1, [&](int64_t b, int64_t e) {
    std::vector<A> ubuf, vbuf;
    for (int64_t unit = b; unit < e; ++unit) {
      const int64_t n = unit / S, s = unit % S;
      const int64_t kb = std::min(K, s * len), ke = std::min(K, kb + len);
      unit_product<T, A>(f, x + n * f.sN, y ? y + n * f.sN : nullptr, kb, ke,
                         partials + unit * C * C, ubuf, vbuf);
    }
  });
}

// G = scale * (sum of split partials), mirrored from the upper block triangle.
template <typename A>
void finish_gram(const A* partials, int64_t N, int64_t S, int64_t C, A scale, A* g) {
  at::parallel_for(0, N, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const A* p = partials + n * S * C * C;
      A* gn = g + n * C * C;
      // upper triangle; inside a diagonal tile the GEMM computed both (i, j) and (j, i):
      // average them so that G is exactly symmetric
      for (int64_t i = 0; i < C; ++i) {
        const int64_t tile_end = std::min(C, (i / kTile + 1) * kTile);
        for (int64_t j = i; j < C; ++j) {
          A acc = 0;
          for (int64_t s = 0; s < S; ++s) acc += p[s * C * C + i * C + j];
          if (j < tile_end) {
            A accT = 0;
            for (int64_t s = 0; s < S; ++s) accT += p[s * C * C + j * C + i];
            acc = A(0.5) * (acc + accT);
          }
          gn[i * C + j] = acc * scale;
        }
      }
      for (int64_t i = 0; i < C; ++i)
        for (int64_t j = 0; j < i; ++j) gn[i * C + j] = gn[j * C + i];
    }
  });
}

// One BLAS call for the whole batch, as the reference does: the best plan when the
// features need no conversion and C is small (per-split GEMM calls, their partials and
// the parallel region are the cost there). Made exactly symmetric: (G + G^T) / 2.
bool one_call_plan(const at::Tensor& feat) {
  return feat.size(1) <= kOneCallMaxC && (feat.scalar_type() == at::kFloat || feat.scalar_type() == at::kDouble);
}

void gram_one_call(const at::Tensor& feat, double scale, at::Tensor& g) {
  at::bmm_out(g, feat, feat.transpose(1, 2));
  g.add_(g.transpose(1, 2).clone()).mul_(0.5 * scale);
}

at::Tensor gram_fwd(const at::Tensor& feat, double scale) {
  const Feat f = describe(feat, "gram_fwd");
  const auto acc = host::acc_dtype(feat);
  at::Tensor g = at::empty({f.N, f.C, f.C}, feat.options().dtype(acc));
  if (f.N == 0 || f.C == 0) return g;
  if (one_call_plan(feat)) {
    gram_one_call(feat, scale, g);
    return g;
  }
  const int64_t S = splits_for(f.N, f.K);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feat.scalar_type(), "gram_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    std::vector<A> partials(static_cast<size_t>(f.N * S * f.C * f.C));
    products<scalar_t, A>(f, feat.data_ptr<scalar_t>(), nullptr, S, partials.data());
    finish_gram<A>(partials.data(), f.N, S, f.C, static_cast<A>(scale), g.data_ptr<A>());
  });
  return g;
}

// One product job: out[n] = Q[n or 0] F[n] in F's layout and dtype, Q (nq, C, C)
// row-major accumulators.
template <typename T, typename A>
struct ApplyJob {
  const T* x;
  const A* q;
  int64_t nq;
  T* out;
};

// Runs up to two jobs (grad x, grad y) over one set of units (job, image, K split).
template <typename T, typename A>
void apply_q(const Feat& f, const ApplyJob<T, A>* jobs, int64_t njobs) {
  const auto st = c10::CppTypeToScalarType<A>::value;
  const int64_t C = f.C, K = f.K;
  const int64_t S = std::max<int64_t>(1, std::min((kTargetUnits + f.N - 1) / f.N, (K + kChunk - 1) / kChunk));
  const int64_t len = split_len(K, S);
  const bool direct = std::is_same<T, A>::value;
  at::parallel_for(0, njobs * f.N * S, 1, [&](int64_t b, int64_t e) {
    std::vector<A> ibuf, obuf;
    for (int64_t unit = b; unit < e; ++unit) {
      const ApplyJob<T, A>& job = jobs[unit / (f.N * S)];
      const int64_t n = (unit / S) % f.N, s = unit % S;
      const int64_t kb = std::min(K, s * len), ke = std::min(K, kb + len);
      at::Tensor Q = blob(const_cast<A*>(job.q + (job.nq == 1 ? 0 : n) * C * C), {C, C}, {C, 1}, st);
      const T* xn = job.x + n * f.sN;
      T* on = job.out + n * f.sN;
      const int64_t step = chunk_cols(C, direct, ke - kb);
      for (int64_t k0 = kb; k0 < ke; k0 += step) {
        const int64_t kc = std::min(step, ke - k0);
        if (direct) {
          const int64_t off = f.ck ? k0 : k0 * f.sK;
          void* xp = const_cast<T*>(xn + off);
          void* op = on + off;
          if (f.ck) {  // (C, kc) = Q (C, C) @ X (C, kc)
            at::Tensor O = blob(op, {C, kc}, {f.sC, 1}, st);
            at::mm_out(O, Q, blob(xp, {C, kc}, {f.sC, 1}, st));
          } else {  // (kc, C) = X^T (kc, C) @ Q^T
            at::Tensor O = blob(op, {kc, C}, {f.sK, 1}, st);
            at::mm_out(O, blob(xp, {kc, C}, {f.sK, 1}, st), Q.t());
          }
        } else {
          ibuf.resize(C * kc);
          obuf.resize(C * kc);
          load_chunk<T, A>(f, xn, static_cast<const T*>(nullptr), k0, kc, ibuf.data(), static_cast<A*>(nullptr));
          if (f.ck) {
            at::Tensor O = blob(obuf.data(), {C, kc}, {kc, 1}, st);
            at::mm_out(O, Q, blob(ibuf.data(), {C, kc}, {kc, 1}, st));
            for (int64_t c = 0; c < C; ++c) store_row<T, A>(obuf.data() + c * kc, on + c * f.sC + k0, kc);
          } else {
            at::Tensor O = blob(obuf.data(), {kc, C}, {C, 1}, st);
            at::mm_out(O, blob(ibuf.data(), {kc, C}, {C, 1}, st), Q.t());
            for (int64_t k = 0; k < kc; ++k) store_row<T, A>(obuf.data() + k * C, on + (k0 + k) * f.sK, C);
          }
        }
      }
    }
  });
}

at::Tensor out_like(const at::Tensor& feat) {
  // same strides as the (dense) features; large buffers come from the pool
  return pooled_empty_like(feat);
}

// outs[i] = q_i @ feats[i] for one or two features of one shape, layout and dtype.
std::vector<at::Tensor> apply_all(const std::vector<at::Tensor>& qs, const std::vector<at::Tensor>& feats) {
  const Feat f = describe(feats[0], "gram_apply");
  std::vector<at::Tensor> outs;
  for (const auto& feat : feats) outs.push_back(out_like(feat));
  if (feats[0].numel() == 0) return outs;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats[0].scalar_type(), "gram_apply", [&] {
    using A = typename AccOf<scalar_t>::type;
    std::vector<ApplyJob<scalar_t, A>> jobs;
    std::vector<at::Tensor> qc;
    for (const auto& q : qs) qc.push_back(q.contiguous());
    for (size_t i = 0; i < feats.size(); ++i)
      jobs.push_back({feats[i].data_ptr<scalar_t>(), qc[i].data_ptr<A>(), qc[i].size(0), outs[i].data_ptr<scalar_t>()});
    apply_q<scalar_t, A>(f, jobs.data(), static_cast<int64_t>(jobs.size()));
  });
  return outs;
}

at::Tensor gram_apply(const at::Tensor& q, const at::Tensor& feat, double alpha) {
  describe(feat, "gram_apply");
  host::check_gram_q(q, feat);
  return apply_all({at::mul(q, alpha).contiguous()}, {feat})[0];
}

// Criterion over D (written into p when need_grad); returns the loss.
template <typename A, int CR, bool UV>
A criterion_pass(const A* m, int64_t S, const A* target, int64_t nt, int64_t N, int64_t C, A scale,
                 A* p) {
  std::vector<A> part(static_cast<size_t>(N), A(0));
  const A half = scale * A(0.5);
  at::parallel_for(0, N, 1, [&](int64_t b, int64_t e) {
    std::vector<A> row(static_cast<size_t>(C));
    std::vector<A> summed;
    for (int64_t n = b; n < e; ++n) {
      const A* mn = m + n * S * C * C;
      if (S > 1) {  // split partials summed in fixed order, one contiguous pass
        summed.assign(mn, mn + C * C);
        for (int64_t s = 1; s < S; ++s) {
          const A* ps = mn + s * C * C;
          A* d = summed.data();
#pragma omp simd
          for (int64_t i = 0; i < C * C; ++i) d[i] += ps[i];
        }
        mn = summed.data();
      }
      const A* tn = target ? target + (nt == 1 ? 0 : n) * C * C : nullptr;
      A acc = 0;
      for (int64_t i = 0; i < C; ++i) {
        for (int64_t j = 0; j < C; ++j) {
          row[j] = UV ? half * (mn[i * C + j] + mn[j * C + i]) : mn[i * C + j] - tn[i * C + j];
        }
        A racc = 0;
        for (int64_t j = 0; j < C; ++j) {
          A v, g;
          entry<CR, A>(row[j], v, g);
          racc += v;
          if (p) p[n * C * C + i * C + j] = g;
        }
        acc += racc;
      }
      part[n] = acc;
    }
  });
  A total = 0;
  for (int64_t n = 0; n < N; ++n) total += part[n];
  return total;
}

template <typename A, int CR>
A run_criterion(bool uv, const A* m, int64_t S, const A* target, int64_t nt, int64_t N, int64_t C,
                A scale, A* p) {
  return uv ? criterion_pass<A, CR, true>(m, S, nullptr, 1, N, C, scale, p)
            : criterion_pass<A, CR, false>(m, 1, target, nt, N, C, scale, p);
}

std::tuple<at::Tensor, at::Tensor> style_fwd(const at::Tensor& x, const std::optional<at::Tensor>& y,
                                             const std::optional<at::Tensor>& target_gram,
                                             double scale, int64_t criterion, bool need_grad) {
  host::check_style_fwd(x, y, target_gram, criterion);
  const Feat f = describe(x, "style_fwd");
  const auto acc = host::acc_dtype(x);
  const int64_t N = f.N, C = f.C;
  at::Tensor loss = at::empty({}, x.options().dtype(acc));
  at::Tensor p = need_grad ? at::empty({N, C, C}, x.options().dtype(acc)) : at::empty({0}, x.options().dtype(acc));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "style_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    A* pp = need_grad ? p.data_ptr<A>() : nullptr;
    A total = 0;
    const int64_t count = N * C * C;
    if (count > 0) {
      std::vector<A> m;
      int64_t S = 1;
      const A* target = nullptr;
      int64_t nt = 1;
      // Plan by shape: U V^T (U = x + y, V = x - y: one GEMM, no cancellation of two large
      // Grams) needs a converting pass over both features; for few channels the GEMMs are
      // cheap and that pass is the cost, so two Grams read in place (BLAS straight on the
      // features, as the reference) are faster: D = G_x - G_y then, G_y as the target.
      const bool two_grams = y.has_value() && one_call_plan(x);
      std::vector<A> gy;
      auto gram_of = [&](const at::Tensor& feat, std::vector<A>& out) {
        out.resize(static_cast<size_t>(N * C * C));
        if (one_call_plan(feat)) {
          at::Tensor g = blob(out.data(), {N, C, C}, {C * C, C, 1}, c10::CppTypeToScalarType<A>::value);
          gram_one_call(feat, scale, g);
          return;
        }
        const int64_t S0 = splits_for(N, f.K);
        std::vector<A> partials(static_cast<size_t>(N * S0 * C * C));
        products<scalar_t, A>(f, feat.data_ptr<scalar_t>(), nullptr, S0, partials.data());
        finish_gram<A>(partials.data(), N, S0, C, static_cast<A>(scale), out.data());
      };
      if (y.has_value() && !two_grams) {
        S = splits_for(N, f.K);
        m.resize(static_cast<size_t>(N * S * C * C));
        products<scalar_t, A>(f, x.data_ptr<scalar_t>(), y->data_ptr<scalar_t>(), S, m.data());
      } else {
        gram_of(x, m);
        if (two_grams) {
          gram_of(*y, gy);
          target = gy.data();
          nt = N;
        } else {
          target = target_gram->data_ptr<A>();
          nt = target_gram->size(0);
        }
      }
      const bool uv = y.has_value() && !two_grams;
      const A sc = static_cast<A>(scale);
      total = criterion == kCriterionL1 ? run_criterion<A, kCriterionL1>(uv, m.data(), S, target, nt, N, C, sc, pp)
              : criterion == kCriterionL2 ? run_criterion<A, kCriterionL2>(uv, m.data(), S, target, nt, N, C, sc, pp)
                                 : run_criterion<A, kCriterionFro>(uv, m.data(), S, target, nt, N, C, sc, pp);
    }
    A value;
    A gmul;
    if (criterion == kCriterionFro) {
      value = std::sqrt(total);
      gmul = value > A(0) ? A(1) / value : A(0);
    } else {
      value = count > 0 ? total / static_cast<A>(count) : std::numeric_limits<A>::quiet_NaN();
      gmul = count > 0 ? A(1) / static_cast<A>(count) : A(0);
    }
    loss.data_ptr<A>()[0] = value;
    if (pp) {
      at::parallel_for(0, count, 1 << 16, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) pp[i] *= gmul;
      });
    }
  });
  return {loss, p};
}

std::tuple<at::Tensor, at::Tensor> style_bwd(const at::Tensor& x, const at::Tensor& y,
                                             const at::Tensor& p, const at::Tensor& grad_out,
                                             double scale, bool need_x, bool need_y) {
  host::check_style_bwd(x, y, p, grad_out, need_y);
  const auto acc = host::acc_dtype(x);
  // Q = scale * grad_out * (P + P^T): one C x C matrix per image for x, its negative for y
  at::Tensor q = at::mul(at::add(p, p.transpose(1, 2)), at::mul(grad_out.to(acc).reshape({}), scale));
  std::vector<at::Tensor> qs, feats;
  if (need_x) {
    qs.push_back(q);
    feats.push_back(x);
  }
  if (need_y) {
    qs.push_back(at::neg(q));
    feats.push_back(y);
  }
  std::vector<at::Tensor> outs = feats.empty() ? std::vector<at::Tensor>{} : apply_all(qs, feats);
  at::Tensor gx = need_x ? outs[0] : at::empty({0}, x.options());
  at::Tensor gy = need_y ? outs.back() : at::empty({0}, x.options());
  return {gx, gy};
}

}  // namespace
}  // namespace gram_impl

void gram_kernels(GramKernels* t) {
  using namespace gram_impl;
  t->gram_fwd = &gram_fwd;
  t->gram_apply = &gram_apply;
  t->style_fwd = &style_fwd;
  t->style_bwd = &style_bwd;
}

}  // namespace FASTIQA_ISA_NS
}  // namespace cpu
}  // namespace fastiqa
FASTIQA_ISA_END
