// Naive, obviously-correct double-precision references for the CPU kernels.
// They follow the written math literally (build the modulated weight, run a
// textbook conv / transposed conv / zero-insert-pad-convolve-decimate), and
// read the inputs through the same strided params structs as the kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../../kernels/cpu/bias_act_blocked.h"
#include "../../kernels/cpu/modulated_conv_blocked.h"
#include "../../kernels/cpu/upfirdn2d_blocked.h"

namespace naive {

using anycost::cpu::Activation;

// Dense [H][W] double plane.
struct Plane {
  int64_t H = 0, W = 0;
  std::vector<double> v;
  Plane() = default;
  Plane(int64_t h, int64_t w) : H(h), W(w), v(static_cast<size_t>(h * w), 0.0) {}
  double& at(int64_t y, int64_t x) { return v[static_cast<size_t>(y * W + x)]; }
  double at(int64_t y, int64_t x) const { return v[static_cast<size_t>(y * W + x)]; }
  double get(int64_t y, int64_t x) const {  // zero outside
    return (y < 0 || y >= H || x < 0 || x >= W) ? 0.0 : at(y, x);
  }
};

// upfirdn2d on one plane, literally: zero-insert, pad/crop, convolve with the
// flipped kernel (true convolution), decimate.
inline Plane upfirdn2d_plane(const Plane& x, const std::vector<double>& k, int64_t kh, int64_t kw,
                             int up_x, int up_y, int down_x, int down_y, int64_t px0, int64_t px1,
                             int64_t py0, int64_t py1) {
  Plane u(x.H * up_y, x.W * up_x);
  for (int64_t y = 0; y < x.H; ++y)
    for (int64_t xx = 0; xx < x.W; ++xx) u.at(y * up_y, xx * up_x) = x.at(y, xx);
  Plane pd(u.H + py0 + py1, u.W + px0 + px1);
  for (int64_t y = 0; y < pd.H; ++y)
    for (int64_t xx = 0; xx < pd.W; ++xx) pd.at(y, xx) = u.get(y - py0, xx - px0);
  Plane f(pd.H - kh + 1, pd.W - kw + 1);
  for (int64_t y = 0; y < f.H; ++y)
    for (int64_t xx = 0; xx < f.W; ++xx) {
      double s = 0;
      for (int64_t a = 0; a < kh; ++a)
        for (int64_t b = 0; b < kw; ++b)
          s += pd.at(y + a, xx + b) * k[static_cast<size_t>((kh - 1 - a) * kw + (kw - 1 - b))];
      f.at(y, xx) = s;
    }
  Plane o((f.H - 1) / down_y + 1, (f.W - 1) / down_x + 1);
  for (int64_t y = 0; y < o.H; ++y)
    for (int64_t xx = 0; xx < o.W; ++xx) o.at(y, xx) = f.at(y * down_y, xx * down_x);
  return o;
}

// Output [N][C][Ho][Wo] flattened.
inline std::vector<double> upfirdn2d(const anycost::cpu::UpFirDn2dParams& p) {
  std::vector<double> k(static_cast<size_t>(p.kh * p.kw));
  for (int64_t a = 0; a < p.kh; ++a)
    for (int64_t b = 0; b < p.kw; ++b) k[a * p.kw + b] = p.kernel[a * p.k_sh + b * p.k_sw];
  std::vector<double> out;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < p.C; ++c) {
      Plane x(p.H, p.W);
      for (int64_t y = 0; y < p.H; ++y)
        for (int64_t xx = 0; xx < p.W; ++xx)
          x.at(y, xx) = p.x[n * p.x_sn + c * p.x_sc + y * p.x_sh + xx * p.x_sw];
      Plane o = upfirdn2d_plane(x, k, p.kh, p.kw, p.up_x, p.up_y, p.down_x, p.down_y, p.pad_x0,
                                p.pad_x1, p.pad_y0, p.pad_y1);
      out.insert(out.end(), o.v.begin(), o.v.end());
    }
  return out;
}

inline std::vector<double> blur_kernel_up() {  // outer([1,3,3,1])/64 * 4
  const double k1[4] = {1, 3, 3, 1};
  std::vector<double> k(16);
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b) k[a * 4 + b] = k1[a] * k1[b] / 64.0 * 4.0;
  return k;
}

// A ToRGB skip image's plane (H2 x W2, read through strides), 2x upsampled with the [1,3,3,1] filter:
// upfirdn2d(skip, blur, up=2, pad=(2, 1)).
inline Plane upsampled_skip(const float* plane, int64_t sh, int64_t sw, int64_t H2, int64_t W2) {
  Plane s(H2, W2);
  for (int64_t y = 0; y < H2; ++y)
    for (int64_t x = 0; x < W2; ++x) s.at(y, x) = plane[y * sh + x * sw];
  return upfirdn2d_plane(s, blur_kernel_up(), 4, 4, 2, 2, 1, 1, 2, 1, 2, 1);
}

inline double act(double v, Activation a, double alpha, double gain) {
  if (a == Activation::LRelu) v = v > 0 ? v : v * alpha;
  return a == Activation::LRelu ? v * gain : v;
}

