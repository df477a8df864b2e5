"""Evaluation of the digit-sum experiment: exact-sum accuracy per set size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._common import generator_for
from .data import TEST_STREAM, sample_digit_sets

__all__ = ["evaluate_accuracy"]


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    variant: str,
    sizes: Sequence[int],
    *,
    sets_per_size: int,
    seed: int,
    images: tuple[Tensor, Tensor] | None = None,
    chunk_elements: int = 200_000,
) -> dict[int, dict[str, float]]:
    r"""Exact-sum accuracy and mean absolute error of ``model`` at every set size.

    .. math::

        \mathrm{acc}(n) = \frac{1}{T}\sum_{t=1}^{T}
        \big[\operatorname{round}(\hat s(X_t)) = s(X_t)\big], \qquad
        \mathrm{mae}(n) = \frac{1}{T}\sum_{t=1}^{T} \big|\hat s(X_t) - s(X_t)\big|

    over ``T = sets_per_size`` test sets :math:`X_t` of ``n`` digits.

    The test sets of size ``n`` are a fixed function of ``(seed, n)``, drawn on the CPU
    (the same on every machine) and evaluated on the model's device.

    Shapes:
        - ``model``: ``(B, n, d)`` sets and ``(B, n)`` masks → ``(B, 1)`` sums
        - ``images``: ``((P, 64), (P,))`` the image pool to draw from (``image`` only)

    Returns:
        ``{n: {"accuracy": acc(n), "mae": mae(n)}}`` for each ``n`` in ``sizes``.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        generator = generator_for(seed, TEST_STREAM, size)
        features, mask, target = sample_digit_sets(
            variant, sets_per_size, size, generator, images=images, size=size
        )
        hits = 0.0
        error = 0.0
        step = max(1, chunk_elements // max(1, size))
        for start in range(0, sets_per_size, step):
            part = slice(start, start + step)
            prediction = model(features[part].to(device), mask[part].to(device)).cpu()
            hits += float((prediction.round() == target[part]).sum())
            error += float((prediction - target[part]).abs().sum())
        results[int(size)] = {"accuracy": hits / sets_per_size, "mae": error / sets_per_size}
    model.train(was_training)
    return results
