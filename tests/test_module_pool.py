"""An attention pooling module as the pool of DeepSetsInvariant (src/deepsets/_module_pool.py):
symmetry, padded == packed == per-set loop, exact masking, weights as multiplicities,
saving, compile, and the errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn

from deepsets import (
    PMA,
    DeepSetsInvariant,
    GatedAttentionPooling,
    load_pretrained,
    masked_pool,
    pack_sets,
    pad_sets,
    segment_pool,
)
from deepsets.testing import assert_invariant

D, L = 3, 8
POOLS: dict[str, Callable[[], nn.Module]] = {
    "pma": lambda: PMA(L, num_seeds=1, num_heads=2, flatten=True),
    "pma-3-seeds-ln": lambda: PMA(L, num_seeds=3, num_heads=4, layer_norm=True, flatten=True),
    "gated": lambda: GatedAttentionPooling(L, attention_dim=5),
    "plain-attention": lambda: GatedAttentionPooling(L, attention_dim=5, gated=False),
}
SIZES = st.lists(st.integers(0, 9), min_size=1, max_size=5)


def _model(pool: str) -> DeepSetsInvariant:
    torch.manual_seed(0)
    return DeepSetsInvariant(D, [16, L], [8], 2, pool_type=POOLS[pool]()).double().eval()


def _sets(sizes: list[int], seed: int) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, D, generator=generator, dtype=torch.float64) for n in sizes]


def _reference(model: DeepSetsInvariant, s: Tensor) -> Tensor:
    """The definition on one set, through the modules' own checked forwards:
    ρ(pool(φ(x) for x in s)); no padding, no mask."""
    with torch.no_grad():
        h = model.phi(s).unsqueeze(0)  # (1, n, L)
        return model.rho(model.pool_module(h))[0]


@given(pool=st.sampled_from(list(POOLS)), seed=st.integers(0, 2**31 - 1), weighted=st.booleans())
def test_attention_pooled_model_is_invariant(pool: str, seed: int, weighted: bool) -> None:
    model = _model(pool)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 7, D, generator=generator, dtype=torch.float64)
    mask = torch.rand(3, 7, generator=generator, dtype=torch.float64) * 2
    mask[mask < 0.5] = 0
    assert_invariant(model, x, mask if weighted else mask > 0, generator=generator)
    assert_invariant(model, x, generator=generator)


@given(pool=st.sampled_from(list(POOLS)), sizes=SIZES, seed=st.integers(0, 2**31 - 1))
def test_padded_packed_and_loop_agree_whatever_the_padding_holds(
    pool: str, sizes: list[int], seed: int
) -> None:
    model = _model(pool)
    sets = _sets(sizes, seed)
    reference = torch.stack([_reference(model, s) for s in sets])
    x, mask = pad_sets(sets)
    junk = torch.tensor([math.nan, math.inf, -math.inf])[torch.arange(x.numel()) % 3]
    x = torch.where(mask.unsqueeze(-1), x, junk.view_as(x).to(x.dtype))
    with torch.no_grad():
        padded, packed = model(x, mask), model(pack_sets(sets))
    torch.testing.assert_close(padded, reference)
    torch.testing.assert_close(packed, reference)
    assert bool(torch.isfinite(padded).all())  # empty sets too


@given(pool=st.sampled_from(list(POOLS)), sizes=SIZES, seed=st.integers(0, 2**31 - 1))
def test_weights_are_multiplicities(pool: str, sizes: list[int], seed: int) -> None:
    """A multiset (elements drawn from a small palette, so they repeat) == its distinct
    elements weighted by their counts; a weight-0 element is padding even holding NaN."""
    model = _model(pool)
    generator = torch.Generator().manual_seed(seed)
    palette = torch.randn(4, D, generator=generator, dtype=torch.float64)
    multisets = [palette[torch.randint(0, 4, (n,), generator=generator)] for n in sizes]
    reference = torch.stack([_reference(model, s) for s in multisets])
    nan_row = torch.full((1, D), math.nan, dtype=torch.float64)
    distinct, weights = [], []
    for s in multisets:
        rows, counts = torch.unique(s, dim=0, return_counts=True)
        distinct.append(torch.cat([nan_row, rows]))
        weights.append(torch.cat([torch.zeros(1), counts.to(torch.float32)]).double())
    x, mask = pad_sets(distinct, weights)
    nested, jagged_weights = pack_sets(distinct, weights)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask), reference)
        torch.testing.assert_close(model(nested, jagged_weights), reference)


class _MeanPool(nn.Module):
    """A pooling module of the generic contract (not an attention block): masked mean."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.input_dim = self.pooled_dim = dim

    def forward(self, h: Tensor, mask: Tensor | None = None, **packed: object) -> Tensor:
        if packed:
            return segment_pool(h, "mean", weights=mask, **packed)  # type: ignore[arg-type]
        return masked_pool(h, "mean", mask)


