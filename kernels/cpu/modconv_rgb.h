// The ToRGB head of a fused conv (RgbHead, op_params.h), fp32 (modulated_conv_blocked.h) or int8
// (qconv_blocked.h): a chunk's RGB sums, and the sum over channel blocks. The functions take the
// conv's parameters P (ModConvParams or QConvParams: the head p.rgb and the sizes N, C_out, H, W).
//
// A chunk (a region of output rows x columns of one task's channels) sums its RGB in three small
// planes of the task's scratch (RgbChunk): first the bias and the upsampled skip for channel block
// 0, zero for the others (rgb_begin); then the epilogue of each channel adds w[c, o] * v[o]
// (finish_store, modconv_epilogue.h); then the region is copied out (rgb_end), block 0 into the
// output itself, block b > 0 into partial planes b - 1, so no two threads ever write the same
// value; after all tasks the partial planes are added into the output (rgb_reduce). The scratch
// keeps the sums in L1 / L2: in the image's own planes (a multiple of 4 KiB apart, as are their
// rows at 1024 px) the three planes and the output rows fall into the same cache sets and evict
// each other, which measured as slow as a separate ToRGB.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <memory>

#include "modconv_epilogue.h"
#include "op_params.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

// Pitches of a chunk's three planes for chunks of up to `rows` x `cols`.
struct RgbLayout {
  int64_t ld = 0, plane = 0;
};

inline RgbLayout rgb_layout(int64_t rows, int64_t cols) {
  RgbLayout l;
  l.ld = skew_ld(round_up(cols, 16));
  l.plane = skew_ld(round_up(rows * l.ld, 16) + 16);
  return l;
}

// Floats of the chunk scratch of layout l (0 without a head).
template <class P>
int64_t rgb_scratch_floats(const P& p, const RgbLayout& l) {
  return p.rgb.out ? kRgbChannels * l.plane : 0;
}

// One chunk's RGB sums: image rows [y0, y1) x columns [x0, x1) of sample n, in acc (layout l).
struct RgbChunk {
  float* acc = nullptr;  // null: no head
  RgbLayout l;
  int64_t n = 0, y0 = 0, y1 = 0, x0 = 0, x1 = 0;
};

// The chunk of that region in `scratch` (of layout l); an empty one (acc null) without a head.
template <class P>
RgbChunk rgb_chunk(const P& p, float* scratch, const RgbLayout& l, int64_t n, int64_t y0,
                          int64_t y1, int64_t x0, int64_t x1) {
  RgbChunk ch;
  if (!p.rgb.out) return ch;
  ch.acc = scratch, ch.l = l, ch.n = n, ch.y0 = y0, ch.y1 = y1, ch.x0 = x0, ch.x1 = x1;
  return ch;
}

// Partial planes for channel blocks 1 .. n_ocb - 1 (null without a head or with one block).
template <class P>
std::unique_ptr<float[]> rgb_partials(const P& p, int64_t n_ocb) {
  if (!p.rgb.out || n_ocb <= 1) return nullptr;
  return std::unique_ptr<float[]>(new float[(n_ocb - 1) * p.N * kRgbChannels * p.H * p.W]);
}

// Starts chunk `ch` (acc and its region set): the bias plus the upsampled skip for channel block 0,
// zero for the others. row: scratch of >= W floats.
template <class P>
void rgb_begin(const P& p, const RgbChunk& ch, bool block0, float* row) {
  const RgbHead& h = p.rgb;
  const int64_t cols = ch.x1 - ch.x0;
  for (int c = 0; c < kRgbChannels; ++c) {
    const float* skip = (block0 && h.skip) ? h.skip + ch.n * h.skip_sn + c * h.skip_sc : nullptr;
    const float b = block0 ? h.bias[c] : 0.f;
    for (int64_t y = ch.y0; y < ch.y1; ++y) {
      float* dst = ch.acc + c * ch.l.plane + (y - ch.y0) * ch.l.ld;
      if (!skip) {
        std::fill(dst, dst + cols, b);
        continue;
      }
      upsample2_row(skip, h.skip_sh, h.skip_sw, p.H / 2, p.W / 2, y, row, false);
      for (int64_t x = 0; x < cols; ++x) dst[x] = row[ch.x0 + x] + b;
    }
  }
}

// The epilogue constants of channel o's share of the chunk (nothing without a head).
template <class P>
void set_rgb(EpilogueChannel& e, const P& p, const RgbChunk& ch, int64_t o) {
  if (!ch.acc) return;
  e.rgb = ch.acc;
  e.rgb_sc = ch.l.plane;
  e.rgb_sh = ch.l.ld;
  e.rgb_y0 = ch.y0;
  e.rgb_x0 = ch.x0;
  for (int c = 0; c < kRgbChannels; ++c) e.rgb_w[c] = p.rgb.w[(ch.n * kRgbChannels + c) * p.C_out + o];
}

// Ends the chunk: its sums into the planes of channel block ocb (the output for 0, partials after).
template <class P>
void rgb_end(const P& p, const RgbChunk& ch, float* partials, int64_t ocb) {
  const int64_t sample = kRgbChannels * p.H * p.W;
  float* planes = (ocb == 0 ? p.rgb.out : partials + (ocb - 1) * p.N * sample) + ch.n * sample;
  for (int c = 0; c < kRgbChannels; ++c)
    for (int64_t y = ch.y0; y < ch.y1; ++y) {
      const float* src = ch.acc + c * ch.l.plane + (y - ch.y0) * ch.l.ld;
      std::copy(src, src + (ch.x1 - ch.x0), planes + (c * p.H + y) * p.W + ch.x0);
    }
}

// Adds the partial planes of blocks 1 .. n_ocb - 1 into the output, one (sample, channel, row) per index.
template <class P, class ParallelFor>
void rgb_reduce(const P& p, const float* partials, int64_t n_ocb, const ParallelFor& pf) {
  if (!partials) return;
  const int64_t rows = p.N * kRgbChannels * p.H, block = rows * p.W;
  pf(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* dst = p.rgb.out + r * p.W;
      for (int64_t b = 0; b < n_ocb - 1; ++b) {
        const float* src = partials + b * block + r * p.W;
        int64_t x = 0;
        for (; x + kVecLen <= p.W; x += kVecLen) vstore(dst + x, vadd(vload(dst + x), vload(src + x)));
        for (; x < p.W; ++x) dst[x] += src[x];
      }
    }
  });
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END
