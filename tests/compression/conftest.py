"""Fixtures of the compression tests."""

import pytest

from anycost import ops
from anycost.compression import int8


@pytest.fixture
def int8_everywhere(monkeypatch):
    """impl="auto" runs every int8 layer of the rule in int8 at this CPU's level, as on a level with an int8 dot
    product: the tests of what the int8 layers compute then cover the plain convs on every CPU (without VNNI "auto"
    runs those in fp32, `int8.plain_convs_pay`; its own test checks that)."""
    monkeypatch.setattr(int8, "DOT_PRODUCT_LEVELS", (*int8.DOT_PRODUCT_LEVELS, ops.cpu_capability()))
