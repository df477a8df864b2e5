r"""Scores of a max-regression model on the fixed test set: the mean absolute error

.. math:: \mathrm{MAE} = \frac{1}{S} \sum_{s=1}^{S} \big|f(X_s) - \max X_s\big|

over all test sets, and the same per set size; the validation MAE that picks the weights."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .config import MaxRegressionConfig
from .data import fixed_test_set, fixed_validation_set

__all__ = ["score_model", "validation_score"]


@torch.no_grad()
def _absolute_errors(
    model: nn.Module, x: Tensor, mask: Tensor, target: Tensor, batch_size: int = 1000
) -> Tensor:
    """``|model(x, mask) - target|`` per set, ``(S,)`` on the CPU, in chunks on the
    model's device (the CPU for a model without parameters)."""
    weight = next(model.parameters(), None)
    device = weight.device if weight is not None else x.device
    out = [
        model(x[i : i + batch_size].to(device), mask[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(x), batch_size)
    ]
    return (torch.cat(out) - target).abs().squeeze(-1)


def score_model(model: nn.Module, config: MaxRegressionConfig) -> dict[str, object]:
    """``{"mae": float, "mae_by_size": {n: float}}`` of ``model`` (in eval mode) on the
    test set of ``config.test_sets`` sets of random seed ``config.test_seed``."""
    x, mask, target = fixed_test_set(config.test_sets, config.max_size, config.test_seed)
    error = _absolute_errors(model, x, mask, target)  # (S,)
    sizes = mask.sum(dim=1)  # (S,)
    by_size = {
        str(n): float(error[sizes == n].mean())
        for n in range(1, config.max_size + 1)
        if bool((sizes == n).any())
    }
    return {"mae": float(error.mean()), "mae_by_size": by_size}


def validation_score(config: MaxRegressionConfig) -> Callable[[nn.Module], float]:
    """``model -> validation MAE`` on the ``config.valid_sets`` validation sets (drawn
    once, here), for :class:`~deepsets.training.KeepBest`."""
    x, mask, target = fixed_validation_set(config.valid_sets, config.max_size, config.test_seed)

    def score(model: nn.Module) -> float:
        return float(_absolute_errors(model, x, mask, target).mean())

    return score
