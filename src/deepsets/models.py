"""The Deep Sets models: invariant (Theorem 2), equivariant (Lemma 3) and conditional."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from ._base import SetModule
from ._module_pool import pool_module_packed, pool_module_padded, resolve_pool
from ._validation import (
    FusionType,
    PoolType,
    check_context,
    check_dim,
    check_dims,
    check_dropout,
    resolve_option,
)
from .functional.padded import _pool, active_elements
from .functional.segment import jagged_like, jagged_parts, pool_parts
from .layers import PermutationEquivariantLayer, equivariant_stack, mlp, mlp_width
from .streaming import Chunk, PoolingState
from .streaming import backward_chunks as _backward_chunks
from .streaming import forward_chunks as _forward_chunks
from .streaming import pool_chunks as _pool_chunks

__all__ = ["DeepSetsConditional", "DeepSetsEquivariant", "DeepSetsInvariant"]


def _prepare(x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Zero the padded rows of ``x`` once, so φ never sees NaN/inf padding and no
    NaN can reach a weight gradient through ``padding × 0``."""
    if mask is None:
        return x, None
    active = active_elements(mask)
    return x.masked_fill(~active.unsqueeze(-1), 0.0), active


class DeepSetsInvariant(SetModule):
    r"""A permutation-invariant set function (Zaheer et al. 2017, Theorem 2).

    .. math::

        f(X) = \rho\Big(\mathrm{pool}_{x \in X}\, \varphi(x)\Big)

    ``phi`` is an MLP applied to every element (``Linear → ReLU`` per width in
    ``phi_hidden_dims``), ``pool`` is a masked sum, mean or max, and ``rho`` is an MLP
    (hidden widths ``rho_hidden_dims``, then a linear map to ``output_dim``). With sum
    pooling this is the universal form of Theorem 2: ``model(x) == model.rho(pool(model.phi(x)))``.

    ``pool_type`` may also be an attention pooling module — :class:`~deepsets.PMA` with
    ``flatten=True`` (Lee et al. 2019) or :class:`~deepsets.GatedAttentionPooling` (Ilse et
    al. 2018) — registered as ``pool_module``: its ``input_dim`` must be φ's output width,
    and ρ takes its ``pooled_dim`` (``k · dim`` for PMA with ``k`` seeds). It handles
    padding, weights (multiplicities) and packed sets itself; :attr:`pool_type` is then its
    class name (``"PMA"``), the saved config holds ``{"class": ..., "config": ...}`` and
    loading rebuilds it. Streaming (:meth:`forward_chunks` ...) needs sum, mean or max.

    Shapes:
        - ``x``: ``(B, M, input_dim)``, or a jagged nested tensor ``(B, j, input_dim)``
          (packed sets: φ runs on the real rows only)
        - ``mask``: ``(B, M)`` bool, or float weights ``>= 0`` (multiplicities), optional;
          a jagged ``(B, j)`` tensor with ``x``'s offsets for a nested ``x``
        - output: ``(B, output_dim)``

    :meth:`forward_chunks` runs φ chunk by chunk over one huge set and ρ once.

    Args:
        input_dim: features per element.
        phi_hidden_dims: widths of φ; the last one is the pooled (latent) width. Empty
            means φ is the identity.
        rho_hidden_dims: hidden widths of ρ.
        output_dim: width of the output.
        pool_type: ``"sum"`` (default), ``"mean"`` or ``"max"``; or a pooling module
            (``PMA(L, flatten=True)``, ``GatedAttentionPooling(L)`` with ``L`` φ's output
            width), or its saved form ``{"class": ..., "config": {...}}``.
        dropout: dropout after every hidden activation of φ and ρ.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    pool: PoolType | None  # type: ignore[assignment]  # None: pooled by pool_module

    def __init__(
        self,
        input_dim: int,
        phi_hidden_dims: Sequence[int],
        rho_hidden_dims: Sequence[int],
        output_dim: int,
        pool_type: str | nn.Module | Mapping[str, Any] = "sum",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        phi_dims = check_dims(phi_hidden_dims, name="phi_hidden_dims")
        rho_dims = check_dims(rho_hidden_dims, name="rho_hidden_dims")
        self.output_dim = check_dim(output_dim, name="output_dim")
        self.latent_dim = mlp_width(input_dim, phi_dims)
        self.pool, module = resolve_pool(pool_type, self.latent_dim)
        dropout = check_dropout(dropout)
        self.phi = mlp(input_dim, phi_dims, dropout=dropout)
        self.pool_module = module  # registered as a submodule when it is one
        pooled_dim = self.latent_dim if self.pool_module is None else self.pool_module.pooled_dim
        self.rho = mlp(cast(int, pooled_dim), rho_dims, output_dim, dropout=dropout)

    def _forward_padded(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x, active = _prepare(x, mask)
        h = self.phi(x)  # (B, M, L)
        if self.pool is None:
            pooled = pool_module_padded(cast(nn.Module, self.pool_module), h, mask)  # (B, P)
        else:
            pooled = _pool(h, self.pool, mask, active=active)  # (B, L)
        return cast(Tensor, self.rho(pooled))  # (B, output_dim)

    def _forward_packed(self, x: Tensor, mask: Tensor | None) -> Tensor:
        parts = jagged_parts(x, mask)
        h = self.phi(parts.values)  # (N, L)
        if self.pool is None:
            pooled = pool_module_packed(cast(nn.Module, self.pool_module), h, parts)  # (B, P)
        else:
            pooled = pool_parts(h, self.pool, parts)  # (B, L)
        return cast(Tensor, self.rho(pooled))  # (B, output_dim)

    def pool_chunks(self, chunks: Iterable[Chunk], *, checkpoint: bool = False) -> PoolingState:
        """:func:`deepsets.streaming.pool_chunks` of this model."""
        return _pool_chunks(self, chunks, checkpoint=checkpoint)

    def forward_chunks(self, chunks: Iterable[Chunk], *, checkpoint: bool = False) -> Tensor:
        """:func:`deepsets.streaming.forward_chunks` of this model."""
        return _forward_chunks(self, chunks, checkpoint=checkpoint)

    def backward_chunks(
        self, make_chunks: Callable[[], Iterable[Chunk]], loss_fn: Callable[[Tensor], Tensor]
    ) -> Tensor:
        """:func:`deepsets.streaming.backward_chunks` of this model."""
        return _backward_chunks(self, make_chunks, loss_fn)

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}, latent_dim={self.latent_dim}"


class DeepSetsEquivariant(SetModule):
    r"""A stack of permutation-equivariant layers (Lemma 3), optionally pooled at the end.

    .. math::

        f = L_{n+1} \circ \sigma \circ L_n \circ \dots \circ \sigma \circ L_1, \qquad
        L_j(X)_i = \Lambda_j x_i + \Gamma_j\, \mathrm{pool}(X) + b_j

    with :math:`\sigma` = ReLU (then dropout) between layers and none after the last.
    ``layers`` is an ``nn.ModuleList`` holding exactly ``len(hidden_dims) + 1``
    :class:`PermutationEquivariantLayer` s. With ``final_pool`` set, the per-element
    output is pooled (masked) to one vector per set, which makes the model invariant.

    Shapes:
        - ``x``: ``(B, M, input_dim)``, or a jagged nested tensor ``(B, j, input_dim)``
        - ``mask``: ``(B, M)`` bool or float weights, optional (jagged ``(B, j)`` for a
          nested ``x``)
        - output: ``(B, M, output_dim)`` with padded positions exactly 0 (jagged
          ``(B, j, output_dim)`` for a nested ``x``), or ``(B, output_dim)`` when
          ``final_pool`` is given.

    Args:
        input_dim: features per element in.
        hidden_dims: widths of the hidden equivariant layers.
        output_dim: features per element out.
        pool_type: pooling inside every layer: ``"max"`` (default), ``"sum"`` or ``"mean"``.
        final_pool: ``None`` (equivariant output) or ``"sum"``, ``"max"``, ``"mean"``.
        dropout: dropout after every hidden activation.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int,
        pool_type: str = "max",
        final_pool: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        dims = check_dims(hidden_dims, name="hidden_dims")
        self.output_dim = check_dim(output_dim, name="output_dim")
        self.pool = resolve_option(pool_type, PoolType, name="pool_type")
        self.final = (
            None if final_pool is None else resolve_option(final_pool, PoolType, name="final_pool")
        )
        dropout = check_dropout(dropout)
        widths = [input_dim, *dims, output_dim]
        self.layers = equivariant_stack(widths, self.pool)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def final_pool(self) -> str | None:
        return None if self.final is None else self.final.value

    def _forward_padded(self, x: Tensor, mask: Tensor | None) -> Tensor:
        out, active = _prepare(x, mask)
        last = len(self.layers) - 1
        for index, module in enumerate(self.layers):
            layer = cast(PermutationEquivariantLayer, module)
            # Each layer returns exact zeros at padding, and ReLU/dropout keep them 0,
            # so the next layer's input is already clean.
            out = layer.equivariant_map(out, mask, active)  # (B, M, D_j)
            if index != last:
                out = self.dropout(self.activation(out))
        if self.final is None:
            return out  # (B, M, output_dim)
        return _pool(out, self.final, mask, active=active, clean=True)  # (B, output_dim)

    def _forward_packed(self, x: Tensor, mask: Tensor | None) -> Tensor:
        parts = jagged_parts(x, mask)
        out = parts.values  # (N, input_dim), 0 on rows of weight 0
        last = len(self.layers) - 1
        for index, module in enumerate(self.layers):
            layer = cast(PermutationEquivariantLayer, module)
            out = layer.equivariant_map_packed(out, parts)  # (N, D_j)
            if index != last:
                out = self.dropout(self.activation(out))
        if self.final is None:
            return jagged_like(out, x)  # (B, j, output_dim)
        return pool_parts(out, self.final, parts, clean=True)  # (B, output_dim)

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}, final_pool={self.final_pool!r}"


