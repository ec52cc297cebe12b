// Threading and workspace helpers for the torch-free CPU kernels.
//
// The kernels never create threads themselves: every driver takes a
// `parallel_for` callable with the signature of at::parallel_for,
//
//     pf(int64_t begin, int64_t end, int64_t grain, F f)   // f(int64_t b, int64_t e)
//
// and splits its work into equally sized tasks. The torch glue passes a
// lambda forwarding to at::parallel_for; the C++ tests and benchmarks use the
// implementations below. Like at::parallel_for, they hand each thread one
// contiguous range of tasks (static schedule), so the drivers make the task
// count a multiple of the thread count they are told about.
//
// Workspace: each thread keeps one grow-only, 64-byte aligned scratch buffer
// (thread_local), so steady-state calls neither allocate nor page-fault.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <numeric>
#include <thread>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

ANYCOST_CPU_NAMESPACE_BEGIN

// Runs everything on the calling thread.
struct SerialFor {
  template <class F>
  void operator()(int64_t begin, int64_t end, int64_t /*grain*/, const F& f) const {
    if (begin < end) f(begin, end);
  }
  int num_threads() const { return 1; }
};

// Static contiguous split over `threads` workers (like at::parallel_for):
// OpenMP when compiled with it, otherwise std::thread (spawned per call).
struct ThreadedFor {
  int threads = 1;
  explicit ThreadedFor(int n = 0) : threads(n > 0 ? n : default_threads()) {}

  static int default_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    unsigned h = std::thread::hardware_concurrency();
    return h ? static_cast<int>(h) : 1;
#endif
  }
  int num_threads() const { return threads; }

  template <class F>
  void operator()(int64_t begin, int64_t end, int64_t grain, const F& f) const {
    if (begin >= end) return;
    const int64_t n = end - begin;
    grain = std::max<int64_t>(grain, 1);
    int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
    if (chunks <= 1) {
      f(begin, end);
      return;
    }
    const int64_t per = (n + chunks - 1) / chunks;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t b = begin + c * per, e = std::min(end, b + per);
      if (b < e) f(b, e);
    }
#else
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(chunks - 1));
    for (int64_t c = 1; c < chunks; ++c) {
      int64_t b = begin + c * per, e = std::min(end, b + per);
      if (b < e) pool.emplace_back([=, &f] { f(b, e); });
    }
    f(begin, std::min(end, begin + per));
    for (auto& t : pool) t.join();
#endif
  }
};

