"""The amortized-clustering experiment (``deepsets clustering``): Section 5.3 and Table 3
of the Set Transformer paper (Lee et al. 2019) — networks read a dataset drawn from a
random mixture of 4 Gaussians in the plane and output the mixture's parameters, scored by
the log-likelihood per data point against the true mixture (the oracle).

Modules, each importing only those above it in this list: ``data`` (mixtures, the
training stream, the test set, the log-likelihood), ``model`` (the three networks),
``baselines`` (the oracle and one fitted Gaussian), ``config`` (settings), ``evaluate``,
``report``, ``figures``, and ``run`` (the driver that calls them all). Nothing is
imported with the package.
"""

__all__: list[str] = []
