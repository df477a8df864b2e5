"""The code a user would paste from the seed pages runs unchanged against the library.

Seeds ``000`` (equivariant models how-to) and ``001`` (architecture decisions) hold the
snippets; ``003`` (front page) has no Python, only the formula and a BibTeX entry. Each
test body below is a snippet as the seed writes it, followed by assertions on what the
seed's comments promise. Where a snippet reads a name the seed defines elsewhere (or
never), the test defines it first, marked "given:".
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


# ========================================================= 000: Equivariant Models


def test_000_building_block(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from deepsets import PermutationEquivariantLayer

    layer = PermutationEquivariantLayer(
        input_dim=8,
        output_dim=16,
        pool_type="max",  # 'max' or 'sum'
    )
    layer.eval()

    x = torch.randn(4, 10, 8)  # (batch=4, set_size=10, features=8)
    out = layer(x)
    print(out.shape)  # torch.Size([4, 10, 16])

    assert capsys.readouterr().out.strip() == "torch.Size([4, 10, 16])"


def test_000_verifying_equivariance(capsys: pytest.CaptureFixture[str]) -> None:
    from deepsets import PermutationEquivariantLayer

    layer = PermutationEquivariantLayer(input_dim=8, output_dim=16, pool_type="max")  # given
    layer.eval()
    x = torch.randn(4, 10, 8)  # given

    perm = torch.randperm(10)
    with torch.no_grad():
        out_orig = layer(x)
        out_perm = layer(x[:, perm, :])

    # Output permuted by the same perm should equal output of permuted input
    max_err = (out_orig[:, perm, :] - out_perm).abs().max().item()
    print(f"Equivariance error: {max_err:.2e}")  # ~0.00e+00

    assert max_err < 1e-6
    assert capsys.readouterr().out.startswith("Equivariance error: ")


def test_000_stacking_layers(capsys: pytest.CaptureFixture[str]) -> None:
    from deepsets import DeepSetsEquivariant

    model = DeepSetsEquivariant(
        input_dim=8,
        hidden_dims=[32, 32],  # 2 hidden equivariant layers + 1 output layer = 3 total
        output_dim=1,
        pool_type="max",
    )
    model.eval()

    x = torch.randn(4, 10, 8)
    out = model(x)
    print(out.shape)  # torch.Size([4, 10, 1]) — one score per element

    assert capsys.readouterr().out.strip() == "torch.Size([4, 10, 1])"
    assert len(model.layers) == 3


def test_000_with_dropout() -> None:
    from deepsets import DeepSetsEquivariant

    model = DeepSetsEquivariant(
        input_dim=8,
        hidden_dims=[64, 64, 32],
        output_dim=4,
        pool_type="max",
        dropout=0.1,
    )

    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.1 for m in model.modules())
    assert model.eval()(torch.randn(2, 5, 8)).shape == (2, 5, 4)


def test_000_final_pool(capsys: pytest.CaptureFixture[str]) -> None:
    from deepsets import DeepSetsEquivariant

    x = torch.randn(4, 10, 8)  # given: the x of the previous snippet

    model_inv = DeepSetsEquivariant(
        input_dim=8,
        hidden_dims=[32, 32],
        output_dim=16,
        pool_type="max",
        final_pool="sum",  # 'sum', 'max', or 'mean'
    )
    out = model_inv(x)
    print(out.shape)  # torch.Size([4, 16]) — one vector per set

    assert capsys.readouterr().out.strip() == "torch.Size([4, 16])"


def test_000_anomaly_detection(capsys: pytest.CaptureFixture[str]) -> None:
    from deepsets import DeepSetsEquivariant

    model = DeepSetsEquivariant(
        input_dim=16,
        hidden_dims=[64, 64],
        output_dim=1,  # one anomaly score per element
        pool_type="max",
    )

    x = torch.randn(32, 20, 16)  # batch of 32 sets, 20 elements each
    scores = model(x)  # (32, 20, 1)
    scores = scores.squeeze(-1)  # (32, 20)

    # Highest-scoring element is the predicted anomaly
    anomaly_idx = scores.argmax(dim=1)
    print(anomaly_idx.shape)  # torch.Size([32])

    assert capsys.readouterr().out.strip() == "torch.Size([32])"


def test_000_mask() -> None:
    from deepsets import DeepSetsEquivariant

    # given: the anomaly model above, fed a batch of the shape the snippet's mask is for
    model = DeepSetsEquivariant(input_dim=16, hidden_dims=[64, 64], output_dim=1)
    x = torch.randn(4, 10, 16)

    mask = torch.ones(4, 10)
    mask[0, 7:] = 0  # first set has only 7 elements

    out = model(x, mask)  # (4, 10, output_dim)

    # Only positions [:7] are meaningful for the first set
    assert out.shape == (4, 10, 1)
    assert torch.equal(out[0, 7:], torch.zeros(3, 1))  # and the rest hold 0 here
    torch.testing.assert_close(out[0, :7], model(x[:1, :7])[0])


def test_000_mask_after_the_anomaly_example_is_a_clear_error() -> None:
    """Read top to bottom, the page feeds its (4, 10) mask to the (32, 20, 16) batch."""
    from deepsets import DeepSetsEquivariant

    model = DeepSetsEquivariant(input_dim=16, hidden_dims=[64, 64], output_dim=1)
    x = torch.randn(32, 20, 16)
    mask = torch.ones(4, 10)
    mask[0, 7:] = 0
    with pytest.raises(ValueError, match=r"mask must have shape \(B, M\) = \(32, 20\)"):
        model(x, mask)


def test_000_final_pool_passes_the_mask() -> None:
    """The note: with final_pool the mask also reaches the final pooling."""
    from deepsets import DeepSetsEquivariant

    model_inv = DeepSetsEquivariant(8, [32, 32], 16, pool_type="max", final_pool="sum")
    x = torch.randn(4, 10, 8)
    mask = torch.ones(4, 10)
    mask[0, 7:] = 0
    torch.testing.assert_close(model_inv(x, mask)[0], model_inv(x[:1, :7])[0])


# ===================================================== 001: Architecture Decisions


def _all_negative_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """given: the seed's example set [−0.3, −0.8, −0.1] padded to 5 with zeros."""
    tensor = torch.tensor([[[-0.3], [-0.8], [-0.1], [0.0], [0.0]]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]])
    return tensor, mask


