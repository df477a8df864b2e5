"""The power-spectrum experiment (``deepsets power-spectrum``): estimate the power spectrum
of a random periodic function from ``N`` unordered samples, after the blog post
"Permutation-equivariant neural networks for power spectrum estimation".

Modules, each importing only those above it in this list: ``data`` (functions of eq. 4,
encodings, the training stream), ``baselines`` (prior, least squares), ``model`` (the
network), ``config`` (settings and presets), ``evaluate`` (MSE of any estimator),
``report``, ``figures``, and ``run`` (the driver that calls them all). Nothing is imported
with the package; import the module you need.
"""

__all__: list[str] = []
