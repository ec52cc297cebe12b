"""Measuring generators: one timing helper, the machine's peak, end-to-end and per-layer tables.

- `timing`: `time_call` (medians with warm-up, a time budget, wall or CPU clock), `gflops`, `num_threads`;
- `peak`: the fp32 (and bf16) conv peak measured in the same run as the figures compared with it;
- `generator_bench`: random config-f weights, `time_forward` (ours, or the official formulation on the same weights),
  the (resolution, ratio) sweep `run_generator_bench`;
- `backends`: the backend each styled conv of a forward took;
- `slimgan_bench`: every width of a SlimGAN generator on one batch (`run_slimgan_bench`, `SlimBenchResult`);
- `report`: markdown, plot and files of a `BenchResult` (also read from pytest-benchmark JSON) or a
  `SlimBenchResult`;
- `layers`: per-layer timings of one forward.
"""

from anycost.benchmark.backends import backend_codes, layer_backends
from anycost.benchmark.generator_bench import (
    DEFAULT_IMPLS,
    IMPLS,
    OFFICIAL,
    BenchResult,
    Row,
    check_entries,
    forward_call,
    latent,
    machine_info,
    random_generator,
    run_generator_bench,
    time_forward,
)
from anycost.benchmark.layers import layer_macs, layer_table, layer_times
from anycost.benchmark.peak import PEAK_SHAPE, Peak, measure_peak, peak_macs
from anycost.benchmark.report import (
    from_pytest_benchmark,
    load_result,
    markdown_table,
    plot,
    report_markdown,
    slim_markdown_table,
    slim_report_markdown,
    write_outputs,
)
from anycost.benchmark.slimgan_bench import SLIM_BATCH, SlimBenchResult, WidthRow, run_slimgan_bench
from anycost.benchmark.timing import CLOCKS, Timing, gflops, num_threads, time_call

__all__ = [
    "CLOCKS",
    "DEFAULT_IMPLS",
    "IMPLS",
    "OFFICIAL",
    "PEAK_SHAPE",
    "BenchResult",
    "Peak",
    "Row",
    "SLIM_BATCH",
    "SlimBenchResult",
    "Timing",
    "WidthRow",
    "backend_codes",
    "check_entries",
    "forward_call",
    "from_pytest_benchmark",
    "gflops",
    "latent",
    "layer_backends",
    "layer_macs",
    "layer_table",
    "layer_times",
    "load_result",
    "machine_info",
    "markdown_table",
    "measure_peak",
    "num_threads",
    "peak_macs",
    "plot",
    "random_generator",
    "report_markdown",
    "run_generator_bench",
    "run_slimgan_bench",
    "slim_markdown_table",
    "slim_report_markdown",
    "time_call",
    "time_forward",
    "write_outputs",
]
