"""The Set Transformer encoder–decoder model (Lee et al. 2019, https://arxiv.org/abs/1810.00825)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any, cast

from torch import Tensor, nn

from .._validation import check_dim
from ._ops import Padded
from .blocks import ISAB, PMA, SAB, SetBlock, Sets, check_flag, zero_inactive

__all__ = ["SetTransformer"]


def _check_count(value: object, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int; got {value!r}")
    return value


class SetTransformer(SetBlock):
    r"""The Set Transformer: an attention encoder, PMA pooling and an attention decoder.

    .. math::

        \mathrm{Encoder}(X) = \mathrm{ISAB}_m(\cdots \mathrm{ISAB}_m(X)), \qquad
        \mathrm{Decoder}(Z) = \mathrm{rFF}\big(\mathrm{SAB}(\cdots
            \mathrm{SAB}(\mathrm{PMA}_k(Z)))\big)

    (SAB in the encoder with ``num_inducing=None``). The defaults are the paper's
    amortised-clustering network: two ISAB blocks, PMA, two SABs over the ``k`` pooled
    vectors, and a linear output layer. Permutation-invariant; the ``k`` outputs interact
    through the decoder's SABs, so they can describe ``k`` different things (e.g. the
    components of a mixture).

    Packed input (jagged nested, or rows with ``offsets``/``index``) is never padded to the
    batch's largest set: an ISAB encoder runs on tiles of 32 rows, an SAB encoder pads sets
    of similar size (within a factor of 2) to the largest of their group.

    Shapes:
        - ``x``: ``(B, M, input_dim)``, a jagged nested ``(B, j, input_dim)``, or rows
          ``(N, input_dim)`` with ``offsets (S + 1,)`` or ``index (N,)``
        - ``mask``: ``(B, M)`` / jagged ``(B, j)`` / ``(N,)``, bool or weights ``>= 0``
        - output: ``(B, num_seeds, output_dim)``

    Args:
        input_dim: features per element.
        output_dim: features per output vector.
        hidden_dim: width of every block (divisible by ``num_heads``).
        num_heads: attention heads.
        num_inducing: ``m`` inducing points per ISAB; ``None`` uses SAB in the encoder.
        num_encoder_blocks: ISAB/SAB blocks before pooling.
        num_seeds: ``k``, vectors out per set.
        num_decoder_blocks: SAB blocks over the ``k`` pooled vectors.
        layer_norm: use LayerNorm in every block.

    Reference:
        Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        hidden_dim: int = 128,
        num_heads: int = 4,
        num_inducing: int | None = 32,
        num_encoder_blocks: int = 2,
        num_seeds: int = 1,
        num_decoder_blocks: int = 2,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        self.output_dim = check_dim(output_dim, name="output_dim")
        check_dim(hidden_dim, name="hidden_dim")
        if num_inducing is not None:
            check_dim(num_inducing, name="num_inducing")
        _check_count(num_encoder_blocks, name="num_encoder_blocks")
        _check_count(num_decoder_blocks, name="num_decoder_blocks")
        check_flag(layer_norm, name="layer_norm")
        self.config: dict[str, Any] = {
            "input_dim": input_dim,
            "output_dim": output_dim,
            "hidden_dim": hidden_dim,
            "num_heads": num_heads,
            "num_inducing": num_inducing,
            "num_encoder_blocks": num_encoder_blocks,
            "num_seeds": num_seeds,
            "num_decoder_blocks": num_decoder_blocks,
            "layer_norm": layer_norm,
        }
        options: dict[str, Any] = {"num_heads": num_heads, "layer_norm": layer_norm}
        widths = [input_dim] + [hidden_dim] * num_encoder_blocks
        self.encoder = nn.ModuleList(
            SAB(a, b, **options) if num_inducing is None
            else ISAB(a, b, num_inducing=num_inducing, **options)
            for a, b in pairwise(widths)
        )  # fmt: skip
        self.pool = PMA(widths[-1], num_seeds=num_seeds, **options)
        self.decoder = nn.ModuleList(
            SAB(widths[-1], widths[-1], **options) for _ in range(num_decoder_blocks)
        )
        self.head = nn.Linear(widths[-1], output_dim)

    def transform(self, sets: Sets) -> Tensor:
        for block in self.encoder:
            out = cast(SetBlock, block).transform(sets)
            sets = sets._replace(x=zero_inactive(out, sets.active))
        z = self.pool.transform(sets)  # (B, k, hidden)
        pooled = Padded(z, None, None, None)
        for block in self.decoder:
            pooled = pooled._replace(x=cast(SAB, block).transform(pooled))
        return cast(Tensor, self.head(pooled.x))

    def finish(self, sets: Sets, out: Tensor) -> Tensor:
        return out

    def extra_repr(self) -> str:
        c = self.config
        encoder = "SAB" if c["num_inducing"] is None else f"ISAB(m={c['num_inducing']})"
        return (
            f"input_dim={self.input_dim}, output_dim={self.output_dim}, "
            f"hidden_dim={c['hidden_dim']}, encoder={c['num_encoder_blocks']}x{encoder}, "
            f"num_seeds={c['num_seeds']}, decoder={c['num_decoder_blocks']}xSAB"
        )
