"""Shared pytest configuration.

The tests live in one folder per subject (values/, options/, errors/,
threads/, hardening/, pytorch/, tools/), without ``__init__.py``: pytest's
default ``prepend`` import mode imports each test module by its basename, so
basenames must be unique across the folders. The helpers are the package
``_support/`` beside this file (the loss registry and the comparison helpers,
the fuzzers' argument space, the ISA child script), imported as
``from _support.registry import ...``: pytest puts this folder on
``sys.path`` to import this conftest, and the lines below make sure of it
whatever the import mode, so every folder (and ``pytest tests/errors``
alone) sees ``_support``.

No folder here may be named like a module the tests import: with this folder
on ``sys.path`` a folder ``torch/`` would make ``import torch`` succeed, as an
empty namespace package, where PyTorch is not installed (hence ``pytorch/``).
"""

import glob
import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def _stop_if_the_source_folder_shadows_the_package():
    """`python -m pytest` from the repository root puts the root on sys.path,
    so `import fastloss` finds the source folder; without a build in place
    (pip install -e .) it has no compiled extension and every import fails.
    Say so once, plainly, instead of a circular-import error per test file."""
    spec = importlib.util.find_spec("fastloss")
    if spec is None or not spec.origin:
        return
    folder = os.path.dirname(spec.origin)
    if glob.glob(os.path.join(folder, "_core.*.so")) or glob.glob(
            os.path.join(folder, "_core.*.pyd")):
        return
    pytest.exit(f"{folder} has no compiled extension (fastloss._core), and this run imports "
                "it instead of an installed fastloss: run `pip install -e .` once (then "
                "`pytest` and `python -m pytest` both work), or run plain `pytest`, which "
                "tests the installed package.", returncode=4)


_stop_if_the_source_folder_shadows_the_package()

from hypothesis import HealthCheck, settings

# The first call of a kernel may be slow (page faults, thread-pool start-up):
# no per-example deadline.  Example counts are kept small so that the whole
# suite stays within a couple of minutes on two cores.
settings.register_profile(
    "fastloss",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("fastloss")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "installed_only: runs only in test_wheel.py's run against the installed "
        "wheel (FASTLOSS_INSTALLED_AT set); deselected elsewhere")


def pytest_collection_modifyitems(config, items):
    """Deselect installed-only tests outside the wheel run, so a normal run
    reports no skips for them."""
    if os.environ.get("FASTLOSS_INSTALLED_AT"):
        return
    keep = [item for item in items if item.get_closest_marker("installed_only") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
