"""Print the end-to-end markdown table (and write .md / .png) from a benchmark JSON file, or measure.

    python bench/report.py out/bench/pytest.json [--out out/bench]   # pytest --benchmark-json output
    python bench/report.py out/bench/bench.json                       # an `anycost bench` result
    python bench/report.py --run [anycost bench options]              # measure now (= anycost bench)

All logic lives in `anycost.benchmark`; this script only wires files to it.
"""

from __future__ import annotations

import argparse
import sys

from anycost import benchmark


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run"]:
        from anycost.cli import main as cli_main

        return cli_main(["bench", *argv[1:]])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", help="pytest-benchmark --benchmark-json file or anycost bench.json")
    parser.add_argument("--out", "-o", help="also write bench.md, bench.json and bench.png into this folder")
    args = parser.parse_args(argv)
    try:
        result = benchmark.load_result(args.json)
    except (OSError, ValueError, KeyError) as err:
        print(f"report: error: {err}", file=sys.stderr)
        return 1
    print(benchmark.report_markdown(result))
    if args.out:
        paths = benchmark.write_outputs(result, args.out)
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
