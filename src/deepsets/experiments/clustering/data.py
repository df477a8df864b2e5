r"""Data of the amortized-clustering experiment: datasets drawn from random mixtures of
isotropic Gaussians in the plane, and the mixture's log-likelihood.

Every dataset of the Set Transformer paper's amortized clustering task (Lee et al. 2019,
Section 5.3) is drawn as

.. math::

    n \sim U\{n_{\min}, \dots, n_{\max}\}, \quad
    \pi \sim \mathrm{Dir}(\mathbf 1_K), \quad
    \mu_k \sim U(-4, 4)^2, \quad
    z_i \sim \mathrm{Cat}(\pi), \quad
    x_i = \mu_{z_i} + \sigma \varepsilon_i,\ \varepsilon_i \sim \mathcal N(0, I_2)

with :math:`K = 4`, :math:`\sigma = 0.3`, :math:`n \in [100, 500]`. A network reads the
set :math:`\{x_i\}` and outputs the mixture's parameters; its score is the log-likelihood
per point,

.. math::

    \mathrm{LL}(X) = \frac1n \sum_{i=1}^n \log \sum_{k=1}^K \pi_k\,
        \mathcal N(x_i;\ \mu_k, \sigma_k^2 I_2).

A batch is padded to its largest set with a bool mask (``(B, M, 2)``, ``(B, M)``); every
draw is a pure function of a seed (the training stream of ``(seed, step, rank)``, the test
set of ``test_seed``).

Reference:
    Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

import torch
from torch import Tensor

from .._common import generator_for

__all__ = [
    "ARCHITECTURES",
    "FIGURE_STREAM",
    "TEST_STREAM",
    "TRAIN_STREAM",
    "VALID_STREAM",
    "Architecture",
    "MixtureBatch",
    "MixtureParams",
    "fixed_test_sets",
    "make_stream_sampler",
    "mixture_log_prob",
    "packed",
    "sample_mixtures",
    "set_log_likelihood",
]

#: Stream ids, so the training stream and the test set never share numbers.
TRAIN_STREAM = 0
TEST_STREAM = 1
FIGURE_STREAM = 2
VALID_STREAM = 3

_LOG_2PI = math.log(2 * math.pi)


class Architecture(str, Enum):
    """The networks of Table 3 that the experiment trains."""

    RFF = "rff"
    RFFP_MEAN = "rffp_mean"
    ISAB_PMA = "isab_pma"


#: The paper's name of every architecture (report rows).
ARCHITECTURES: dict[str, str] = {
    Architecture.RFF.value: "rFF + Pooling",
    Architecture.RFFP_MEAN.value: "rFFp-mean + Pooling",
    Architecture.ISAB_PMA.value: "ISAB(16) + PMA",
}


@dataclass
class MixtureParams:
    """The parameters of ``B`` mixtures of ``K`` isotropic Gaussians in ``D`` dimensions.

    Shapes:
        - ``log_weights``: ``(B, K)`` log mixing weights (log-softmax normalised)
        - ``means``: ``(B, K, D)``
        - ``sigma``: ``(B, K)`` standard deviations (> 0)
    """

    log_weights: Tensor
    means: Tensor
    sigma: Tensor

    def index(self, rows: Tensor) -> MixtureParams:
        """The mixtures of the sets ``rows`` (an index or bool tensor over ``B``)."""
        return MixtureParams(self.log_weights[rows], self.means[rows], self.sigma[rows])


@dataclass
class MixtureBatch:
    """``B`` datasets padded to the largest, with the parameters they were drawn from.

    Shapes:
        - ``x``: ``(B, M, 2)`` points, 0 at padding
        - ``mask``: ``(B, M)`` bool, ``True`` on the ``sizes[b]`` real points
        - ``sizes``: ``(B,)`` int64
        - ``labels``: ``(B, M)`` int64 component of every point
        - ``truth``: the true :class:`MixtureParams`
    """

    x: Tensor
    mask: Tensor
    sizes: Tensor
    labels: Tensor
    truth: MixtureParams


def sample_mixtures(
    batch: int,
    *,
    generator: torch.Generator,
    min_points: int = 100,
    max_points: int = 500,
    components: int = 4,
    sigma: float = 0.3,
    box: float = 4.0,
) -> MixtureBatch:
    """Draw ``batch`` datasets of the paper's mixture-of-Gaussians task (module docstring).

    Sizes are uniform on ``min_points..max_points`` (both included), mixing weights
    Dirichlet(1) (normalised unit exponentials), means uniform on ``(-box, box)²``,
    standard deviation ``sigma`` in every direction. A pure function of the generator's
    state, on the generator's device.
    """
    device = generator.device
    sizes = torch.randint(min_points, max_points + 1, (batch,), generator=generator, device=device)
    gamma = torch.empty(batch, components, device=device).exponential_(generator=generator)
    weights = gamma / gamma.sum(dim=1, keepdim=True)  # (B, K) ~ Dirichlet(1)
    means = (torch.rand(batch, components, 2, generator=generator, device=device) * 2 - 1) * box
    longest = max_points  # draw a fixed shape, so the draw does not depend on the sizes
    labels = torch.multinomial(weights, longest, replacement=True, generator=generator)  # (B, M)
    noise = torch.randn(batch, longest, 2, generator=generator, device=device)
    x = torch.gather(means, 1, labels.unsqueeze(-1).expand(-1, -1, 2)) + sigma * noise
    width = int(sizes.max())
    mask = torch.arange(width, device=device) < sizes.unsqueeze(1)  # (B, M)
    x = x[:, :width].masked_fill(~mask.unsqueeze(-1), 0.0)
    truth = MixtureParams(
        weights.log(), means, torch.full((batch, components), sigma, device=device)
    )
    return MixtureBatch(x, mask, sizes, labels[:, :width], truth)


def _log_prob(x: Tensor, log_weights: Tensor, means: Tensor, sigma: Tensor) -> Tensor:
    """Mixture log-density of points ``x (..., D)`` under parameters broadcast against
    them: ``log_weights``, ``sigma`` ``(..., K)``, ``means`` ``(..., K, D)`` → ``(...)``."""
    dim = x.shape[-1]
    sq = (x.unsqueeze(-2) - means).pow(2).sum(-1)  # (..., K)
    component = -0.5 * dim * _LOG_2PI - dim * sigma.log() - sq / (2 * sigma.pow(2))
    return torch.logsumexp(component + log_weights, dim=-1)


def mixture_log_prob(x: Tensor, params: MixtureParams) -> Tensor:
    r"""Log-density of every point under its set's mixture.

    .. math::

        \log p(x) = \operatorname{logsumexp}_k \Big[\log\pi_k - \tfrac D2 \log 2\pi
            - D\log\sigma_k - \frac{\lVert x-\mu_k\rVert^2}{2\sigma_k^2}\Big]

    Shapes:
        ``x``: ``(B, M, D)``, params of ``B`` mixtures → ``(B, M)``
    """
    return _log_prob(
        x,
        params.log_weights.unsqueeze(1),  # (B, 1, K)
        params.means.unsqueeze(1),  # (B, 1, K, D)
        params.sigma.unsqueeze(1),  # (B, 1, K)
    )


def set_log_likelihood(x: Tensor, mask: Tensor | None, params: MixtureParams) -> Tensor:
    """Log-likelihood per point of every set, :math:`\\frac1n\\sum_i \\log p(x_i)`: ``(B,)``.

    ``x`` is padded ``(B, M, D)`` (padding, ``mask`` False, is left out whatever it
    holds) or a jagged nested ``(B, j, D)`` tensor (``mask`` None): packed rows, no padding.
    """
    if x.is_nested:
        values: Tensor = x.values()  # (N, D)
        offsets: Tensor = x.offsets()  # type: ignore[attr-defined]  # (B + 1,)
        sizes = offsets.diff()  # (B,)
        rows = torch.repeat_interleave(torch.arange(sizes.shape[0], device=x.device), sizes)
        log_p = _log_prob(
            values, params.log_weights[rows], params.means[rows], params.sigma[rows]
        )  # (N,)
        total = log_p.new_zeros(sizes.shape[0]).index_add_(0, rows, log_p)
        return total / sizes.clamp_min(1)
    log_p = mixture_log_prob(x, params)  # (B, M)
    if mask is None:
        return log_p.mean(dim=1)
    log_p = log_p.masked_fill(~mask, 0.0)
    return log_p.sum(dim=1) / mask.sum(dim=1).clamp_min(1)


def packed(batch: MixtureBatch) -> Tensor:
    """The batch's points as a jagged nested tensor ``(B, j, 2)`` (no padding)."""
    offsets = torch.nn.functional.pad(batch.sizes.cumsum(0), (1, 0))
    return torch.nested.nested_tensor_from_jagged(batch.x[batch.mask], offsets=offsets)


