"""Symmetry checks for any model, and a probe of the memory autograd keeps: public API,
usable in your own test suite.

:func:`equivariance_error` (and :func:`invariance_error`) returns the largest deviation;
the ``assert_*`` helpers run the same trials and compare each within a tolerance. All
draw random permutations of the set dimension (a different one for every set
in the batch), apply them to the input and the mask, and compare the outputs within a
dtype-aware tolerance. They raise ``AssertionError`` with the largest deviation found.

Example:
    >>> import torch
    >>> from deepsets import DeepSetsInvariant
    >>> from deepsets.testing import assert_invariant
    >>> model = DeepSetsInvariant(3, [8], [8], 1).eval()
    >>> assert_invariant(model, torch.randn(2, 5, 3))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .equivariance.actions import GroupAction

__all__ = [
    "assert_equivariant",
    "assert_invariant",
    "equivariance_error",
    "invariance_error",
    "random_permutations",
    "saved_tensor_bytes",
]

_DEFAULT_TOL = {
    torch.float64: (1e-10, 1e-8),
    torch.float32: (1e-5, 1e-4),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (5e-2, 5e-2),
}


def random_permutations(
    batch: int, size: int, *, generator: torch.Generator | None = None, device: Any = None
) -> Tensor:
    """``(batch, size)`` long tensor: an independent uniform permutation per row."""
    keys = torch.rand(batch, size, generator=generator)
    return keys.argsort(dim=1).to(device)


def _permute(t: Tensor, perm: Tensor, dim: int) -> Tensor:
    """Reorder ``t`` along ``dim`` (≥ 1) by ``perm`` of shape ``(B, M)``, per batch row."""
    shape = [perm.shape[0]] + [1] * (t.dim() - 1)
    shape[dim] = perm.shape[1]
    index = perm.view(shape).expand(*t.shape[:dim], perm.shape[1], *t.shape[dim + 1 :])
    return torch.gather(t, dim, index)


def _call(
    model: Callable[..., Tensor],
    x: Tensor,
    mask: Tensor | None,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
) -> Tensor:
    extra = dict(kwargs or {})
    if mask is not None:
        extra["mask"] = mask
    with torch.no_grad():
        return model(x, *args, **extra)


def _tolerances(out: Tensor, atol: float | None, rtol: float | None) -> tuple[float, float]:
    default_atol, default_rtol = _DEFAULT_TOL.get(out.dtype, (1e-5, 1e-4))
    return (default_atol if atol is None else atol, default_rtol if rtol is None else rtol)


def _deviation(expected: Tensor, actual: Tensor) -> float:
    """Largest ``|actual - expected|``; NaN where both are NaN counts 0, elsewhere inf."""
    both_nan = expected.isnan() & actual.isnan()
    same_inf = torch.isinf(expected) & (expected == actual)
    gap = (actual - expected).abs().masked_fill(both_nan | same_inf, 0.0)
    return float(gap.nan_to_num(float("inf")).max()) if gap.numel() else 0.0


def _compare(expected: Tensor, actual: Tensor, atol: float, rtol: float, what: str) -> None:
    if not torch.allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True):
        err = _deviation(expected, actual)
        raise AssertionError(
            f"{what}: max abs deviation {err:.3e} exceeds atol={atol:g}, rtol={rtol:g}"
        )


#: One trial of a symmetry check: the expected output, the actual one, and a description.
_Trial = tuple[Tensor, Tensor, str]


def _trials(
    model: Callable[..., Tensor],
    x: Tensor,
    mask: Tensor | None,
    options: Mapping[str, Any],
    *,
    invariant: bool,
) -> Iterator[_Trial]:
    """``(g·f(x) or f(x), f(g·x), what)`` for random group elements ``g``: the shared core of
    :func:`equivariance_error` and the ``assert_*`` helpers."""
    args, kwargs = options["args"], options["kwargs"]
    by_permutations = options["in_action"] is None and options["out_action"] is None
    if by_permutations:
        movers, label = _permutation_movers(x, options), "permutation {kind}"
    else:
        movers, label = _action_movers(mask, options, invariant=invariant)
    reference = _call(model, x, mask, args, kwargs)
    kind = "invariant" if invariant else "equivariant"
    if (
        label.startswith("permutation")
        and not invariant
        and (reference.dim() < 2 or reference.shape[:2] != x.shape[:2])
    ):
        raise AssertionError(
            f"an equivariant output keeps the (B, M) dimensions of x {tuple(x.shape[:2])}; "
            f"got output shape {tuple(reference.shape)}"
        )
    for trial in range(options["num_permutations"]):
        move_in, move_out = next(movers)
        moved_mask = None if mask is None else move_in(mask)
        out = _call(model, move_in(x), moved_mask, args, kwargs)
        expected = reference if invariant else move_out(reference)
        yield expected, out, f"not {label.format(kind=kind)} (trial {trial})"


_Move = Callable[[Tensor], Tensor]


def _permuter(perm: Tensor) -> _Move:
    return lambda t: _permute(t, perm, 1)


def _acting(action: GroupAction, g: Any) -> _Move:
    return lambda t: action.act(g, t, dim=1)


def _permutation_movers(x: Tensor, options: Mapping[str, Any]) -> Iterator[tuple[_Move, _Move]]:
    """An independent random permutation of dimension 1 per set, for input and output."""
    while True:
        perm = random_permutations(
            x.shape[0], x.shape[1], generator=options["generator"], device=x.device
        )
        yield _permuter(perm), _permuter(perm)


def _action_movers(
    mask: Tensor | None, options: Mapping[str, Any], *, invariant: bool
) -> tuple[Iterator[tuple[_Move, _Move]], str]:
    """Random group elements acting on the input (and mask) and the output at dim 1."""
    from .equivariance.actions import TrivialAction, common_group

    in_action, out_action = options["in_action"], options["out_action"]
    if in_action is None:
        raise ValueError("out_action needs in_action: the action on the model's input x")
    if mask is not None and not in_action.is_permutation:
        raise ValueError(f"a mask can only be moved by a permutation action; got {in_action!r}")
    target = TrivialAction() if invariant else (out_action or in_action)
    group = common_group(in_action, target)

    def movers() -> Iterator[tuple[_Move, _Move]]:
        while True:
            g = group.random_element(generator=options["generator"])
            yield _acting(in_action, g), _acting(target, g)

    return movers(), f"{{kind}} under {in_action!r}"


def _check_shapes(trial: _Trial) -> _Trial:
    expected, actual, what = trial
    if expected.shape != actual.shape:
        raise AssertionError(
            f"{what}: output shapes differ, {tuple(expected.shape)} vs {tuple(actual.shape)}"
        )
    return trial


def equivariance_error(
    model: Callable[..., Tensor],
    x: Tensor,
    mask: Tensor | None = None,
    *,
    invariant: bool = False,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    num_permutations: int = 3,
    generator: torch.Generator | None = None,
    in_action: GroupAction | None = None,
    out_action: GroupAction | None = None,
) -> float:
    r"""The largest deviation from equivariance (or invariance) over random permutations.

    .. math:: \max_{\pi} \big\| f(\pi \cdot x) - \pi \cdot f(x) \big\|_\infty

    or, with ``invariant=True``, :math:`\max_{\pi} \| f(\pi \cdot x) - f(x) \|_\infty`.

    A NaN where the other side is NaN too counts as 0, a NaN against a number as ``inf``.
    ``0.0`` for a symmetric model up to rounding; compare it with your own tolerance, or
    use :func:`assert_equivariant` / :func:`assert_invariant`, which run the same trials.

    The arguments ``model``, ``x``, ``mask``, ``args``, ``kwargs``, ``num_permutations``,
    ``generator``, ``in_action`` and ``out_action`` are those of :func:`assert_invariant`;
    ``invariant=True`` measures invariance (the output does not move) instead of equivariance.

    Returns:
        The max absolute deviation over all trials (``0.0`` for ``num_permutations=0``).
    """
    options = _options(args, kwargs, num_permutations, generator, in_action, out_action)
    trials = _trials(model, x, mask, options, invariant=invariant)
    return max((_deviation(e, a) for e, a, _ in map(_check_shapes, trials)), default=0.0)


def invariance_error(
    model: Callable[..., Tensor], x: Tensor, mask: Tensor | None = None, **options: Any
) -> float:
    """:func:`equivariance_error` with ``invariant=True``: ``max |f(π·x) - f(x)|``."""
    return equivariance_error(model, x, mask, invariant=True, **options)


def _options(
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
    num_permutations: int,
    generator: torch.Generator | None,
    in_action: GroupAction | None,
    out_action: GroupAction | None,
) -> dict[str, Any]:
    return {
        "args": args,
        "kwargs": kwargs,
        "num_permutations": num_permutations,
        "generator": generator,
        "in_action": in_action,
        "out_action": out_action,
    }


def _assert(
    model: Callable[..., Tensor],
    x: Tensor,
    mask: Tensor | None,
    options: Mapping[str, Any],
    tolerances: tuple[float | None, float | None],
    *,
    invariant: bool,
) -> None:
    for expected, actual, what in map(
        _check_shapes, _trials(model, x, mask, options, invariant=invariant)
    ):
        atol, rtol = _tolerances(expected, *tolerances)
        _compare(expected, actual, atol, rtol, what)


def assert_invariant(
    model: Callable[..., Tensor],
    x: Tensor,
    mask: Tensor | None = None,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    num_permutations: int = 3,
    atol: float | None = None,
    rtol: float | None = None,
    generator: torch.Generator | None = None,
    in_action: GroupAction | None = None,
    out_action: GroupAction | None = None,
) -> None:
    """Assert ``model(π·x, mask=π·mask) == model(x, mask=mask)`` for random permutations π.

    The trials of :func:`invariance_error`, each compared elementwise within
    ``atol + rtol · |expected|``.

    Args:
        model: called as ``model(x, *args, mask=mask, **kwargs)`` (``mask`` only if given).
            Put it in ``eval()`` mode first if it uses dropout.
        x: ``(B, M, ...)`` sets along dimension 1.
        mask: optional ``(B, M)``, permuted together with ``x``.
        args: extra positional inputs that are not permuted (e.g. a context).
        kwargs: extra keyword inputs that are not permuted.
        num_permutations: how many random permutations to try.
        atol: absolute tolerance; the default depends on the output dtype.
        rtol: relative tolerance; the default depends on the output dtype.
        generator: for reproducible permutations.
        in_action: a :mod:`deepsets.equivariance` group action on ``x`` (and ``mask``) at
            dimension 1, flattened or in its natural axes; random group elements replace the
            per-set permutations.
        out_action: for :func:`assert_equivariant`, the action of the same group on the
            output at dimension 1 (default: ``in_action``).

    Raises:
        AssertionError: with the largest deviation, if any permutation changes the output.
    """
    options = _options(args, kwargs, num_permutations, generator, in_action, out_action)
    _assert(model, x, mask, options, (atol, rtol), invariant=True)


def assert_equivariant(
    model: Callable[..., Tensor],
    x: Tensor,
    mask: Tensor | None = None,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    num_permutations: int = 3,
    atol: float | None = None,
    rtol: float | None = None,
    generator: torch.Generator | None = None,
    in_action: GroupAction | None = None,
    out_action: GroupAction | None = None,
) -> None:
    """Assert ``model(π·x, mask=π·mask) == π·model(x, mask=mask)`` for random permutations π.

    The trials of :func:`equivariance_error`, each compared elementwise. The output must
    keep the set dimension at position 1, like the input. Arguments are those of
    :func:`assert_invariant`.

    Raises:
        AssertionError: with the largest deviation, if the output does not follow the input.
    """
    options = _options(args, kwargs, num_permutations, generator, in_action, out_action)
    _assert(model, x, mask, options, (atol, rtol), invariant=False)


def saved_tensor_bytes(step: Callable[[], Tensor]) -> int:
    """Bytes of the tensors autograd keeps for backward while ``step()`` runs its forward.

    ``step`` returns the output; its sum is then backpropagated, so the graph is used and
    freed. A storage saved by several operations (a ReLU's output is also the next
    Linear's input) counts once, with its whole size. Regions under non-reentrant
    ``torch.utils.checkpoint`` keep only their inputs, and only those are seen.

    Example:
        >>> import torch
        >>> x = torch.randn(100, requires_grad=True)
        >>> saved_tensor_bytes(lambda: x * x)  # x saved twice by mul, one storage
        400
    """
    total = 0
    seen: set[int] = set()

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    out.sum().backward()
    return total