def test_001_zero_fill_is_wrong() -> None:
    from deepsets import _masked_pool

    tensor, mask = _all_negative_batch()

    # WRONG: if all active values are negative, 0-padded positions will win
    tensor[mask == 0] = 0.0
    result = tensor.max(dim=1)[0]

    assert result.item() == 0.0  # the padding won, as the seed warns
    assert _masked_pool(tensor, "max", mask).item() == pytest.approx(-0.1)


def test_001_minus_infinity_fill_is_right() -> None:
    from deepsets import _masked_pool

    tensor, mask = _all_negative_batch()
    reference = _masked_pool(tensor, "max", mask)

    # CORRECT: -inf never wins against any finite value
    tensor = tensor.masked_fill(mask.unsqueeze(-1) == 0, float("-inf"))
    result = tensor.max(dim=1)[0]

    assert result.item() == pytest.approx(-0.1)
    torch.testing.assert_close(reference, result)


def test_001_empty_sets_are_not_a_nan_risk_here() -> None:
    """The seed warns an all-zero mask gives −∞; decision 3 of issue 3 makes it 0."""
    from deepsets import _masked_pool

    tensor = torch.randn(2, 4, 3, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    result = _masked_pool(tensor, "max", mask)
    result.sum().backward()
    assert torch.equal(result[1], torch.zeros(3))
    assert tensor.grad is not None and bool(torch.isfinite(tensor.grad).all())


def test_001_module_list_forward_loop() -> None:
    """The seed's loop over ``self.layers`` runs on ``model.layers``.

    In this library ``layers`` holds only the ``len(hidden_dims) + 1`` equivariant layers
    (issue 3); the ReLU sits between them in ``forward``, so the loop reproduces the
    model once the activation is put back between the layers.
    """
    from deepsets import DeepSetsEquivariant, PermutationEquivariantLayer

    self = DeepSetsEquivariant(8, [32, 32], 4).eval()  # given
    x = torch.randn(4, 10, 8)
    mask = torch.ones(4, 10)
    mask[0, 7:] = 0
    out = x

    for layer in self.layers:
        if isinstance(layer, PermutationEquivariantLayer):  # noqa: SIM108 (the seed's form)
            out = layer(out, mask)  # pass mask
        else:
            out = layer(out)  # ReLU / Dropout — no mask arg

    assert isinstance(self.layers, torch.nn.ModuleList)
    assert out.shape == (4, 10, 4)
    with_relu = x
    for index, layer in enumerate(self.layers):
        with_relu = layer(with_relu, mask)
        if index < len(self.layers) - 1:
            with_relu = torch.relu(with_relu)
    torch.testing.assert_close(self(x, mask), with_relu)


def test_001_film_needs_a_hidden_layer() -> None:
    from deepsets import DeepSetsConditional

    with pytest.raises(ValueError, match="phi_hidden_dims"):
        DeepSetsConditional(3, 2, [], [8], 1, fusion_type="film")


def test_001_mean_is_allowed_in_the_equivariant_layer() -> None:
    """The seed excludes mean; issue 3 decision 1 allows it (and it stays equivariant)."""
    from deepsets import PermutationEquivariantLayer
    from deepsets.testing import assert_equivariant

    layer = PermutationEquivariantLayer(8, 16, pool_type="mean").eval()
    assert_equivariant(layer, torch.randn(4, 10, 8))


def test_003_front_page_decomposition() -> None:
    """003 has no code; its formula f(X) = ρ(Σ φ(x)) is DeepSetsInvariant's default."""
    from deepsets import DeepSetsInvariant

    model = DeepSetsInvariant(3, [8], [8], 1)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(model(x), model.rho(model.phi(x).sum(dim=1)))