// Modulated conv reference. Output [N][C_out][Ho][Wo] flattened.
inline std::vector<double> modulated_conv2d(const anycost::cpu::ModConvParams& p) {
  const int64_t K = p.K, Ci = p.C_in, Co = p.C_out;
  const int64_t Ho = p.H_out(), Wo = p.W_out();
  std::vector<double> out;
  out.reserve(static_cast<size_t>(p.N * Co * Ho * Wo));
  const std::vector<double> blur = blur_kernel_up();
  for (int64_t n = 0; n < p.N; ++n) {
    // 1. modulated (and demodulated) weight w[o][i][ky][kx]
    std::vector<double> w(static_cast<size_t>(Co * Ci * K * K));
    auto W_ = [&](int64_t o, int64_t i, int64_t a, int64_t b) -> double& {
      return w[static_cast<size_t>(((o * Ci + i) * K + a) * K + b)];
    };
    for (int64_t o = 0; o < Co; ++o) {
      double ss = 0;
      for (int64_t i = 0; i < Ci; ++i)
        for (int64_t a = 0; a < K; ++a)
          for (int64_t b = 0; b < K; ++b) {
            double v = double(p.weight_scale) *
                       p.weight[o * p.w_so + i * p.w_si + a * p.w_sh + b * p.w_sw] *
                       p.styles[n * p.s_sn + i * p.s_sc];
            W_(o, i, a, b) = v;
            ss += v * v;
          }
      if (p.demodulate) {
        double d = 1.0 / std::sqrt(ss + double(p.eps));
        for (int64_t i = 0; i < Ci; ++i)
          for (int64_t a = 0; a < K; ++a)
            for (int64_t b = 0; b < K; ++b) W_(o, i, a, b) *= d;
      }
    }
    auto X = [&](int64_t i, int64_t y, int64_t x) -> double {
      if (y < 0 || y >= p.H || x < 0 || x >= p.W) return 0.0;
      return p.x[n * p.x_sn + i * p.x_sc + y * p.x_sh + x * p.x_sw];
    };
    for (int64_t o = 0; o < Co; ++o) {
      Plane t;
      if (!p.upsample) {
        // 2. conv2d, padding K/2 (cross-correlation)
        t = Plane(p.H, p.W);
        for (int64_t y = 0; y < p.H; ++y)
          for (int64_t x = 0; x < p.W; ++x) {
            double s = 0;
            for (int64_t i = 0; i < Ci; ++i)
              for (int64_t a = 0; a < K; ++a)
                for (int64_t b = 0; b < K; ++b)
                  s += X(i, y + a - K / 2, x + b - K / 2) * W_(o, i, a, b);
            t.at(y, x) = s;
          }
      } else {
        // 2'. conv_transpose2d stride 2, padding 0: tt[2y+a][2x+b] += x[y][x] * w[o][i][a][b]
        Plane tt(2 * p.H + 1, 2 * p.W + 1);
        for (int64_t i = 0; i < Ci; ++i)
          for (int64_t y = 0; y < p.H; ++y)
            for (int64_t x = 0; x < p.W; ++x)
              for (int64_t a = 0; a < 3; ++a)
                for (int64_t b = 0; b < 3; ++b)
                  tt.at(2 * y + a, 2 * x + b) += X(i, y, x) * W_(o, i, a, b);
        // blur: conv2d(pad(tt, 1), b) == upfirdn2d(tt, b, pad 1) (b symmetric)
        t = upfirdn2d_plane(tt, blur, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1);
      }
      Plane sk;
      if (p.skip)
        sk = upsampled_skip(p.skip + n * p.skip_sn + o * p.skip_sc, p.skip_sh, p.skip_sw, p.H / 2, p.W / 2);
      // 3. noise, bias, activation, skip
      for (int64_t y = 0; y < Ho; ++y)
        for (int64_t x = 0; x < Wo; ++x) {
          double v = t.at(y, x);
          if (p.noise)
            v += double(p.noise_strength) *
                 p.noise[n * p.noise_sn + y * p.noise_sh + x * p.noise_sw];
          if (p.bias) v += p.bias[o * p.bias_s];
          v = act(v, p.act, p.act_alpha, p.act_gain);
          if (p.skip) v += sk.at(y, x);
          out.push_back(v);
        }
    }
  }
  return out;
}

// The RGB head of p (modconv_params.h) on the conv's outputs `conv` ([N][C_out][H][W], as
// modulated_conv2d returns them): [N][3][H][W].
inline std::vector<double> rgb_head(const anycost::cpu::ModConvParams& p, const std::vector<double>& conv) {
  const anycost::cpu::RgbHead& h = p.rgb;
  const int64_t P = p.H * p.W;
  std::vector<double> out;
  for (int64_t n = 0; n < p.N; ++n)
    for (int c = 0; c < anycost::cpu::kRgbChannels; ++c) {
      Plane sk;
      if (h.skip)
        sk = upsampled_skip(h.skip + n * h.skip_sn + c * h.skip_sc, h.skip_sh, h.skip_sw, p.H / 2, p.W / 2);
      for (int64_t q = 0; q < P; ++q) {
        double v = h.bias[c];
        for (int64_t o = 0; o < p.C_out; ++o)
          v += double(h.w[(n * anycost::cpu::kRgbChannels + c) * p.C_out + o]) * conv[(n * p.C_out + o) * P + q];
        if (h.skip) v += sk.at(q / p.W, q % p.W);
        out.push_back(v);
      }
    }
  return out;
}

inline std::vector<double> bias_act(const anycost::cpu::BiasActParams& p) {
  std::vector<double> out;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t s = 0; s < p.S; ++s) {
        double v = p.x[n * p.x_sn + c * p.x_sc + s * p.x_ss];
        if (p.bias) v += p.bias[c * p.bias_s];
        if (p.act == Activation::LRelu) v = v > 0 ? v : v * p.alpha;
        out.push_back(v * p.gain);
      }
  return out;
}

}  // namespace naive
