"""The SetTransformer model: its defaults are the paper's clustering network."""

from __future__ import annotations

import torch

from deepsets import SetTransformer


def test_set_transformer_defaults_are_the_papers_clustering_network() -> None:
    model = SetTransformer(2, 5)
    assert [type(b).__name__ for b in model.encoder] == ["ISAB", "ISAB"]
    assert [type(b).__name__ for b in model.decoder] == ["SAB", "SAB"]
    assert model.encoder[0].num_inducing == 32 and model.pool.num_seeds == 1
    assert model(torch.randn(2, 7, 2)).shape == (2, 1, 5)
    assert "encoder=2xISAB(m=32)" in repr(model)
