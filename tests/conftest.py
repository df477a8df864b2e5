"""Shared test settings: hypothesis profiles and deterministic torch."""

import os

import torch
from hypothesis import HealthCheck, settings

# "default" draws the same examples on every run (derandomize): the suite, and so CI, is
# reproducible, and a red run is a real regression, not a new random draw. "thorough" draws
# ten times as many fresh random examples each run, to look for new counterexamples:
#     HYPOTHESIS_PROFILE=thorough python -m pytest -q
settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("default"), max_examples=400, derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Tests check correctness on small tensors, where intra-op threads only add synchronisation
# (and oversubscribe a shared CI machine); speed is measured in benchmarks/, not here.
torch.set_num_threads(int(os.environ.get("DEEPSETS_TEST_THREADS", "1")))
