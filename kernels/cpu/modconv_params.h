// Parameters of the fused modulated convolution (see modulated_conv_blocked.h).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "op_params.h"  // Activation

namespace anycost {
namespace cpu {

// Whether running a ToRGB as the RGB head of the conv before it (c_out channels, `pixels` per image;
// keep_out: that conv's output is needed too) measured faster than the two layers apart: from 64 x 64
// px; keeping the output, for 64 channels and fewer only (the head's per-channel sums then cost about
// what a separate ToRGB does); without it (a generator's last layer) always, as it is then never
// written. `pytest bench/bench_modulated_conv.py -k conv_to_rgb --benchmark-only` (AMX Xeon, 2 threads;
// median ms of conv + ToRGB / fused / fused without the conv's output): 1024 px 32 ch 70.4 / 67.9 /
// 55.6; 512 px 64 ch 52.2 / 50.7 / 40.6; 256 px 128 ch 40.4 / 41.9 / 34.8; 128 px 256 ch 36.2 / 35.8 /
// 34.3; 64 px 512 ch 34.1 / 33.4 / 33.5; 32 px 512 ch 11.4 / 11.6 / 11.6.
inline bool rgb_head_pays(int64_t c_out, int64_t pixels, bool keep_out) {
  return pixels >= 64 * 64 && (!keep_out || c_out <= 64);
}

// All pointers are fp32; strides are in elements and may be anything
// (including 0 for broadcast where noted). Sizes refer to the sliced views.
struct ModConvParams {
  int64_t N = 1, C_in = 0, C_out = 0, H = 0, W = 0;  // x is [N, C_in, H, W]
  int K = 3;                                          // 1 or 3 (odd, same padding)
  bool demodulate = true;
  bool upsample = false;  // K == 3 only: output is [N, C_out, 2H, 2W]
  float weight_scale = 1.f;  // 1/sqrt(C_in_full*K*K)
  float eps = 1e-8f;

  const float* x = nullptr;  // [N, C_in, H, W]
  int64_t x_sn = 0, x_sc = 0, x_sh = 0, x_sw = 1;
  const float* weight = nullptr;  // view [C_out, C_in, K, K] of the full weight
  int64_t w_so = 0, w_si = 0, w_sh = 0, w_sw = 1;
  // Optional: who the weight's values are (nonzero; new_weight_id() gives one) and how often they have changed:
  // the caller must change the pair whenever the values change. With it, the Winograd path keeps the weight's
  // transforms in a process-wide cache (wino_weight_cache.h) instead of building them every call.
  uint64_t weight_id = 0, weight_version = 0;
  const float* styles = nullptr;  // [N, C_in]
  int64_t s_sn = 0, s_sc = 1;

  const float* noise = nullptr;  // optional [N or 1, 1, H_out, W_out]; noise_sn = 0 broadcasts
  int64_t noise_sn = 0, noise_sh = 0, noise_sw = 1;
  float noise_strength = 0.f;
  const float* bias = nullptr;  // optional [C_out]
  int64_t bias_s = 1;
  Activation act = Activation::Linear;  // LRelu: (v > 0 ? v : alpha*v) * gain
  float act_alpha = 0.2f, act_gain = 1.41421356237309505f;

  // Optional ToRGB skip (no-upsample mode, even H and W only):
  // out += upfirdn2d(skip, outer([1,3,3,1])/64*4, up=2, pad=(2,1)), added after act.
  const float* skip = nullptr;  // [N, C_out, H/2, W/2]
  int64_t skip_sn = 0, skip_sc = 0, skip_sh = 0, skip_sw = 1;

  float* out = nullptr;  // [N, C_out, H_out, W_out]; may be null with an RGB head (the conv's output unused)
  int64_t o_sn = 0, o_sc = 0, o_sh = 0, o_sw = 1;

  RgbHead rgb;  // plain conv only, no skip; the small-image path is not taken with a head

  // Optional: receives the demodulation coefficients
  // d[n,o] = 1/sqrt(weight_scale^2 * sum_i s[n,i]^2 sum_tap W[o,i,tap]^2 + eps)
  // (written only when demodulate is true).
  float* demod_out = nullptr;  // [N, C_out]
  int64_t d_sn = 0, d_sc = 1;

  // Optional: raised to max |out[n, o]| over each output channel as it is written (a caller sets it to 0
  // first), for an int8 conv after this one that scales its input by its peak (QConvParams::x_peak).
  float* out_peak = nullptr;  // [N, C_out], contiguous; with out only

