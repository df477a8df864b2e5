"""The digit-sum data: digit sets, their sums, the image split."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from deepsets.experiments._common import generator_for
from deepsets.experiments.digit_sum.data import load_digit_images, sample_digit_sets


@pytest.fixture(scope="module")
def digits() -> object:
    return load_digit_images()


def test_integer_sets_hold_their_sums() -> None:
    features, mask, target = sample_digit_sets("integer", 64, 10, generator_for(1))
    assert features.shape == (64, 10, 10)
    assert mask.shape == (64, 10) and mask.dtype == torch.bool
    assert target.shape == (64, 1)
    digits = features.argmax(-1)
    assert_close(target[:, 0], (digits * mask).sum(1).float())
    assert torch.all(features.sum(-1) == 1)  # one-hot
    sizes = mask.sum(1)
    assert sizes.min() >= 0 and sizes.max() <= 10
    assert len(set(sizes.tolist())) > 5  # sizes vary over 0..10
    # Masks are prefixes: padding comes after the elements.
    assert torch.equal(mask, torch.arange(10) < sizes[:, None])


def test_image_sets_hold_the_sums_of_their_labels(digits: object) -> None:
    pool, labels = digits.train_images, digits.train_labels  # type: ignore[attr-defined]
    features, mask, target = sample_digit_sets(
        "image", 32, 10, generator_for(2), images=(pool, labels)
    )
    assert features.shape == (32, 10, 64)
    # Find each element's image in the pool and add up the labels of the real elements.
    match = (features[:, :, None, :] == pool[None, None]).all(-1)  # (B, M, P)
    found = labels[match.float().argmax(-1)]
    assert match.any(-1).all()
    assert_close(target[:, 0], (found * mask).sum(1).float())


def test_fixed_size_sets_and_determinism() -> None:
    a = sample_digit_sets("integer", 8, 20, generator_for(3), size=13)
    b = sample_digit_sets("integer", 8, 20, generator_for(3), size=13)
    c = sample_digit_sets("integer", 8, 20, generator_for(4), size=13)
    assert torch.all(a[1].sum(1) == 13)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])


def test_sample_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"variant must be one of 'integer', 'image'; got 'roman'"):
        sample_digit_sets("roman", 2, 3, generator_for(0))
    with pytest.raises(ValueError, match=r"size must be in \[0, max_size=3\]; got 4"):
        sample_digit_sets("integer", 2, 3, generator_for(0), size=4)
    with pytest.raises(ValueError, match="images must be given for variant='image'"):
        sample_digit_sets("image", 2, 3, generator_for(0))


def test_image_split(digits: object) -> None:
    d = digits
    assert d.train_images.shape == (1198, 64) and d.test_images.shape == (599, 64)  # type: ignore[attr-defined]
    assert float(d.test_images.min()) >= 0.0 and float(d.train_images.max()) <= 1.0  # type: ignore[attr-defined]
    assert set(d.test_labels.tolist()) == set(range(10))  # type: ignore[attr-defined]
    again = load_digit_images()
    assert torch.equal(again.test_images, d.test_images)  # type: ignore[attr-defined]
