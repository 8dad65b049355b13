"""Short-row cross-entropy (C <= 16) on every compiled instruction-set path.

The tile strategy has one specialisation per C and, on the SIMD paths, moves
8 rows at a time by transposes, with the remainder rows, the tile's last
rows and in-place gradients on separate code paths; tests/_support/short_rows_check.py
checks each C from 1 to 16 with every option, in a child process per path
(the path is picked once per process, from FASTLOSS_ISA).
"""

import pytest
from _support.isa_child import run_on_isa

import fastloss


@pytest.mark.parametrize("isa", list(fastloss.build_info().get("isas", {})) or [fastloss.isa()])
def test_short_rows_every_c_every_option(isa):
    run_on_isa("short_rows_check", isa)
