"""Shared pytest configuration.

The loss registry and the comparison helpers live in ``_registry.py`` beside
this file (pytest's default ``prepend`` import mode puts this folder on
``sys.path``, so test modules import it as ``_registry``).
"""

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
