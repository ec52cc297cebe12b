// CPU kernel of anycost::cached_zeros: a zeroed tensor whose storage comes from the output cache
// (output_cache.cpp), for outputs that another library's op writes in place (the bf16 path's oneDNN convs,
// anycost/ops/bf16.py): those ops would otherwise allocate and first-touch a fresh block every call.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "output_cache.h"

namespace {

// Zeroes [p, p + bytes) with non-temporal stores where the CPU has them (SSE2: every x86-64): the buffers are tens
// of MiB, read back by the conv only after they left the caches, and plain stores would read each line first.
void zero_bytes(char* p, int64_t bytes) {
#if defined(__SSE2__)
  const int64_t head = std::min<int64_t>(bytes, (16 - reinterpret_cast<uintptr_t>(p) % 16) % 16);
  std::memset(p, 0, head);
  int64_t i = head;
  const __m128i z = _mm_setzero_si128();
  for (; i + 16 <= bytes; i += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(p + i), z);
  std::memset(p + i, 0, bytes - i);
  _mm_sfence();
#else
  std::memset(p, 0, bytes);
#endif
}

at::Tensor cached_zeros_cpu(const at::Tensor& like, at::IntArrayRef size, bool channels_last) {
  TORCH_CHECK(like.device().is_cpu(), "anycost: cached_zeros: `like` must be a CPU tensor, got ", like.device());
  for (const int64_t s : size) TORCH_CHECK(s >= 0, "anycost: cached_zeros: sizes must be >= 0, got ", size);
  TORCH_CHECK(!channels_last || size.size() == 4, "anycost: cached_zeros: channels_last needs 4 sizes, got ", size);
  at::Tensor out = anycost::cached_empty(size, like.options(),
                                         channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  char* p = static_cast<char*>(out.data_ptr());
  constexpr int64_t kChunk = int64_t(1) << 20;
  const int64_t bytes = out.nbytes();
  at::parallel_for(0, (bytes + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
    zero_bytes(p + c0 * kChunk, std::min(bytes, c1 * kChunk) - c0 * kChunk);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("cached_zeros", &cached_zeros_cpu); }
