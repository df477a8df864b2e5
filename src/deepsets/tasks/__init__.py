"""Tasks: data, models and evaluation of the studies (``power_spectrum``, ``digit_sum``).

The submodules are imported on demand; none is loaded by ``import deepsets``.
"""

__all__: list[str] = []