  int64_t H_out() const { return upsample ? 2 * H : H; }
  int64_t W_out() const { return upsample ? 2 * W : W; }
};

// Channel blocks and cache budgets of one path of the modulated conv.
constexpr int64_t kWinoWideChannels = 64;
struct ModConvBudget {
  int64_t mc = 64;                 // output channels per task block (rounded to MR)
  int64_t kc = 32;                 // input channels per packed block
  int64_t acc_bytes = 512 * 1024;  // budget of the accumulator tile (L2)
  int64_t xb_bytes = 512 * 1024;   // budget of the packed input block
};

// Cache-blocking knobs (defaults tuned on AMD Zen 2: 32 KiB L1d, 512 KiB L2; modconv_blocking_for_l2
// gives the ones for another L2).
struct ModConvBlocking {
  ModConvBudget direct;            // the direct blocked path's (modulated_conv_blocked.h)
  ModConvBudget wino;              // the Winograd path's on layers of kWinoWideChannels channels and more each
                                   // side (its blocks are transform-domain tiles); narrower ones take `direct`
  int num_threads = 1;             // threads behind parallel_for (task balancing)
  int small_path = -1;             // small-image path (modconv_small.h): -1 auto, 0 never, 1 always
  int64_t small_b_bytes = 128 * 1024;  // its block of styled inputs (B)
  int64_t small_y_bytes = 192 * 1024;  // its block of GEMM outputs (Y)
  int winograd = -1;               // Winograd tile of the plain 3x3 conv (modconv_winograd.h): -1 auto,
                                   // 0 never (direct), 2 F(2x2, 3x3), 4 F(4x4, 3x3)
  ModConvBudget up_wino{32, 64, 768 * 1024, 512 * 1024};  // the upsampling conv's Winograd path (its blocks:
                                   // 4 phase rows per output channel; modconv_winograd_up.h)
  int up_winograd = -1;            // the upsampling conv's Winograd tile: -1 auto, 0 never (direct), 2 F(2x2, 2x2),
                                   // 4 F(4x4, 2x2)
  int64_t wino_shared_v_bytes = 32 << 20;  // the plain Winograd path transforms the input once for all its
                                   // channel blocks (else once per block) when the transform fits this
                                   // (machine_modconv_blocking: the last-level cache; modconv_winograd.h)
};

// The blocking for a CPU with l2_bytes of L2 per core (0: unknown, as Zen 2's). The Winograd path takes
// larger blocks on wide layers from 2 MiB: on an AMX Xeon (2 MiB L2, 2 threads; bench/cpp/
// bench_modulated_conv --mc, --kc, --acc-kb, --xb-kb) 128 channels, 64 per input block and 1.5 / 1 MiB
// budgets ran config-f's 3x3 layers of 64+ channels 10-24% faster than the Zen 2 values (64 px 512 ch
// 33.6 -> 27.9 ms, 128 px 256 ch 35.9 -> 27.2, 256 px 128 ch 39.4 -> 31.2, 512 px 64 ch 48.4 -> 41.4),
// but the narrow ones up to 1.5x slower (512 px 16 ch 4.1 -> 6.1 ms, 256 px 32 ch 2.9 -> 3.7), which
// keep them (kWinoWideChannels); the direct path gained at most 5% and keeps them too. From 1 MiB (a
// Zen 4, 2 threads; bench_modulated_conv, every config-f layer, three runs alternated with ANYCOST_L2_KB
// 512 / 1024, medians) 768 KiB accumulator tiles on both paths and 128 channels per input block on the
// direct one took the bench's layers from 578 to 553 ms: the upsampling convs 2-8% faster (64 -> 128 px
// 512 -> 256 ch 54.5 -> 50.4 ms), Winograd 32 px 512 ch 16.2 -> 12.8, 512 px 64 ch 53.6 -> 46.3, 128-256
// px 3-5% slower; 128 channels per block on the Winograd path too was 8-10% slower at 16 px. 128 output
// channels per Winograd task (the input window staged and transformed once per 128 output channels, not
// 64; a later session, same Zen 4, two runs alternated): 64 px 512 ch 38.9 / 37.8 -> 33.6 / 32.9 ms,
// 128 px 256 ch 37.7 / 37.1 -> 31.4 / 31.0, 256 px 128 ch 39.6 -> 35.9 / 36.6, 16 px 512 ch 4.6 -> 4.3,
// 32 px 512 ch 2-4% slower; whole forwards 3-6% faster (256 / 1.0 274-284 -> 257-266 ms); on the direct
// path 128 measured no faster. The small-image path from 1 MiB: blocks twice Zen 2's (the same Zen 4, 1 thread,
// 512-channel layers at batch 1 / 4 / 8, ms per sample): 8 px 3.44 / 3.48-3.51 / 3.75-3.77 -> 3.40 / 3.32 / 3.41,
// 4 px 1.57 / 1.06 / 1.09 -> 1.57 / 1.04 / 1.01. Smaller L2s (Zen 2's 512 KiB) keep the defaults.
inline ModConvBlocking modconv_blocking_for_l2(int64_t l2_bytes) {
  ModConvBlocking b;
  if (l2_bytes >= 2 * 1024 * 1024) {
    b.wino.mc = 128;
    b.wino.kc = 64;
    b.wino.acc_bytes = 1536 * 1024;
    b.wino.xb_bytes = 1024 * 1024;
  } else if (l2_bytes >= 1024 * 1024) {
    b.wino.mc = 128;
    b.direct.kc = 128;
    b.direct.acc_bytes = b.wino.acc_bytes = 768 * 1024;
  }
  if (l2_bytes >= 1024 * 1024) {
    b.small_b_bytes = 256 * 1024;
    b.small_y_bytes = 384 * 1024;
  }
  return b;
}

// Bytes of L2 cache per core, read once: ANYCOST_L2_KB (KiB) when set (to compare blockings on one
// machine), else sysconf's (0 when unknown).
inline int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    if (const char* kb = std::getenv("ANYCOST_L2_KB")) return int64_t(std::atoll(kb)) * 1024;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? int64_t(v) : int64_t(0);
#else
    return int64_t(0);
#endif
  }();
  return bytes;
}

