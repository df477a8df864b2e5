"""The max-regression experiment of the Set Transformer paper (Lee et al. 2019, Table 1):
predict the largest of up to ten numbers, with Deep Sets (mean, sum, max pooling) and
SAB + PMA. Run it with ``deepsets max-regression``; :mod:`.run` is the driver."""

__all__: list[str] = []