namespace detail {
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
// Avoid float pitches that are multiples of 4 KiB (L1 set / 4K-aliasing conflicts).
inline int64_t skew_ld(int64_t ld) { return (ld % 1024 == 0) ? ld + 16 : ld; }

// Bands of rows per (sample, channel block) so that `base` such units times the bands split evenly
// over nt threads (static schedules): the fewest that do, at most `rows`. Each band repeats its
// per-task set-up (weight packing, halo rows), hence as few as possible.
inline int64_t bands_for_threads(int64_t base, int64_t nt, int64_t rows) {
  int64_t nb = 1;
  if (nt > 1 && base % nt != 0) {
    nb = nt / std::gcd(base, nt);  // smallest nb with base*nb % nt == 0
    if (base * nb < nt) nb = round_up(ceil_div(nt, base), nb);
  }
  return std::max<int64_t>(1, std::min(nb, rows));
}

// Rows [r0, r1) of band b of `bands` over `rows` rows.
struct RowBand {
  int64_t r0, r1;
};
inline RowBand row_band(int64_t b, int64_t bands, int64_t rows) { return {b * rows / bands, (b + 1) * rows / bands}; }

// A task of the conv drivers: its sample, output channels [o0, o_end) and rows [r0, r1) (empty when rows < bands).
struct ConvTask {
  int64_t n, o0, o_end, r0, r1;
};
inline ConvTask conv_task_at(int64_t n, int64_t ocb, int64_t band, int64_t bands, int64_t MC, int64_t C_out,
                             int64_t rows) {
  const RowBand r = row_band(band, bands, rows);
  return {n, ocb * MC, std::min(C_out, (ocb + 1) * MC), r.r0, r.r1};
}
// Task t of the split sample-major, then block of MC output channels, then band of rows.
inline ConvTask conv_task(int64_t t, int64_t bands, int64_t n_ocb, int64_t MC, int64_t C_out, int64_t rows) {
  return conv_task_at(t / (bands * n_ocb), t / bands % n_ocb, t % bands, bands, MC, C_out, rows);
}
// Task t of the split block-major: the tasks of one block of output channels run back to back over the N samples
// (and bands), so that with a static schedule a thread reads a block's weights from memory once per batch and then
// from its caches. For the paths whose packed weights do not depend on the sample (Winograd's transformed weights,
// the int8 path's): a 512-channel layer's are 9-38 MB, more than the caches hold between samples.
inline ConvTask conv_task_block_major(int64_t t, int64_t bands, int64_t N, int64_t MC, int64_t C_out, int64_t rows) {
  return conv_task_at(t / bands % N, t / (bands * N), t % bands, bands, MC, C_out, rows);
}

// Bands of rows for the image-to-image kernels (small_conv.h, small_conv_transpose.h, and where page_bands allows
// depthwise_conv3x3.h, pointwise_conv.h): one per thread. Each splits its tasks band-major, so that under a static
// schedule thread b writes band b of every plane of every layer and reads what its neighbour wrote only at the
// bands' edges (a conv's halo rows, the norm's per-band moments). Split by channels, a pointwise conv reads half its
// input from the other core's cache: the 256 px student's forward took 10.3-11.2 ms on 2 vCPUs whose cores share no
// L3 (a cache-line round trip of ~300 ns, anycost.ops.core_pair_ns) against 5.6-6.0 where they do; in bands 6.4-6.7
// and 4.8-5.0 (Zen 4 guest).
inline int64_t i2i_bands(int num_threads, int64_t rows) {
  return std::max<int64_t>(1, std::min<int64_t>(num_threads, rows));
}

// The bands of a per-channel or per-position op (depthwise, pointwise) writing planes of `plane` floats at `out`:
// one per thread where every band of every plane is whole 4 KiB pages, else 1 (the op then splits by channels).
// With the edges inside pages, a pointwise conv of 36 planes of 32 x 32 took 37-43 us in bands against 20 us by
// channels with the cores apart (repeated in place: lines at the edges moved between the cores every call; the
// hardware prefetchers, which stop at page boundaries, are the likely carrier).
inline int64_t page_bands(int num_threads, int64_t rows, int64_t plane, const float* out) {
  constexpr int64_t kPageFloats = 4096 / sizeof(float);
  const int64_t bands = i2i_bands(num_threads, rows);
  const bool whole_pages = reinterpret_cast<uintptr_t>(out) % 4096 == 0 && rows % bands == 0 &&
                           (plane / bands) % kPageFloats == 0;
  return whole_pages ? bands : 1;
}
}  // namespace detail

// ---------------------------------------------------------------------------
// Aligned memory.
inline void* aligned_malloc_bytes(size_t bytes, size_t align = 64) {
  bytes = (bytes + align - 1) / align * align;
  if (bytes == 0) bytes = align;
  void* p = std::aligned_alloc(align, bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// Per-thread grow-only scratch memory. The returned pointer stays valid until
// the next call on the same thread and slot with a larger size (kernels request it
// once per parallel range and carve it up themselves). Slots:
//   kWorkerSlot: a worker's private scratch inside a parallel range;
//   kCallSlot:   data of one kernel call that all its workers share (requested by the
//                calling thread before its parallel ranges, which may run on it too).
enum WorkspaceSlot : int { kWorkerSlot = 0, kCallSlot = 1 };
inline void* thread_workspace(size_t bytes, WorkspaceSlot slot = kWorkerSlot) {
  struct Buf {
    void* p = nullptr;
    size_t cap = 0;
    ~Buf() { std::free(p); }
  };
  static thread_local Buf bufs[2];
  Buf& buf = bufs[slot];
  if (buf.cap < bytes) {
    std::free(buf.p);
    buf.p = nullptr;
    size_t cap = std::max(bytes, buf.cap + buf.cap / 2);
    buf.p = aligned_malloc_bytes(cap);
    buf.cap = cap;
  }
  return buf.p;
}

// Bump allocator over a workspace block (64-byte aligned pieces).
struct Carver {
  char* base;
  size_t used = 0;
  explicit Carver(void* b) : base(static_cast<char*>(b)) {}
  template <class T>
  T* take(size_t count) {
    T* p = reinterpret_cast<T*>(base + used);
    used += (count * sizeof(T) + 63) / 64 * 64;
    return p;
  }
};

// Bytes a sequence of carve requests will need (mirror of Carver::take).
inline size_t carve_bytes(size_t bytes) { return (bytes + 63) / 64 * 64; }

ANYCOST_CPU_NAMESPACE_END
