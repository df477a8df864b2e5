"""The Deep Sets models: invariant (Theorem 2), equivariant (Lemma 3) and conditional."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from ._jagged import is_jagged
from ._validation import (
    FusionType,
    PoolType,
    check_context,
    check_dim,
    check_dims,
    check_dropout,
    check_jagged_mask,
    check_mask,
    check_set_input,
    resolve_option,
)
from .functional.padded import _pool, active_elements
from .functional.segment import jagged_like, jagged_parts, pool_parts
from .layers import PermutationEquivariantLayer, mlp, mlp_width
from .serialization import PretrainedMixin
from .streaming import Chunk, PoolingState

__all__ = ["DeepSetsConditional", "DeepSetsEquivariant", "DeepSetsInvariant"]


def _prepare(x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Zero the padded rows of ``x`` once, so φ never sees NaN/inf padding and no
    NaN can reach a weight gradient through ``padding × 0``."""
    if mask is None:
        return x, None
    active = active_elements(mask)
    return x.masked_fill(~active.unsqueeze(-1), 0.0), active


class DeepSetsInvariant(nn.Module, PretrainedMixin):
    r"""A permutation-invariant set function (Zaheer et al. 2017, Theorem 2).

    .. math::

        f(X) = \rho\Big(\mathrm{pool}_{x \in X}\, \varphi(x)\Big)

    ``phi`` is an MLP applied to every element (``Linear → ReLU`` per width in
    ``phi_hidden_dims``), ``pool`` is a masked sum, mean or max, and ``rho`` is an MLP
    (hidden widths ``rho_hidden_dims``, then a linear map to ``output_dim``). With sum
    pooling this is the universal form of Theorem 2: ``model(x) == model.rho(pool(model.phi(x)))``.

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
        pool_type: ``"sum"`` (default), ``"mean"`` or ``"max"``.
        dropout: dropout after every hidden activation of φ and ρ.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    def __init__(
        self,
        input_dim: int,
        phi_hidden_dims: Sequence[int],
        rho_hidden_dims: Sequence[int],
        output_dim: int,
        pool_type: str = "sum",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        phi_dims = check_dims(phi_hidden_dims, name="phi_hidden_dims")
        rho_dims = check_dims(rho_hidden_dims, name="rho_hidden_dims")
        self.output_dim = check_dim(output_dim, name="output_dim")
        self.pool = resolve_option(pool_type, PoolType, name="pool_type")
        dropout = check_dropout(dropout)
        self.config: dict[str, Any] = {
            "input_dim": input_dim,
            "phi_hidden_dims": phi_dims,
            "rho_hidden_dims": rho_dims,
            "output_dim": output_dim,
            "pool_type": self.pool.value,
            "dropout": dropout,
        }
        self.latent_dim = mlp_width(input_dim, phi_dims)
        self.phi = mlp(input_dim, phi_dims, dropout=dropout)
        self.rho = mlp(self.latent_dim, rho_dims, output_dim, dropout=dropout)

    @property
    def pool_type(self) -> str:
        return self.pool.value

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        check_set_input(x, self.input_dim, module=self)
        check_mask(mask, x)
        if is_jagged(x):
            parts = jagged_parts(x, mask)
            return self.rho(pool_parts(self.phi(parts.values), self.pool, parts))
        x, active = _prepare(x, mask)
        h = self.phi(x)  # (B, M, L)
        pooled = _pool(h, self.pool, mask, active=active)  # (B, L)
        return self.rho(pooled)  # (B, output_dim)

    def pool_chunks(self, chunks: Iterable[Chunk], *, checkpoint: bool = False) -> PoolingState:
        r"""Run φ over the chunks of one set and pool them into a mergeable state.

        .. math:: \mathrm{state} = \mathrm{pool}_{c}\, \mathrm{pool}_{x \in c}\, \varphi(x)

        Merge states of other chunks or workers (:meth:`PoolingState.merge`,
        :meth:`PoolingState.all_reduce`), then ``model.rho(state.result())``.

        Shapes:
            - every chunk: ``(n, input_dim)`` rows, or a pair ``(rows, weights (n,))``
            - returned state: result ``(1, latent_dim)``

        Args:
            chunks: the rows of the set, in chunks of any size.
            checkpoint: with autograd on, keep only each chunk's rows and pooled partial
                for backward and run φ again on one chunk at a time during backward
                (``torch.utils.checkpoint``): activation memory of one chunk instead of the
                whole set, for one extra φ forward. Ignored under ``torch.no_grad()``.
        """
        if not isinstance(checkpoint, bool):
            raise TypeError(f"checkpoint must be a bool; got {checkpoint!r}")
        recompute = checkpoint and torch.is_grad_enabled()
        state = PoolingState(self.pool)
        for chunk in chunks:
            rows, weights = self._checked_chunk(chunk)
            if recompute:
                state.merge(self._checkpointed_chunk_state(rows, weights))
            else:
                state.merge(self._chunk_state(rows, weights))
        return state

    def _checked_chunk(self, chunk: object) -> tuple[Tensor, Tensor | None]:
        rows, weights = chunk if isinstance(chunk, tuple) else (chunk, None)
        if not isinstance(rows, Tensor) or rows.dim() != 2:
            shape = tuple(rows.shape) if isinstance(rows, Tensor) else type(rows).__name__
            raise ValueError(
                f"every chunk must be a tensor of rows of shape (n, {self.input_dim}) "
                f"or a pair (rows, weights); got {shape}"
            )
        check_set_input(rows.unsqueeze(0), self.input_dim, name="chunk", module=self)
        if weights is not None:
            check_jagged_mask(weights, rows.shape[0], name="chunk weights", like=rows)
        return rows, weights

    def _phi_of_chunk(self, rows: Tensor, weights: Tensor | None) -> Tensor:
        if weights is not None:  # zero rows of weight 0 first: NaN there must not reach φ
            rows = rows.masked_fill(~active_elements(weights).unsqueeze(-1), 0.0)
        return cast(Tensor, self.phi(rows))

    def _chunk_state(self, rows: Tensor, weights: Tensor | None) -> PoolingState:
        return PoolingState(self.pool).update(self._phi_of_chunk(rows, weights), weights)

    def _checkpointed_chunk_state(self, rows: Tensor, weights: Tensor | None) -> PoolingState:
        result_dtype: list[torch.dtype] = []

        def partial(rows: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
            part = self._chunk_state(rows, weights)
            result_dtype.append(cast(torch.dtype, part.dtype))
            return cast(Tensor, part.value), cast(Tensor, part.count)

        value, count = torch_checkpoint(partial, rows, weights, use_reentrant=False)
        return PoolingState.from_partial(self.pool, value, count, dtype=result_dtype[0])

    def forward_chunks(self, chunks: Iterable[Chunk], *, checkpoint: bool = False) -> Tensor:
        r"""The model on one set given as chunks of rows: φ chunk by chunk, ρ once.

        .. math:: f(X) = \rho\Big(\mathrm{pool}_{x \in X_1 \cup X_2 \cup \dots}\, \varphi(x)\Big)

        Equals ``model(torch.cat(chunks).unsqueeze(0))`` within float tolerance. Under
        ``torch.no_grad()`` memory is bounded by one chunk. With autograd on, every chunk's
        activations are kept for backward unless ``checkpoint=True`` (then only the rows and
        a pooled partial per chunk; φ runs again chunk by chunk during backward).

        Shapes:
            - every chunk: ``(n, input_dim)`` rows, or a pair ``(rows, weights (n,))``
            - output: ``(1, output_dim)``
        """
        return self.rho(self.pool_chunks(chunks, checkpoint=checkpoint).result())

    def backward_chunks(
        self,
        make_chunks: Callable[[], Iterable[Chunk]],
        loss_fn: Callable[[Tensor], Tensor],
    ) -> Tensor:
        r"""Forward and backward of ``loss_fn(model(X))`` for one set ``X`` streamed in chunks,
        holding one chunk at a time; gradients accumulate in ``.grad`` as ``backward()`` does.

        Pooling is the only place the elements meet, so the gradient splits by chunk:

        .. math::

            \frac{\partial L}{\partial \theta_\varphi}
            = \sum_{c} \sum_{x \in X_c}
              \Big(\frac{\partial\, \mathrm{pool}}{\partial \varphi(x)}\Big)^{\top} g\,
              \frac{\partial \varphi(x)}{\partial \theta_\varphi},
            \qquad g = \frac{\partial L}{\partial\, \mathrm{pool}}

        Pass 1 pools φ of every chunk without autograd (and, for max, counts the elements
        attaining each maximum); ρ and the loss run once, giving ``g``; pass 2 runs φ on each
        chunk again and backpropagates its share: ``w g`` for sum, ``w g / W`` for mean,
        ``g / ties`` on the elements attaining the max (ties share equally, as in
        ``model(x)``). The result and gradients equal those of the whole set at once within
        float tolerance; peak memory is one chunk's activations. Unlike
        :meth:`forward_chunks` with ``checkpoint=True``, the rows are never all held:
        ``make_chunks`` is called twice and must yield the same chunks both times (e.g. read
        them from disk). Ties of the max are found by exact equality of φ's outputs: φ of
        two equal elements in chunks of different sizes can differ in the last bit (another
        matmul kernel), and then the gradient goes to one of them instead of being split —
        still a valid subgradient, and the same parameter gradients.

        Shapes:
            - ``make_chunks()`` yields chunks ``(n, input_dim)`` or pairs
              ``(rows, weights (n,))``
            - ``loss_fn`` takes the output ``(1, output_dim)`` and returns a scalar

        Returns:
            The loss (detached).

        Raises:
            ValueError: if φ has active dropout (its masks would differ between the passes;
                use ``forward_chunks(..., checkpoint=True)``, which replays them).
        """
        if not callable(make_chunks) or not callable(loss_fn):
            raise TypeError("make_chunks and loss_fn must be callables")
        if self.training and any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.phi.modules()):
            raise ValueError(
                "backward_chunks needs a deterministic φ: its dropout would draw other masks "
                "in the second pass; call model.eval() or use "
                "forward_chunks(..., checkpoint=True)"
            )
        with torch.no_grad():  # pass 1: pooled statistics of the whole set
            state = PoolingState(self.pool)
            ties: Tensor | None = None  # (1, L) elements attaining the max, for max pooling
            for chunk in make_chunks():
                rows, weights = self._checked_chunk(chunk)
                h = self._phi_of_chunk(rows, weights)  # (n, L)
                part = PoolingState(self.pool).update(h, weights)
                if self.pool is PoolType.MAX:
                    ties = _count_ties(state, part, ties, h, weights)
                state.merge(part)
            if state.empty:
                raise ValueError("make_chunks() yielded no chunk")
            pooled = state.result()  # (1, L)
        pooled = pooled.detach().requires_grad_()
        loss = loss_fn(self.rho(pooled))
        loss.backward()  # ρ's gradients, and g in pooled.grad (a leaf: φ is not reached)
        upstream = cast(Tensor, pooled.grad)  # (1, L)
        # An empty set pools to 0: every share below is 0 on its rows, so φ gets the zero
        # gradients (not None) that model(x).backward() gives it.
        count = cast(Tensor, state.count).unsqueeze(-1)  # (1, 1) total weight (max: elements)
        if self.pool is PoolType.MAX:
            peak = cast(Tensor, state.value)  # (1, L)
            share = upstream / cast(Tensor, ties).clamp(min=1)
        elif self.pool is PoolType.MEAN:
            share = upstream / torch.where(count > 0, count, torch.ones_like(count))
        else:
            share = upstream
        for chunk in make_chunks():  # pass 2: φ again, one chunk's share of the gradient
            rows, weights = self._checked_chunk(chunk)
            h = self._phi_of_chunk(rows, weights)  # (n, L)
            if self.pool is PoolType.MAX:
                hit = h.detach() == peak
                if weights is not None:
                    hit &= active_elements(weights).unsqueeze(-1)
                surrogate = (h * hit.to(h.dtype) * share).sum()
            else:  # the chunk's Σ w φ(x): mean's 1/W is in share
                mask = None if weights is None else weights.unsqueeze(0)
                surrogate = (_pool(h.unsqueeze(0), PoolType.SUM, mask) * share).sum()
            if surrogate.requires_grad:
                surrogate.backward()
        return loss.detach()

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}, latent_dim={self.latent_dim}"


def _count_ties(
    state: PoolingState, part: PoolingState, ties: Tensor | None, h: Tensor, weights: Tensor | None
) -> Tensor:
    """Update the number of elements attaining the running max with one chunk's rows."""
    if weights is not None:
        h = h.masked_fill(~active_elements(weights).unsqueeze(-1), float("-inf"))
    chunk_max = cast(Tensor, part.value)  # (1, L), -inf where the chunk has no element
    chunk_ties = (h == chunk_max).sum(0, keepdim=True).to(chunk_max.dtype)
    chunk_ties = torch.where(chunk_max == float("-inf"), 0.0, chunk_ties)  # no element
    if ties is None or state.empty:
        return chunk_ties
    running = cast(Tensor, state.value)
    return torch.where(
        chunk_max > running,
        chunk_ties,
        torch.where(chunk_max == running, ties + chunk_ties, ties),
    )


