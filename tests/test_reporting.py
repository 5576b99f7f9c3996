"""Numbers in report.md: integers in full, floats to 4 significant digits, never an exponent."""

import pytest

from seqrec.reporting import format_number


@pytest.mark.parametrize(
    ("value", "shown"),
    [(31010, "31,010"), (943, "943"), (0, "0"), (41.2837, "41.28"), (12345.678, "12,346"),
     (2.0, "2"), (0.0123456, "0.01235"), (1234567, "1,234,567")],
)  # fmt: skip
def test_format_number(value, shown):
    assert format_number(value) == shown
