"""The JSONL training log of a run folder: one record per step, trimmed back to the checkpoint on resume.

Every trainer writes ``log.jsonl`` the same way, so a resumed run's log reads as if it had never stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

from anycost.fileio import atomic_write


def append_record(path, record: dict) -> None:
    """Append `record` (a JSON object with a "step") as one line of the log at `path`."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def trim_log(path, step: int) -> None:
    """Drop the records of steps after `step` (written by a run that was interrupted after its last checkpoint);
    nothing happens when the log does not exist."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in kept)))
