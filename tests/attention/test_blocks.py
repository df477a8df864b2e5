"""MAB and PMA against their definitions: the authors' MAB (juho-lee/set_transformer,
modules.py) transcribed as a reference, and PMA's empty set and flattened output."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from deepsets import PMA, MultiheadAttentionBlock

D = 4


def test_pma_of_an_empty_set_is_its_seeds_through_the_block() -> None:
    """MAB(S, ∅) = LN(H + ReLU(H W^o + b^o)), H = LN(S W^q): the attention term is 0."""
    pma = PMA(D, num_seeds=2, num_heads=2, layer_norm=True).double()
    with torch.no_grad():
        out = pma(torch.randn(1, 3, D, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.bool))
        mab = pma.mab
        h = mab.ln0(mab.fc_q(pma.seeds))
        expected = mab.ln1(h + torch.relu(mab.fc_o(h)))
    torch.testing.assert_close(out[0], expected)


def _authors_mab(mab: MultiheadAttentionBlock, q_in: Tensor, k_in: Tensor) -> Tensor:
    """The MAB of the authors' code (modules.py), transcribed: heads split by ``split`` and
    stacked on the batch, softmax over keys scaled by sqrt(dim_V), residual on Q."""
    q, k, v = mab.fc_q(q_in), mab.fc_k(k_in), mab.fc_v(k_in)
    split = mab.output_dim // mab.num_heads
    q_, k_, v_ = (torch.cat(t.split(split, 2), 0) for t in (q, k, v))
    a = torch.softmax(q_.bmm(k_.transpose(1, 2)) / math.sqrt(mab.output_dim), 2)
    o = torch.cat((q_ + a.bmm(v_)).split(q.size(0), 0), 2)
    o = mab.ln0(o)
    o = o + torch.relu(mab.fc_o(o))
    return mab.ln1(o)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_mab_is_the_authors_mab(layer_norm: bool) -> None:
    torch.manual_seed(0)
    mab = MultiheadAttentionBlock(3, 5, 8, num_heads=4, layer_norm=layer_norm).double()
    x, y = torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(2, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(mab(x, y), _authors_mab(mab, x, y))
    # a mask equals dropping the masked keys
    mask = torch.tensor([[1, 1, 0, 1, 0, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    out = mab(x, y.masked_fill(~mask.unsqueeze(-1), math.nan), mask)
    for b in range(2):
        expected = _authors_mab(mab, x[b : b + 1], y[b : b + 1, mask[b]])
        torch.testing.assert_close(out[b : b + 1], expected)


def test_pma_flatten_and_pooled_dim() -> None:
    pma = PMA(6, num_seeds=3, num_heads=2, flatten=True)
    assert pma.pooled_dim == 18
    assert pma(torch.randn(2, 5, 6)).shape == (2, 18)
    assert "num_seeds=3" in repr(pma) and "flatten=True" in repr(pma)
