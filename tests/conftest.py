"""Shared pytest configuration.

The loss registry and the comparison helpers live in ``_registry.py`` beside
this file (pytest's default ``prepend`` import mode puts this folder on
``sys.path``, so test modules import it as ``_registry``).
"""

import os

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
