"""Helpers of the test-suite (not collected: no module here is named test_*).

registry   the losses the tests are parametrised over (from fastloss._spec and
           loss_data), the comparison helpers, PyTorch's loss and gradient
loss_data  each loss's test data: the one table a new loss adds a row to
argspace   the argument space and the oracle of the fuzzers
           (tests/hardening/test_fuzz.py and fuzz/fuzz_args.py)
isa_check  the child process of tests/values/test_isa.py
"""
