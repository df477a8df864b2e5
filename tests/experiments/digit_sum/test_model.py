"""The digit-sum model is invariant to the order of the digits."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from deepsets.experiments._common import generator_for
from deepsets.experiments.digit_sum.data import sample_digit_sets
from deepsets.experiments.digit_sum.model import build_model
from deepsets.testing import assert_invariant


@given(st.permutations(list(range(7))), st.integers(0, 7))
def test_models_are_invariant_to_the_order_of_digits(order: list[int], size: int) -> None:
    torch.manual_seed(0)
    model = build_model("integer", [8])
    features, mask, _ = sample_digit_sets("integer", 3, 7, generator_for(size), size=size)
    permuted = torch.tensor(order)
    assert_close(model(features[:, permuted], mask[:, permuted]), model(features, mask))
    assert_invariant(model, features, mask=mask)