class FiLMEncoder(nn.Module):
    r"""φ with Feature-wise Linear Modulation of its first hidden layer (Perez et al. 2018).

    .. math::

        h_i = \mathrm{ReLU}\big(\gamma(c) \odot W x_i + \beta(c)\big), \qquad
        \varphi(x_i; c) = \varphi_{\text{rest}}(h_i)

    Shapes: ``x (B, M, input_dim)``, ``context (B, context_dim)`` → ``(B, M, hidden_dims[-1])``.
    """

    def __init__(self, input_dim: int, context_dim: int, hidden_dims: Sequence[int]) -> None:
        super().__init__()
        first = hidden_dims[0]
        self.phi_first = nn.Linear(input_dim, first)
        self.film_gamma = nn.Linear(context_dim, first)
        self.film_beta = nn.Linear(context_dim, first)
        self.activation = nn.ReLU()
        self.phi_rest = mlp(first, hidden_dims[1:])

    def forward(self, x: Tensor, context: Tensor, index: Tensor | None = None) -> Tensor:
        """φ on padded ``x`` ``(B, M, input_dim)``, or, given ``index``, on packed rows
        ``(N, input_dim)`` where row ``i`` belongs to set ``index[i]``."""
        gamma, beta = self.film_gamma(context), self.film_beta(context)  # (B, H)
        if index is None:
            gamma, beta = gamma.unsqueeze(1), beta.unsqueeze(1)  # (B, 1, H)
        else:
            gamma, beta = gamma.index_select(0, index), beta.index_select(0, index)  # (N, H)
        return self.phi_rest(self.activation(gamma * self.phi_first(x) + beta))