def make_stream_sampler(
    *, batch_size: int, seed: int, min_points: int = 100, max_points: int = 500
) -> Callable[[int, int, torch.device], tuple[Tensor, Tensor]]:
    """A training stream ``(step, rank, device) -> (x, x)``, a pure function.

    ``x`` is the batch packed as a jagged nested tensor (:func:`packed`); the target is
    the set itself (the loss is its negative log-likelihood), so the batch has the
    engine's ``(features, target)`` form.
    """

    def sample(step: int, rank: int, device: torch.device) -> tuple[Tensor, Tensor]:
        generator = generator_for(seed, TRAIN_STREAM, rank, step, device=device)
        batch = sample_mixtures(
            batch_size, generator=generator, min_points=min_points, max_points=max_points
        )
        x = packed(batch)
        return x, x

    return sample


def fixed_test_sets(
    num_sets: int,
    *,
    seed: int,
    chunk: int = 100,
    min_points: int = 100,
    max_points: int = 500,
    stream: int = TEST_STREAM,
) -> Iterator[MixtureBatch]:
    """The fixed test set of ``num_sets`` datasets, ``chunk`` at a time, on the CPU.

    Chunk ``c`` is drawn from its own generator ``(seed, stream, c)``, so the set is the
    same for every model, and never overlaps the training stream.
    """
    for c, start in enumerate(range(0, num_sets, chunk)):
        size = min(chunk, num_sets - start)
        yield sample_mixtures(
            size,
            generator=generator_for(seed, stream, c, chunk),
            min_points=min_points,
            max_points=max_points,
        )