// Bytes of the last-level cache, read once: ANYCOST_L3_KB (KiB) when set, else Linux's sysfs size of cpu0's
// index3 cache (sysconf's was 10x too large on a Zen 4 guest: 320 MiB for its 32), else 32 MiB.
inline int64_t l3_cache_bytes() {
  static const int64_t bytes = [] {
    if (const char* kb = std::getenv("ANYCOST_L3_KB")) return int64_t(std::atoll(kb)) * 1024;
    int64_t size = 0;
    char unit = 0;
    if (std::FILE* f = std::fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r")) {
      long long v = 0;
      if (std::fscanf(f, "%lld%c", &v, &unit) >= 1 && v > 0)
        size = v * (unit == 'K' ? 1024 : unit == 'M' ? 1 << 20 : 1);
      std::fclose(f);
    }
    return size > 0 ? size : int64_t(32) << 20;
  }();
  return bytes;
}

// Whether a conv writes an output of `bytes` past the caches (non-temporal stores, modconv_epilogue.h): from
// twice the last-level cache, where the output cannot stay cached for the next layer anyway and a normal
// store first reads each line it writes. A Zen 4 (32 MiB L3, 2 threads, bench_qconv / bench_modulated_conv,
// two runs alternated): the int8 upsampling convs to 512 px (64 MiB out) 23.4 -> 20.1 ms and to 1024 px
// (128 MiB) 33.4 -> 27.8 ms, fp32 71 -> 64-68 ms there; 16-32 MiB outputs no faster, 8 MiB ones 10-15% slower.
inline bool streams_output(int64_t bytes) { return bytes >= 2 * l3_cache_bytes(); }

// The modulated conv's blocking for this machine. The plain Winograd path's transformed input shared by the
// channel blocks (WinoPlan::shared_v) is read back from the last-level cache; bench_modulated_conv --shared-v-kb
// (Zen 4, 32 MiB L3, 2 threads, two runs, ms once per block / shared; V's size): 64 px 512 ch (27 MiB)
// 33.0-35.7 / 30.1-30.4, 384 ch (20 MiB) 19.3-19.9 / 18.4-18.5, 32 px 512 ch (9 MiB) 13.4 / 12.3, 16 px 512 ch
// (2.5 MiB) 4.07-4.12 / 3.99-4.08; past the cache no gain: 128 px 256 ch (54 MiB) 30.8-31.9 / 31.2-31.3, 192 ch
// (41 MiB) 18.4-18.6 / 18.8.
inline ModConvBlocking machine_modconv_blocking() {
  ModConvBlocking b = modconv_blocking_for_l2(l2_cache_bytes());
  b.wino_shared_v_bytes = l3_cache_bytes();
  return b;
}

}  // namespace cpu
}  // namespace anycost
