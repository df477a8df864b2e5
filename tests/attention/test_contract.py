"""What every attention module of the library promises (SAB, ISAB, PMA, SetTransformer,
gated attention pooling): symmetry, exact masking, the three input forms, weights as
multiplicities, empty sets, and errors that name the argument.

Expected values come from a loop running each set alone without padding (for the masking
and packing claims) and from the multiset with every element repeated ``w`` times
(weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn

from deepsets import (
    ISAB,
    PMA,
    SAB,
    GatedAttentionPooling,
    MultiheadAttentionBlock,
    SetTransformer,
    pack_sets,
    pad_sets,
)
from deepsets.testing import assert_equivariant, assert_invariant

D = 4


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    modules: dict[str, Callable[[], nn.Module]] = {
        "sab": lambda: SAB(D, 8, num_heads=2),
        "sab-ln": lambda: SAB(D, 8, num_heads=2, layer_norm=True),
        "isab": lambda: ISAB(D, 8, num_inducing=3, num_heads=2),
        "pma": lambda: PMA(D, num_seeds=2, num_heads=2),
        "gated": lambda: GatedAttentionPooling(D, attention_dim=5),
        "plain-attention": lambda: GatedAttentionPooling(D, attention_dim=5, gated=False),
        "set-transformer": lambda: SetTransformer(D, 3, hidden_dim=8, num_inducing=3),
        "set-transformer-sab": lambda: SetTransformer(
            D, 3, hidden_dim=8, num_heads=2, num_inducing=None, num_seeds=2, layer_norm=True
        ),
    }
    return modules[name]().double().eval()


EQUIVARIANT = ["sab", "sab-ln", "isab"]
INVARIANT = ["pma", "gated", "plain-attention", "set-transformer", "set-transformer-sab"]
ALL = EQUIVARIANT + INVARIANT
#: small sets, and sets spanning several of ISAB's 32-row tiles
SIZES = st.lists(st.one_of(st.integers(0, 6), st.integers(0, 80)), min_size=1, max_size=4)


def _sets(sizes: list[int], seed: int) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, D, generator=generator, dtype=torch.float64) for n in sizes]


def _alone(model: nn.Module, s: Tensor) -> Tensor:
    """The model on one set, no padding, no mask: the reference."""
    with torch.no_grad():
        return model(s.unsqueeze(0))[0]


@given(
    name=st.sampled_from(ALL),
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(["bool", "weights"]),
)
def test_symmetry(name: str, seed: int, kind: str) -> None:
    model = _build(name)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 7, D, generator=generator, dtype=torch.float64)
    mask = torch.rand(3, 7, generator=generator, dtype=torch.float64) * 2
    mask[mask < 0.5] = 0
    mask = mask > 0 if kind == "bool" else mask
    check = assert_equivariant if name in EQUIVARIANT else assert_invariant
    check(model, x, mask, generator=generator)
    check(model, x, generator=generator)


@given(name=st.sampled_from(ALL), sizes=SIZES, seed=st.integers(0, 2**31 - 1))
def test_padded_packed_rows_and_loop_agree_whatever_the_padding_holds(
    name: str, sizes: list[int], seed: int
) -> None:
    model = _build(name)
    sets = _sets(sizes, seed)
    expected = [_alone(model, s) for s in sets]
    x, mask = pad_sets(sets)
    junk = torch.tensor([math.nan, math.inf, -math.inf])[torch.arange(x.numel()) % 3]
    x = torch.where(mask.unsqueeze(-1), x, junk.view_as(x))
    nested = pack_sets(sets)
    rows, offsets = nested.values(), nested.offsets()
    index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    order = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        padded, packed = model(x, mask), model(nested)
        by_offsets = model(rows, offsets=offsets)
        shuffled = model(rows[order], index=index[order], num_sets=len(sizes))
    if name in EQUIVARIANT:
        assert bool((padded[~mask] == 0).all())  # padding holds exactly 0
        reference = torch.cat(expected)
        torch.testing.assert_close(padded[mask], reference)
        torch.testing.assert_close(packed.values(), reference)
        torch.testing.assert_close(by_offsets, reference)
        torch.testing.assert_close(shuffled, reference[order])
    else:
        reference = torch.stack(expected)
        for out in (padded, packed, by_offsets, shuffled):
            torch.testing.assert_close(out, reference)


@given(name=st.sampled_from(ALL), sizes=SIZES, seed=st.integers(0, 2**31 - 1))
def test_weights_are_multiplicities(name: str, sizes: list[int], seed: int) -> None:
    """Integer weights give the outputs of the multiset with every row repeated w times
    (weight 0: the row is padding, even when it holds NaN)."""
    model = _build(name)
    sets = _sets(sizes, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    counts = [torch.randint(0, 4, (s.shape[0],), generator=generator) for s in sets]
    dirty = [
        s.masked_fill((c == 0).unsqueeze(-1), math.nan) for s, c in zip(sets, counts, strict=True)
    ]
    weights = [c.to(torch.float64) for c in counts]
    x, mask = pad_sets(dirty, weights)
    nested, jagged_weights = pack_sets(dirty, weights)
    with torch.no_grad():
        padded, packed = model(x, mask), model(nested, jagged_weights)
    expanded = [s.repeat_interleave(c, dim=0) for s, c in zip(sets, counts, strict=True)]
    if name in EQUIVARIANT:
        # every copy of a row has the row's output: compare with the row's first copy
        rows = []
        for s, c in zip(expanded, counts, strict=True):
            out = _alone(model, s)  # (sum(c), 8)
            first = (torch.cumsum(c, 0) - c).clamp(max=max(out.shape[0] - 1, 0))
            picked = out[first] if out.shape[0] else out.new_zeros(c.shape[0], out.shape[1])
            rows.append(picked.masked_fill((c == 0).unsqueeze(-1), 0.0))  # padding: 0
        reference = torch.cat(rows)
        torch.testing.assert_close(packed.values(), reference)
        torch.testing.assert_close(padded[pad_sets(sets)[1]], reference)
        assert bool((padded[mask == 0] == 0).all())
    else:
        reference = torch.stack([_alone(model, s) for s in expanded])
        torch.testing.assert_close(padded, reference)
        torch.testing.assert_close(packed, reference)


@pytest.mark.parametrize("name", ALL)
def test_empty_sets_are_finite_with_finite_gradients(name: str) -> None:
    model = _build(name).train()
    x = torch.randn(3, 5, D, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[0, 0, 0, 0, 0], [1, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    out = model(x, mask)
    assert bool(torch.isfinite(out).all())
    out.square().sum().backward()
    grads = [x.grad, *(p.grad for p in model.parameters() if p.grad is not None)]
    assert all(bool(torch.isfinite(g).all()) for g in grads if g is not None)
    assert x.grad is not None and bool((x.grad[~mask] == 0).all())  # padding gets no gradient
    # an empty set gives the same output whichever empty set it is, even zero-width
    torch.testing.assert_close(out[0], out[2])
    with torch.no_grad():
        zero_width = model(torch.zeros(1, 0, D, dtype=torch.float64))
    if name not in EQUIVARIANT:
        torch.testing.assert_close(zero_width[0], out[0].detach())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SAB(4, 6, num_heads=4), r"output_dim \(6\) must be divisible by num_heads"),
        (lambda: ISAB(4, 8, num_inducing=0), "num_inducing must be a positive int"),
        (lambda: PMA(8, num_seeds=2, flatten=1), "flatten must be a bool"),
        (lambda: GatedAttentionPooling(4, gated="yes"), "gated must be a bool"),
        (lambda: SetTransformer(4, 2, num_encoder_blocks=-1), "num_encoder_blocks must be"),
        (lambda: MultiheadAttentionBlock(4, 4, 8, layer_norm=None), "layer_norm must be a bool"),
    ],
)
def test_bad_options_name_the_argument(build: Callable[[], nn.Module], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_bad_input_names_the_argument() -> None:
    sab = SAB(4, 8)
    with pytest.raises(ValueError, match="x must have 4 features"):
        sab(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, M\)"):
        sab(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_sets is only used with offsets= or index="):
        sab(torch.randn(2, 3, 4), num_sets=2)
    with pytest.raises(ValueError, match="pass exactly one of offsets"):
        sab(torch.randn(5, 4), offsets=torch.tensor([0, 5]), index=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"mask must have shape \(N,\)"):
        sab(torch.randn(5, 4), torch.ones(4), offsets=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="x and y must hold the same number of sets"):
        MultiheadAttentionBlock(4, 4, 8)(torch.randn(2, 3, 4), torch.randn(3, 3, 4))
