#!/usr/bin/env python3
"""Coverage-guided fuzzing of fastloss's argument parsing (atheris, libFuzzer).

Each fuzz input is a byte string that ``tests/_support/argspace.py``
(shared with the Hypothesis test tests/hardening/test_fuzz.py) turns into one call
of a public entry point -- the loss, the dtype/shape/layout of every array,
the options, ``grad_output`` and ``out=``, valid or with deliberate defects --
and then judges: a valid call must match the float64 reference, a defective
one must raise TypeError or ValueError naming a defective argument. Any other
outcome (another exception, a wrong result) is reported by libFuzzer as a
crash and the input saved; a real crash (a signal in the C kernels) is caught
the same way. fastloss's Python modules are instrumented, so libFuzzer steers
towards inputs that reach new branches of the validation code.

Run (from the repository root, with fastloss importable, e.g. installed or
``PYTHONPATH=.`` after ``python setup.py build_ext --inplace``)::

    python fuzz/fuzz_args.py -max_total_time=60            # CI: a bounded run
    python fuzz/fuzz_args.py fuzz/crash-<sha>               # replay a finding

Any libFuzzer flag works (``-runs=N``, ``-artifact_prefix=DIR/``,
``-print_final_stats=1``); unless given, ``-max_len=512 -len_control=0`` let
inputs be long enough for every choice from the start, and ``-timeout=30``
reports a call that hangs. Progress lines
``fuzz_args: N calls, K valid, R refused ...`` go to stderr as the run goes
(libFuzzer ends the process without Python's atexit).
"""

import os
import sys
from collections import Counter

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # the package tests/_support

with atheris.instrument_imports(include=["fastloss"]):
    import fastloss  # noqa: F401  (instrumented before anything else imports it)

from _support import argspace  # noqa: E402

OUTCOMES = Counter()
DEFAULT_FLAGS = ["-max_len=512", "-len_control=0", "-timeout=30"]


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    call = argspace.draw_call(argspace.Draw(fdp.ConsumeIntInRange))
    OUTCOMES[argspace.check(call)] += 1
    total = sum(OUTCOMES.values())
    if total % 2000 == 0:
        print(f"fuzz_args: {total} calls, {OUTCOMES['ok']} valid (matched the reference), "
              f"{OUTCOMES['refused']} refused cleanly, {OUTCOMES['not_yet']} not implemented "
              "yet", file=sys.stderr, flush=True)


def main():
    argv = list(sys.argv)
    for flag in DEFAULT_FLAGS:
        if not any(a.startswith(flag.split("=")[0] + "=") for a in argv[1:]):
            argv.append(flag)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