def test_any_module_with_the_pooling_contract_is_called_as_the_functional_pools() -> None:
    torch.manual_seed(0)
    custom = DeepSetsInvariant(D, [L], [4], 2, pool_type=_MeanPool(L)).double()
    mean = DeepSetsInvariant(D, [L], [4], 2, pool_type="mean").double()
    mean.load_state_dict(custom.state_dict())
    sets = _sets([3, 0, 5], 1)
    x, mask = pad_sets(sets)
    torch.testing.assert_close(custom(x, mask), mean(x, mask))
    torch.testing.assert_close(custom(pack_sets(sets)), mean(pack_sets(sets)))
    assert custom.pool_type == "_MeanPool" and mean.pool_type == "mean"


def test_rho_takes_the_pooled_width_and_gradients_reach_the_pooling() -> None:
    model = DeepSetsInvariant(D, [L], [], 1, pool_type=PMA(L, num_seeds=3, flatten=True))
    first = model.rho[0]
    assert isinstance(first, nn.Linear) and first.in_features == 3 * L
    model(torch.randn(2, 4, D)).sum().backward()
    pool = model.pool_module
    assert isinstance(pool, PMA) and pool.seeds.grad is not None
    assert bool(pool.seeds.grad.abs().sum() > 0)


def test_pool_type_config_repr_and_save_load_round_trip(tmp_path: object) -> None:
    model = _model("pma-3-seeds-ln").float()
    assert model.pool_type == "PMA" and model.pool is None
    assert "pool_type='PMA'" in repr(model)
    assert model.config["pool_type"] == {
        "class": "PMA",
        "config": {"dim": L, "num_seeds": 3, "num_heads": 4, "layer_norm": True, "flatten": True},
    }
    again = DeepSetsInvariant(**model.config)  # the saved form rebuilds the architecture
    assert isinstance(again.pool_module, PMA) and again.pool_module.num_seeds == 3
    assert again.state_dict().keys() == model.state_dict().keys()
    directory = model.save_pretrained(tmp_path / "model")  # type: ignore[operator]
    loaded = load_pretrained(directory)
    assert isinstance(loaded, DeepSetsInvariant) and loaded.pool_type == "PMA"
    x, mask = torch.randn(4, 6, D), torch.rand(4, 6) > 0.3
    torch.testing.assert_close(loaded(x, mask), model(x, mask), rtol=0, atol=0)


@pytest.mark.parametrize("pool", ["pma", "gated"])
def test_padded_path_compiles_without_graph_breaks(pool: str) -> None:
    model = _model(pool).float()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x, mask = torch.randn(4, 6, D), torch.rand(4, 6) > 0.3
    with torch.no_grad():
        torch.testing.assert_close(compiled(x, mask), model(x, mask))


@pytest.mark.parametrize(
    ("pool_type", "error", "message"),
    [
        (
            lambda: PMA(4, flatten=True),
            ValueError,
            r"pool_type=PMA\(\.\.\.\) pools vectors of width input_dim=4, .* is 8; "
            r"expected input_dim=8",
        ),
        (lambda: PMA(L), ValueError, r"pool_type=PMA\(\.\.\.\) must .* flatten=True"),
        (
            lambda: "median",
            ValueError,
            r"pool_type must be one of 'sum', 'mean', 'max'; got 'median' \(or a pooling "
            r"module: PMA\(dim, flatten=True\), GatedAttentionPooling",
        ),
        (lambda: nn.Linear(L, L), TypeError, r"pool_type=Linear\(\.\.\.\) must have an int"),
        (
            lambda: {"class": "Popen", "config": {}},
            ValueError,
            r"pool_type names class 'Popen', which deepsets does not know; known: .*PMA",
        ),
        (lambda: {"class": "PMA"}, ValueError, r"pool_type as a dict must be a saved module"),
        (
            lambda: {"class": "PMA", "config": {"dim": L, "seeds": 2}},
            ValueError,
            r"the config of pool_type does not fit PMA: .*seeds",
        ),
    ],
)
def test_bad_pool_modules_name_the_argument(
    pool_type: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        DeepSetsInvariant(D, [L], [4], 1, pool_type=pool_type())  # type: ignore[arg-type]


def test_streaming_refuses_attention_pools_plainly() -> None:
    model = _model("pma").float()
    chunk = torch.randn(5, D)
    message = r"streaming .* needs pool_type 'sum', 'mean' or 'max'.*pool_type=PMA"
    with pytest.raises(ValueError, match=message):
        model.pool_chunks([chunk])
    with pytest.raises(ValueError, match=message):
        model.forward_chunks([chunk])
    with pytest.raises(ValueError, match=message):
        model.backward_chunks(lambda: [chunk], lambda out: out.sum())
