"""Symmetry checks for any model, and a probe of the memory autograd keeps: public API,
usable in your own test suite.

Both helpers draw random permutations of the set dimension (a different one for every set
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

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .equivariance.actions import GroupAction

__all__ = ["assert_equivariant", "assert_invariant", "random_permutations", "saved_tensor_bytes"]

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


def _compare(expected: Tensor, actual: Tensor, atol: float, rtol: float, what: str) -> None:
    if expected.shape != actual.shape:
        raise AssertionError(
            f"{what}: output shapes differ, {tuple(expected.shape)} vs {tuple(actual.shape)}"
        )
    if not torch.allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True):
        err = (actual - expected).abs().nan_to_num(float("inf")).max().item()
        raise AssertionError(
            f"{what}: max abs deviation {err:.3e} exceeds atol={atol:g}, rtol={rtol:g}"
        )


def _check_under_actions(
    model: Callable[..., Tensor],
    x: Tensor,
    mask: Tensor | None,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
    num_permutations: int,
    tolerances: tuple[float | None, float | None],
    generator: torch.Generator | None,
    in_action: GroupAction | None,
    out_action: GroupAction | None,
    *,
    invariant: bool,
) -> None:
    """The group-action form of both checks: ``g`` acts on ``x`` (and mask) at dim 1."""
    from .equivariance.actions import TrivialAction, common_group

    if in_action is None:
        raise ValueError("out_action needs in_action: the action on the model's input x")
    if mask is not None and not in_action.is_permutation:
        raise ValueError(f"a mask can only be moved by a permutation action; got {in_action!r}")
    target = TrivialAction() if invariant else (out_action or in_action)
    group = common_group(in_action, target)
    reference = _call(model, x, mask, args, kwargs)
    atol, rtol = _tolerances(reference, *tolerances)
    kind = "invariant" if invariant else "equivariant"
    for trial in range(num_permutations):
        g = group.random_element(generator=generator)
        moved_mask = None if mask is None else in_action.act(g, mask, dim=1)
        out = _call(model, in_action.act(g, x, dim=1), moved_mask, args, kwargs)
        expected = target.act(g, reference, dim=1)
        _compare(expected, out, atol, rtol, f"not {kind} under {in_action!r} (trial {trial})")


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
    if in_action is not None or out_action is not None:
        return _check_under_actions(
            model,
            x,
            mask,
            args,
            kwargs,
            num_permutations,
            (atol, rtol),
            generator,
            in_action,
            out_action,
            invariant=True,
        )
    reference = _call(model, x, mask, args, kwargs)
    atol, rtol = _tolerances(reference, atol, rtol)
    for trial in range(num_permutations):
        perm = random_permutations(x.shape[0], x.shape[1], generator=generator, device=x.device)
        permuted_mask = None if mask is None else _permute(mask, perm, 1)
        out = _call(model, _permute(x, perm, 1), permuted_mask, args, kwargs)
        _compare(reference, out, atol, rtol, f"not permutation invariant (trial {trial})")


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

    The output must keep the set dimension at position 1, like the input. Arguments are
    those of :func:`assert_invariant`.

    Raises:
        AssertionError: with the largest deviation, if the output does not follow the input.
    """
    if in_action is not None or out_action is not None:
        return _check_under_actions(
            model,
            x,
            mask,
            args,
            kwargs,
            num_permutations,
            (atol, rtol),
            generator,
            in_action,
            out_action,
            invariant=False,
        )
    reference = _call(model, x, mask, args, kwargs)
    atol, rtol = _tolerances(reference, atol, rtol)
    if reference.dim() < 2 or reference.shape[:2] != x.shape[:2]:
        raise AssertionError(
            f"an equivariant output keeps the (B, M) dimensions of x {tuple(x.shape[:2])}; "
            f"got output shape {tuple(reference.shape)}"
        )
    for trial in range(num_permutations):
        perm = random_permutations(x.shape[0], x.shape[1], generator=generator, device=x.device)
        permuted_mask = None if mask is None else _permute(mask, perm, 1)
        out = _call(model, _permute(x, perm, 1), permuted_mask, args, kwargs)
        _compare(
            _permute(reference, perm, 1),
            out,
            atol,
            rtol,
            f"not permutation equivariant (trial {trial})",
        )


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