class DeepSetsEquivariant(nn.Module, PretrainedMixin):
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
        self.config: dict[str, Any] = {
            "input_dim": input_dim,
            "hidden_dims": dims,
            "output_dim": output_dim,
            "pool_type": self.pool.value,
            "final_pool": None if self.final is None else self.final.value,
            "dropout": dropout,
        }
        widths = [input_dim, *dims, output_dim]
        self.layers = nn.ModuleList(
            PermutationEquivariantLayer(w_in, w_out, self.pool) for w_in, w_out in pairwise(widths)
        )
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def pool_type(self) -> str:
        return self.pool.value

    @property
    def final_pool(self) -> str | None:
        return None if self.final is None else self.final.value

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        check_set_input(x, self.input_dim, module=self)
        check_mask(mask, x)
        if is_jagged(x):
            return self._forward_packed(x, mask)
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


class DeepSetsConditional(nn.Module, PretrainedMixin):
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
        self.config: dict[str, Any] = {
            "input_dim": input_dim,
            "context_dim": context_dim,
            "phi_hidden_dims": phi_dims,
            "rho_hidden_dims": rho_dims,
            "output_dim": output_dim,
            "pool_type": self.pool.value,
            "fusion_type": self.fusion.value,
            "context_in_rho": context_in_rho,
        }

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

    # The FiLM parts live in ``phi``; these names give them the seed's attributes.
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
    def pool_type(self) -> str:
        return self.pool.value

    @property
    def fusion_type(self) -> str:
        return self.fusion.value

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None) -> Tensor:
        check_set_input(x, self.input_dim, module=self)
        check_context(context, x.shape[0], self.context_dim, like=x)
        check_mask(mask, x)
        if is_jagged(x):
            return self._forward_packed(x, context, mask)
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

    def _forward_packed(self, x: Tensor, context: Tensor, mask: Tensor | None) -> Tensor:
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
