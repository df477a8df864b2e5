r"""Data of the digit-sum experiment: random sets of digits (integers or 8×8 images) and
their sums (Zaheer et al., *Deep Sets*, NeurIPS 2017, Section 4.1,
https://arxiv.org/abs/1703.06114).

* ``integer``: a digit is its value, one-hot encoded.
* ``image``: a digit is an 8×8 grey image from scikit-learn's bundled
  :func:`sklearn.datasets.load_digits` (1,797 images, no download); training sets draw
  from two thirds of the images, test sets from the held-out third.

Every batch is a pure function of ``(seed, step, rank)``, so ``--resume`` is exact and
DDP ranks draw different sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch
from torch import Tensor, nn

from ..._validation import resolve_option
from .._common import generator_for

__all__ = [
    "VARIANTS",
    "DigitImages",
    "Variant",
    "load_digit_images",
    "make_stream_sampler",
    "sample_digit_sets",
]

NUM_DIGITS = 10


IMAGE_PIXELS = 64


# Stream ids, so training and test sets never share random numbers.
TRAIN_STREAM = 0


TEST_STREAM = 1


# The held-out image split does not depend on the run's seed.
IMAGE_SPLIT_SEED = 2017


class Variant(str, Enum):
    """How a digit is given to the model."""

    INTEGER = "integer"
    IMAGE = "image"


VARIANTS = tuple(member.value for member in Variant)


@dataclass
class DigitImages:
    """The 8×8 digit images of :func:`sklearn.datasets.load_digits`, split in two.

    Shapes:
        - ``train_images``: ``(n_train, 64)`` pixel values in ``[0, 1]``
        - ``train_labels``: ``(n_train,)`` int64 digits
        - ``test_images``, ``test_labels``: the held-out third, likewise
    """

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor


def load_digit_images() -> DigitImages:
    """Load scikit-learn's bundled digits (no download) and split them 2:1, fixed split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the image variant needs scikit-learn: pip install "deepsets[train]"'
        ) from error
    digits = load_digits()
    images = torch.as_tensor(digits.data, dtype=torch.float32) / 16.0
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=generator_for(IMAGE_SPLIT_SEED))
    n_test = len(labels) // 3
    test, train = order[:n_test], order[n_test:]
    return DigitImages(images[train], labels[train], images[test], labels[test])


def sample_digit_sets(
    variant: str,
    batch_size: int,
    max_size: int,
    generator: torch.Generator,
    *,
    images: tuple[Tensor, Tensor] | None = None,
    size: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Random sets of digits, padded to ``max_size``, and their sums.

    Set sizes are uniform on ``0..max_size`` (or all equal to ``size``); digits are
    uniform on ``0..9`` (``integer``) or uniformly drawn images of ``images`` (``image``).
    The target is :math:`\sum_{i < n_b} d_{b,i}`.

    Shapes:
        - ``images``: ``((P, 64), (P,))`` image pool and its labels (``image`` only)
        - returns ``features`` ``(B, max_size, 10)`` one-hot or ``(B, max_size, 64)``
          pixels, ``mask`` ``(B, max_size)`` bool, ``target`` ``(B, 1)`` float sums

    Raises:
        ValueError: for an unknown ``variant``, a negative size, ``size > max_size``, or
            the ``image`` variant without ``images``.
    """
    kind = resolve_option(variant, Variant, name="variant")
    if max_size < 0:
        raise ValueError(f"max_size must be >= 0; got {max_size!r}")
    if size is not None and not 0 <= size <= max_size:
        raise ValueError(f"size must be in [0, max_size={max_size}]; got {size!r}")
    device = generator.device
    if size is None:
        sizes = torch.randint(0, max_size + 1, (batch_size,), generator=generator, device=device)
    else:
        sizes = torch.full((batch_size,), size, device=device)
    mask = torch.arange(max_size, device=device) < sizes[:, None]
    if kind is Variant.INTEGER:
        digits = torch.randint(
            0, NUM_DIGITS, (batch_size, max_size), generator=generator, device=device
        )
        features = nn.functional.one_hot(digits, NUM_DIGITS).float()
    else:
        if images is None:
            raise ValueError("images must be given for variant='image'; got None")
        pool, labels = images
        index = torch.randint(
            0, len(labels), (batch_size, max_size), generator=generator, device=device
        )
        features = pool[index]
        digits = labels[index]
    target = (digits * mask).sum(dim=1, keepdim=True).float()
    return features, mask, target


def make_stream_sampler(
    variant: str, batch_size: int, max_size: int, seed: int, data: DigitImages | None
) -> Callable[[int, int, torch.device], tuple[Tensor, Tensor, Tensor]]:
    """The training stream ``(step, rank, device) -> (features, target, mask)``."""
    pools: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def sample(step: int, rank: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        images = None
        if data is not None:
            if device not in pools:
                pools[device] = (data.train_images.to(device), data.train_labels.to(device))
            images = pools[device]
        generator = generator_for(seed, TRAIN_STREAM, rank, step, device=device)
        features, mask, target = sample_digit_sets(
            variant, batch_size, max_size, generator, images=images
        )
        return features, target, mask

    return sample
