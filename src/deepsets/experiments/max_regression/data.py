r"""Data of the max-regression experiment (Lee et al. 2019, Section 5.1, Table 1).

A set holds :math:`n \sim \mathcal{U}\{1, \dots, 10\}` numbers
:math:`x_i \sim \mathcal{U}[0, 100]` and its target is :math:`\max_i x_i`. Every set of a
batch draws its own size; the batch is padded to ``max_size`` elements with a bool mask
(the authors' code draws one size per batch instead, so its sets need no mask).

Every batch is a pure function of ``(seed, step, rank)`` (:func:`make_stream_sampler`),
and the test set of ``(test_seed, num_sets)`` is the same for every model, as is the
validation set (another stream of the same seed) that picks the weights to score.

Reference:
    Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import torch
from torch import Tensor

from .._common import generator_for

__all__ = [
    "HIGH",
    "TEST_STREAM",
    "TRAIN_STREAM",
    "VALID_STREAM",
    "Row",
    "fixed_test_set",
    "fixed_validation_set",
    "make_stream_sampler",
    "sample_sets",
]

#: Upper end of the values: :math:`x \sim \mathcal{U}[0, \mathrm{HIGH}]`.
HIGH = 100.0
#: Stream ids of :func:`~deepsets.experiments._common.generator_for`.
TRAIN_STREAM, TEST_STREAM, VALID_STREAM = 0, 1, 2


class Row(str, Enum):
    """The models of Table 1: rFF + pooling (Deep Sets) with three pools, and SAB + PMA."""

    MEAN = "rff-mean"
    SUM = "rff-sum"
    MAX = "rff-max"
    SAB_PMA = "sab-pma"


def sample_sets(
    batch_size: int,
    max_size: int,
    generator: torch.Generator,
    *,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor]:
    r"""A batch of sets, their bool mask and their maxima.

    .. math:: n_b \sim \mathcal{U}\{1..\text{max\_size}\}, \quad
        x_{bi} \sim \mathcal{U}[0, 100], \quad y_b = \max_{i < n_b} x_{bi}

    Shapes:
        - returns ``x (B, max_size, 1)`` (0 at padding), ``mask (B, max_size)`` bool,
          ``y (B, 1)``
    """
    sizes = torch.randint(1, max_size + 1, (batch_size,), generator=generator, device=device)
    values = torch.rand(batch_size, max_size, generator=generator, device=device) * HIGH
    mask = torch.arange(max_size, device=device) < sizes.unsqueeze(1)  # (B, M)
    values = values.masked_fill(~mask, 0.0)  # (B, M)
    target = values.amax(dim=1, keepdim=True)  # (B, 1): values >= 0, padding 0
    return values.unsqueeze(-1), mask, target


def make_stream_sampler(
    *, batch_size: int, max_size: int, seed: int
) -> Callable[[int, int, torch.device], tuple[Tensor, Tensor, Tensor]]:
    """The training stream ``(step, rank, device) -> (x, y, mask)`` of random seed ``seed``."""

    def sample(step: int, rank: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        generator = generator_for(seed, TRAIN_STREAM, rank, step, device=device)
        x, mask, y = sample_sets(batch_size, max_size, generator, device=device)
        return x, y, mask

    return sample


def fixed_test_set(num_sets: int, max_size: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """The fixed test set of random seed ``seed``: ``(x, mask, y)`` as :func:`sample_sets`."""
    return sample_sets(num_sets, max_size, generator_for(seed, TEST_STREAM))


def fixed_validation_set(num_sets: int, max_size: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """The validation set of random seed ``seed`` (independent of the test set of the same
    seed and of training): ``(x, mask, y)`` as :func:`sample_sets`."""
    return sample_sets(num_sets, max_size, generator_for(seed, VALID_STREAM))
