"""The libanycost checks run against the AddressSanitizer build, in a Python started with the ASan runtime preloaded
(test_capi_asan.py starts it): the bad files and bad arguments, renders and the mapping compared with the
references the parent computed with the Python generator, and two threads rendering at once. numpy only.

    python _asan_driver.py LIBANYCOST.so SPEC.json
SPEC: {"model": path, "bad_files": {name: path}, "refs": npz path, "cases": [render kwargs, ...], "int8": {"model":
path, "refs": npz path, "cases": [...]}}; the first npz holds case<i>_w / case<i>_want per case, and z / w for the
mapping; the int8 one w and case<i>_want. Exits 0 when every check passes.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _capi  # noqa: E402 - after the path set-up
import numpy as np  # noqa: E402


def main(lib_path: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    refs = np.load(spec["refs"])
    lib = _capi.Lib(lib_path)
    _capi.check_bad_files(lib, {k: Path(v) for k, v in spec["bad_files"].items()})
    model = lib.model(spec["model"])
    _capi.check_bad_arguments(lib, model)
    assert _capi.max_rel_diff(model.mapping(refs["z"]), refs["w"]) < 1e-4
    outputs = []
    for i, kwargs in enumerate(spec["cases"]):
        if kwargs.pop("mean", False):
            kwargs["mean"] = model.w_avg()
        code, rgb, err = model.render(refs[f"case{i}_w"], **kwargs)
        assert code == 0, err
        diff = _capi.max_rel_diff(rgb, refs[f"case{i}_want"])
        assert diff < 1e-4, (kwargs, diff)
        outputs.append((kwargs, rgb))

    # Two threads, two configs, one model (the first two cases).
    results: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def work(i):
        barrier.wait()
        for _ in range(2):
            results[i].append(model.render(refs[f"case{i}_w"], **outputs[i][0]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert len(results[i]) == 2 and all(code == 0 and np.array_equal(rgb, outputs[i][1])
                                            for code, rgb, _ in results[i])
    model.close()

    # An int8 model: its convs run the int8 kernels from slices packed at the first render (an activation may round
    # the other way: _capi.INT8_MEAN).
    int8 = spec["int8"]
    refs = np.load(int8["refs"])
    model = lib.model(int8["model"])
    for i, kwargs in enumerate(int8["cases"]):
        code, rgb, err = model.render(refs["w"], **kwargs)
        want = refs[f"case{i}_want"]
        assert code == 0, err
        assert _capi.mean_rel_diff(rgb, want) < _capi.INT8_MEAN, kwargs
    model.close()
    print(f"asan driver: {len(spec['cases'])} renders, {len(spec['bad_files'])} bad files, threads, int8: ok")


if __name__ == "__main__":
    main(*sys.argv[1:])
