r"""The reference estimators of the amortized-clustering experiment.

* the oracle: the parameters each dataset was drawn from (the paper's ceiling, "Oracle"
  in Table 3); no estimator has a higher expected log-likelihood;
* one Gaussian: a single isotropic Gaussian fitted to each set by maximum likelihood,
  :math:`\mu = \bar x`, :math:`\sigma^2 = \frac1{Dn}\sum_i \lVert x_i - \bar x\rVert^2`
  — the floor a network that has not learned to cluster reaches.

Each estimator has ``predict(batch) -> MixtureParams`` on a
:class:`~deepsets.experiments.clustering.data.MixtureBatch`, as the networks'
:class:`~deepsets.experiments.clustering.model.MixtureEstimator` has.
"""

from __future__ import annotations

from torch import Tensor

from .data import MixtureBatch, MixtureParams

__all__ = ["OneGaussianEstimator", "OracleEstimator", "one_gaussian"]


class OracleEstimator:
    """The true parameters of every dataset (the ceiling)."""

    def predict(self, batch: MixtureBatch) -> MixtureParams:
        """The mixture the batch was drawn from."""
        return batch.truth

    def __repr__(self) -> str:
        return "OracleEstimator()"


def one_gaussian(x: Tensor, mask: Tensor) -> MixtureParams:
    r"""The maximum-likelihood isotropic Gaussian of every set, as a one-component mixture.

    Shapes:
        ``x``: ``(B, M, D)``, ``mask``: ``(B, M)`` bool → parameters with ``K = 1``
    """
    weight = mask.unsqueeze(-1).to(x.dtype)  # (B, M, 1)
    count = weight.sum(dim=1).clamp_min(1)  # (B, 1)
    mean = (x * weight).sum(dim=1) / count  # (B, D)
    sq = ((x - mean.unsqueeze(1)).pow(2) * weight).sum(dim=(1, 2))  # (B,)
    variance = sq / (count.squeeze(1) * x.shape[-1])
    return MixtureParams(
        log_weights=x.new_zeros(x.shape[0], 1),
        means=mean.unsqueeze(1),
        sigma=variance.clamp_min(1e-12).sqrt().unsqueeze(1),
    )


class OneGaussianEstimator:
    """One isotropic Gaussian fitted to every set (the floor, :func:`one_gaussian`)."""

    def predict(self, batch: MixtureBatch) -> MixtureParams:
        """The fitted one-component mixture of every set."""
        return one_gaussian(batch.x, batch.mask)

    def __repr__(self) -> str:
        return "OneGaussianEstimator()"
