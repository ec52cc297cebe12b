"""Would an int8 Winograd F(2x2, 3x3) conv be about as accurate as the direct int8 conv the int8 models run
(anycost.compression.int8: activations rounded to int8 with one scale per sample, weights with one per output
channel)? Simulated, no kernel: the transformed input V = B^T d B rounded to int8 with one scale per transform
position (16; the alternative, one scale for all, also shown), the transformed weight U = G g G^T with one per
(output channel, position), exact integer sums, then the output transform A^T M A. Each position is its own GEMM, so
its scales cost nothing in the kernel. Printed: the rms error relative to the output's rms against float64, for the
direct int8 conv and both F(2x2) variants, and their ratios to the direct int8 error; Gaussian and heavy-tailed
(Laplace) activations.

Run: `python bench/int8_winograd_error.py` (seconds; no native ops needed). The numbers are in bench/RESULTS.md
(Compression: int8): F(2x2) with per-position scales has 1.1-1.6x the direct int8 error, with one scale 1.3-2.0x.
"""

import torch
import torch.nn.functional as F
from bf16_winograd_error import TRANSFORMS, relative_error

QMAX = 127


def quantize(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """t rounded to int8 steps (symmetric, clamp +-127) with one scale per index of the dims not in `dims` (the max
    |t| over `dims` / 127), dequantised."""
    scale = t.abs().amax(dim=dims, keepdim=True).clamp_min(1e-30) / QMAX
    return (t / scale).round().clamp(-QMAX, QMAX) * scale


def direct_int8(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(quantize(x, (1, 2, 3)), quantize(w, (1, 2, 3)), padding=1)


def winograd_int8(x: torch.Tensor, w: torch.Tensor, per_position: bool) -> torch.Tensor:
    """F(2x2, 3x3) of x [N, C, H, W] (H, W even) and w [O, C, 3, 3], padding 1, on int8-rounded transforms."""
    bt, g, at = (torch.tensor(m, dtype=torch.float64) for m in TRANSFORMS["F(2x2)"])
    d = F.pad(x, (1, 1, 1, 1)).unfold(2, 4, 2).unfold(3, 4, 2)  # N C th tw 4 4
    v = torch.einsum("ij,nchwjk,lk->nchwil", bt, d, bt)
    u = torch.einsum("ij,ocjk,lk->ocil", g, w, g)
    v = quantize(v, (1, 2, 3) if per_position else (1, 2, 3, 4, 5))  # per sample (and position)
    u = quantize(u, (1,) if per_position else (1, 2, 3))  # per output channel (and position)
    y = torch.einsum("ij,nohwjk,lk->nohwil", at, torch.einsum("ocil,nchwil->nohwil", u, v), at)
    n, o, th, tw = y.shape[:4]
    return y.permute(0, 1, 2, 4, 3, 5).reshape(n, o, th * 2, tw * 2)


def main() -> None:
    torch.manual_seed(0)
    for law in ("gaussian", "laplace"):
        for channels, size in [(32, 64), (128, 32), (512, 16)]:
            x = torch.randn(2, channels, size, size, dtype=torch.float64)
            if law == "laplace":
                x = torch.distributions.Laplace(0.0, 1.0).sample(x.shape).double()
            w = torch.randn(64, channels, 3, 3, dtype=torch.float64) / (3 * channels ** 0.5)
            exact = F.conv2d(x, w, padding=1)
            errors = {"direct int8": relative_error(direct_int8(x, w), exact),
                      "F(2x2) int8, per position": relative_error(winograd_int8(x, w, True), exact),
                      "F(2x2) int8, one scale": relative_error(winograd_int8(x, w, False), exact)}
            ratios = {k: round(v / errors["direct int8"], 2) for k, v in errors.items() if k != "direct int8"}
            print(f"{law}, {channels} channels @ {size} px:", {k: f"{v:.2e}" for k, v in errors.items()},
                  "/ direct int8:", ratios)


if __name__ == "__main__":
    main()
