"""Classify the x86-64 machine code of a binary, function by function, with `objdump -d`.

Used by test_isa_build.py to check that instruction sets stay in the namespaces compiled for them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict

_FUNC = re.compile(r"^[0-9a-f]+ <(.+)>:$")
# "  4010:\t62 f1 7c 48 10 06 \tvmovups (%rsi),%zmm0"; long encodings continue on lines without a mnemonic.
_INSN = re.compile(r"^\s*[0-9a-f]+:\t((?:[0-9a-f]{2} )+)\s*(?:\t(\S+)\s*(.*))?$")
_HIGH_REG = re.compile(r"%[xy]mm(1[6-9]|2[0-9]|3[01])\b")
_MASK_REG = re.compile(r"%k[0-7]\b|\{%k[0-7]\}")


def objdump_available() -> bool:
    return shutil.which("objdump") is not None


def classify(path: str) -> dict[str, set[str]]:
    """{demangled function name: set of 'evex' (AVX-512 encoding or registers) / 'vex' (AVX, AVX2, FMA), plus
    'vnni' (a VNNI dot product, vpdp*)}.

    Functions with none are left out. EVEX: first opcode byte 0x62 (always EVEX in 64-bit mode), a zmm,
    xmm16-31 / ymm16-31 or mask register; VEX: any other instruction whose mnemonic starts with 'v'.
    """
    out = subprocess.run(["objdump", "-d", "-C", path], capture_output=True, text=True, check=True).stdout
    found: dict[str, set[str]] = defaultdict(set)
    func = None
    for line in out.splitlines():
        m = _FUNC.match(line)
        if m:
            func = m.group(1)
            continue
        m = _INSN.match(line)
        if not m or func is None or m.group(2) is None:
            continue
        raw = m.group(1).split()
        mnemonic, operands = m.group(2), (m.group(3) or "").split("#")[0]  # not objdump's comment: its symbol
        # names may spell "ymm" (c10::Type::symmetric)
        while raw and raw[0] == "67":
            raw = raw[1:]
        if mnemonic.startswith("vpdp"):
            found[func].add("vnni")
        if (raw and raw[0] == "62") or "%zmm" in operands or _HIGH_REG.search(operands) or _MASK_REG.search(operands):
            found[func].add("evex")
        elif mnemonic.startswith("v") or "%ymm" in operands:
            found[func].add("vex")
    return dict(found)