class DeepSetsConditional(SetModule):
    r"""A permutation-invariant set function conditioned on a per-set context vector.

    .. math::

        f(X, c) = \rho\Big(\big[\mathrm{pool}_{x \in X}\, \varphi(x; c),\ c\big]\Big)

    The context enters φ by ``fusion_type``:

    * ``"concat"`` — :math:`\varphi([x, c])`;
    * ``"add"`` — :math:`\varphi(x + P c)` with ``context_proj`` :math:`P`;
    * ``"film"`` — FiLM of the first hidden layer of φ (``phi_first``, ``film_gamma``,
      ``film_beta``, ``phi_rest``); needs a non-empty ``phi_hidden_dims``.

    With ``context_in_rho=True`` the context is also concatenated to the pooled vector.
    The function is invariant to permutations of the set for every fixed context.

    Shapes:
        - ``x``: ``(B, M, input_dim)`` or a jagged nested tensor ``(B, j, input_dim)``;
          ``context``: ``(B, context_dim)``
        - ``mask``: ``(B, M)`` bool or float weights, optional (jagged ``(B, j)`` for a
          nested ``x``)
        - output: ``(B, output_dim)``

    References:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114;
        Perez et al., *FiLM*, AAAI 2018, https://arxiv.org/abs/1709.07871
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        phi_hidden_dims: Sequence[int],
        rho_hidden_dims: Sequence[int],
        output_dim: int,
        pool_type: str = "sum",
        fusion_type: str = "concat",
        context_in_rho: bool = True,
    ) -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        self.context_dim = check_dim(context_dim, name="context_dim")
        phi_dims = check_dims(phi_hidden_dims, name="phi_hidden_dims")
        rho_dims = check_dims(rho_hidden_dims, name="rho_hidden_dims")
        self.output_dim = check_dim(output_dim, name="output_dim")
        self.pool = resolve_option(pool_type, PoolType, name="pool_type")
        self.fusion = resolve_option(fusion_type, FusionType, name="fusion_type")
        if not isinstance(context_in_rho, bool):
            raise ValueError(f"context_in_rho must be a bool; got {context_in_rho!r}")
        self.context_in_rho = context_in_rho

        self.phi: nn.Module
        if self.fusion is FusionType.CONCAT:
            self.phi = mlp(input_dim + context_dim, phi_dims)
            self.latent_dim = mlp_width(input_dim + context_dim, phi_dims)
        elif self.fusion is FusionType.ADD:
            self.context_proj = nn.Linear(context_dim, input_dim)
            self.phi = mlp(input_dim, phi_dims)
            self.latent_dim = mlp_width(input_dim, phi_dims)
        else:
            if not phi_dims:
                raise ValueError(
                    "fusion_type='film' modulates the first hidden layer of phi, so "
                    "phi_hidden_dims must be non-empty; got []. Use 'concat' or 'add' "
                    "for a phi without hidden layers."
                )
            self.phi = FiLMEncoder(input_dim, context_dim, phi_dims)
            self.latent_dim = phi_dims[-1]
        rho_in = self.latent_dim + (context_dim if context_in_rho else 0)
        self.rho = mlp(rho_in, rho_dims, output_dim)

    # The FiLM parts live in ``phi``; these names keep the attributes of the upstream
    # ``deepsets-pytorch`` library.
    def _film_part(self, name: str) -> nn.Module:
        if self.fusion is not FusionType.FILM:
            raise AttributeError(f"{name} exists only with fusion_type='film'")
        return getattr(self.phi, name)

    @property
    def phi_first(self) -> nn.Module:
        return self._film_part("phi_first")

    @property
    def film_gamma(self) -> nn.Module:
        return self._film_part("film_gamma")

    @property
    def film_beta(self) -> nn.Module:
        return self._film_part("film_beta")

    @property
    def phi_rest(self) -> nn.Module:
        return self._film_part("phi_rest")

    @property
    def fusion_type(self) -> str:
        return self.fusion.value

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return self._forward_sets(x, mask, context)

    def _check_extra(self, x: Tensor, *extra: Tensor) -> None:
        check_context(extra[0], x.shape[0], self.context_dim, like=x)

    def _forward_padded(self, x: Tensor, mask: Tensor | None, context: Tensor) -> Tensor:
        x, active = _prepare(x, mask)
        if self.fusion is FusionType.CONCAT:
            broadcast = context.unsqueeze(1).expand(-1, x.shape[1], -1)  # (B, M, C)
            h = self.phi(torch.cat([x, broadcast], dim=-1))  # (B, M, L)
        elif self.fusion is FusionType.ADD:
            h = self.phi(x + self.context_proj(context).unsqueeze(1))  # (B, M, L)
        else:
            h = self.phi(x, context)  # (B, M, L)
        pooled = _pool(h, self.pool, mask, active=active)  # (B, L)
        if self.context_in_rho:
            pooled = torch.cat([pooled, context], dim=-1)  # (B, L + C)
        return self.rho(pooled)  # (B, output_dim)

    def _forward_packed(self, x: Tensor, mask: Tensor | None, context: Tensor) -> Tensor:
        parts = jagged_parts(x, mask)
        values, index = parts.values, parts.set_index  # (N, input_dim), (N,)
        if self.fusion is FusionType.CONCAT:
            h = self.phi(torch.cat([values, context.index_select(0, index)], dim=-1))
        elif self.fusion is FusionType.ADD:
            h = self.phi(values + self.context_proj(context).index_select(0, index))
        else:
            h = self.phi(values, context, index)
        pooled = pool_parts(h, self.pool, parts)  # (B, L)
        if self.context_in_rho:
            pooled = torch.cat([pooled, context], dim=-1)  # (B, L + C)
        return self.rho(pooled)  # (B, output_dim)

    def extra_repr(self) -> str:
        return (
            f"pool_type={self.pool_type!r}, fusion_type={self.fusion_type!r}, "
            f"context_in_rho={self.context_in_rho}"
        )
