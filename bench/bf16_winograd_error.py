"""Would a bf16 Winograd conv stay within DESIGN.md's accuracy bound (at most 2x the error of the direct conv run on
bf16 operands, both against float64)? Simulated, no kernel: the input and weight transforms in float32, the
transformed input V = B^T d B and weight U = G g G^T rounded to bf16 (what a kernel feeding vdpbf16ps / AMX would
multiply), their products summed exactly (float64; the hardware sums in fp32), the output transform A^T M A in
float32. Printed: the rms error relative to the output's rms for the direct conv on bf16 operands, F(2x2, 3x3) and
F(4x4, 3x3) with and without the bf16 rounding, and the ratios to the direct bf16 error.

Run: `python bench/bf16_winograd_error.py` (seconds; no native ops needed). On any machine the numbers are the same
up to the random draw: F(4x4) in bf16 is ~11x the direct bf16 error, F(2x2) ~1.7x (bench/RESULTS.md, the Zen 4 bench).
"""

import torch
import torch.nn.functional as F

# The transforms of anycost's Winograd paths (kernels/cpu/modconv_winograd.h): (B^T, G, A^T) per output tile size.
TRANSFORMS = {
    "F(2x2)": ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
               [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
               [[1, 1, 1, 0], [0, 1, -1, -1]]),
    "F(4x4)": ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
               [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
               [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}


def as_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float().double()


def as_bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).double()


def winograd_conv(x: torch.Tensor, w: torch.Tensor, bt, g, at, round_operands) -> torch.Tensor:
    """3x3 conv (padding 1) of x [N, C, H, W] with w [O, C, 3, 3] by Winograd tiles, float32 transforms, the
    transformed operands passed through `round_operands`, exact sums."""
    bt, g, at = (as_float32(torch.tensor(m, dtype=torch.float64)) for m in (bt, g, at))
    m, t = at.shape[0], bt.shape[0]
    h, wd = x.shape[2:]
    d = F.pad(x, (1, 1 + (-wd) % m, 1, 1 + (-h) % m)).unfold(2, t, m).unfold(3, t, m)  # N C th tw T T
    v = round_operands(as_float32(torch.einsum("ij,nchwjk,lk->nchwil", bt, d, bt)))
    u = round_operands(as_float32(torch.einsum("ij,ocjk,lk->ocil", g, w, g)))
    y = as_float32(torch.einsum("ij,nohwjk,lk->nohwil", at, as_float32(torch.einsum("ocil,nchwil->nohwil", u, v)), at))
    n, o, th, tw = y.shape[:4]
    return y.permute(0, 1, 2, 4, 3, 5).reshape(n, o, th * m, tw * m)[:, :, :h, :wd]


def relative_error(y: torch.Tensor, exact: torch.Tensor) -> float:
    """rms(y - exact) / rms(exact)."""
    return float((y - exact).square().mean().sqrt() / exact.square().mean().sqrt())


def main() -> None:
    torch.manual_seed(0)
    for channels, size in [(32, 64), (64, 32), (256, 16)]:
        x = torch.randn(1, channels, size, size, dtype=torch.float64)
        w = torch.randn(64, channels, 3, 3, dtype=torch.float64) / (3 * channels ** 0.5)
        exact = F.conv2d(x, w, padding=1)
        errors = {"direct bf16": relative_error(F.conv2d(as_bf16(x), as_bf16(w), padding=1), exact)}
        for name, (bt, g, at) in TRANSFORMS.items():
            errors[f"{name} fp32"] = relative_error(winograd_conv(x, w, bt, g, at, lambda t: t), exact)
            errors[f"{name} bf16"] = relative_error(winograd_conv(x, w, bt, g, at, as_bf16), exact)
        ratios = {k: round(v / errors["direct bf16"], 2) for k, v in errors.items() if k.endswith("bf16")}
        print(f"{channels} channels @ {size} px:", {k: f"{v:.2e}" for k, v in errors.items()},
              "/ direct bf16:", ratios)


if __name__ == "__main__":
    main()
