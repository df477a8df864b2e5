"""Gated attention pooling (Ilse et al. 2018): attention weights and the empty set."""

from __future__ import annotations

import torch

from deepsets import GatedAttentionPooling, pack_sets

D = 4


def test_gated_pooling_of_an_empty_set_is_zero() -> None:
    pool = GatedAttentionPooling(D).double()
    out = pool(torch.randn(2, 3, D, dtype=torch.float64), torch.tensor([[0, 0, 0], [1, 0, 1]]) > 0)
    torch.testing.assert_close(out[0], torch.zeros(D, dtype=torch.float64))


def test_gated_attention_weights_sum_to_one_and_zero_on_padding() -> None:
    pool = GatedAttentionPooling(D)
    x, mask = torch.randn(3, 6, D), torch.rand(3, 6) > 0.4
    mask[0] = False
    a = pool.attention(x, mask)
    assert bool((a[~mask] == 0).all())
    expected_sums = mask.any(dim=1).to(a.dtype)
    torch.testing.assert_close(a.sum(dim=1), expected_sums)
    z = pool(x, mask)
    torch.testing.assert_close(
        z, torch.einsum("bm,bmd->bd", a, x.masked_fill(~mask.unsqueeze(-1), 0))
    )
    nested = pack_sets([torch.randn(n, D) for n in (2, 5)])
    assert pool.attention(nested).is_nested
