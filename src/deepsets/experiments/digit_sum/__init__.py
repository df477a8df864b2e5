"""The digit-sum experiment (``deepsets digit-sum``): the first experiment of the Deep Sets
paper (Zaheer et al. 2017, Section 4.1) — add up a set of digits, trained on sets of at
most 10 and tested on sets of up to 100.

Modules, each importing only those above it in this list: ``data`` (digit sets, the
training stream), ``model``, ``config`` (settings), ``evaluate`` (accuracy per set size),
``report``, ``figures``, and ``run`` (the driver that calls them all). There are no
baselines: the exact sum is the target. Nothing is imported with the package.
"""

__all__: list[str] = []
