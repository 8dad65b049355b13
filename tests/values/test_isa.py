"""Every compiled instruction-set path against the reference.

The path is picked once per process, at import, from the FASTLOSS_ISA
environment variable, so each path runs in a child process (tests/_support/isa_check.py);
the main process's own path is covered by the rest of the suite.
"""

import pytest
from _support.isa_child import run_on_isa

import fastloss


def _other_isas():
    compiled = list(fastloss.build_info().get("isas", {}))
    return [name for name in compiled if name != fastloss.isa()]


@pytest.mark.parametrize(
    "isa", _other_isas() or [pytest.param(None, marks=pytest.mark.skip(reason="one ISA path only"))]
)
def test_isa_path_matches_reference(isa):
    run_on_isa("isa_check", isa)
