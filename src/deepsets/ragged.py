r"""Data helpers for variable-size sets: padding, packing, collation and size bucketing.

A batch of sets :math:`X_1, \dots, X_B` with :math:`X_b \in \mathbb{R}^{n_b \times D}`
reaches the models in one of two forms:

* **padded** — ``x (B, M, D)`` with :math:`M = \max_b n_b` and a ``mask (B, M)`` (bool, or
  the weights); compute grows with :math:`B \cdot M`;
* **packed** — a ``torch.nested`` jagged tensor ``(B, j, D)`` holding the
  :math:`N = \sum_b n_b` real rows (and jagged weights of shape ``(B, j)``); compute grows
  with :math:`N`.

:func:`pad_sets` and :func:`pack_sets` build them from a list of ``(n_b, D)`` tensors,
:func:`collate` does it for a ``DataLoader``, and :class:`BucketBatchSampler` groups sets
of similar size so that padded batches waste little.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, overload

import torch
from torch import Tensor
from torch.utils.data import Sampler, default_collate

from ._validation import check_dim

__all__ = ["BucketBatchSampler", "collate", "pack_sets", "pad_sets"]

_FORMS = ("padded", "packed")


def _check_sets(sets: object, *, name: str = "sets") -> list[Tensor]:
    """A non-empty sequence of ``(n_b, D)`` tensors sharing ``D``, dtype and device."""
    if isinstance(sets, Tensor) or not isinstance(sets, Sequence):
        raise TypeError(
            f"{name} must be a list of (n, D) tensors, one per set; got {type(sets).__name__}"
        )
    if len(sets) == 0:
        raise ValueError(f"{name} must hold at least one set; got an empty list")
    first = sets[0]
    for b, s in enumerate(sets):
        if not isinstance(s, Tensor):
            raise TypeError(f"{name}[{b}] must be a torch.Tensor; got {type(s).__name__}")
        if s.dim() != 2:
            raise ValueError(
                f"{name}[{b}] must have shape (n, D) (elements, features); "
                f"got shape {tuple(s.shape)}"
            )
        if s.shape[1] != first.shape[1]:
            raise ValueError(
                f"{name}[{b}] has {s.shape[1]} features but {name}[0] has {first.shape[1]}: "
                f"every set must have the same feature dimension D; got shape {tuple(s.shape)}"
            )
        if s.dtype != first.dtype or s.device != first.device:
            raise ValueError(
                f"{name}[{b}] has dtype {s.dtype} on {s.device} but {name}[0] has dtype "
                f"{first.dtype} on {first.device}; convert the sets to one dtype and device"
            )
    return list(sets)


def _check_weights(weights: object, sets: list[Tensor]) -> list[Tensor]:
    """One ``(n_b,)`` weight vector per set."""
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence):
        raise TypeError(
            f"weights must be a list of (n,) tensors, one per set; got {type(weights).__name__}"
        )
    if len(weights) != len(sets):
        raise ValueError(
            f"weights must hold one tensor per set ({len(sets)}); got {len(weights)} tensors"
        )
    for b, (w, s) in enumerate(zip(weights, sets, strict=True)):
        if not isinstance(w, Tensor):
            raise TypeError(f"weights[{b}] must be a torch.Tensor; got {type(w).__name__}")
        if tuple(w.shape) != (s.shape[0],):
            raise ValueError(
                f"weights[{b}] must have shape ({s.shape[0]},), one weight per element of "
                f"sets[{b}]; got shape {tuple(w.shape)}"
            )
    return list(weights)


def pad_sets(
    sets: Sequence[Tensor], weights: Sequence[Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    r"""Pad sets to the largest size: ``x (B, M, D)`` and a ``mask (B, M)``.

    .. math:: x_{b,i} = X_{b,i} \text{ for } i < n_b, \quad 0 \text{ otherwise}; \qquad
              M = \max_b n_b

    The mask is bool (``True`` = element) without ``weights``, else the weights padded with
    0 (in ``x``'s dtype).

    Shapes:
        - ``sets``: ``B`` tensors ``(n_b, D)``; ``weights``: ``B`` tensors ``(n_b,)``
        - returns ``x (B, M, D)``, ``mask (B, M)``

    Raises:
        ValueError: naming the offending set when feature dimensions, dtypes or weight
            lengths disagree.
    """
    items = _check_sets(sets)
    x = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
    sizes = torch.tensor([s.shape[0] for s in items], device=x.device)
    positions = torch.arange(x.shape[1], device=x.device)
    mask = positions.unsqueeze(0) < sizes.unsqueeze(1)  # (B, M)
    if weights is None:
        return x, mask
    ws = _check_weights(weights, items)
    padded = torch.nn.utils.rnn.pad_sequence([w.to(x.dtype) for w in ws], batch_first=True).reshape(
        mask.shape
    )
    return x, padded


@overload
def pack_sets(sets: Sequence[Tensor], weights: None = None) -> Tensor: ...
@overload
def pack_sets(sets: Sequence[Tensor], weights: Sequence[Tensor]) -> tuple[Tensor, Tensor]: ...
def pack_sets(
    sets: Sequence[Tensor], weights: Sequence[Tensor] | None = None
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Pack sets without padding into a jagged nested tensor ``(B, j, D)``.

    .. math:: \mathrm{values} = [X_1; X_2; \dots; X_B] \in \mathbb{R}^{N \times D}, \quad
              \mathrm{offsets} = (0, n_1, n_1 + n_2, \dots, N)

    With ``weights`` it also returns the weights as a jagged ``(B, j)`` tensor sharing the
    sets' offsets (so ``model(x, w)`` accepts them as the mask).

    Shapes:
        - ``sets``: ``B`` tensors ``(n_b, D)``; ``weights``: ``B`` tensors ``(n_b,)``
        - returns ``x`` jagged ``(B, j, D)`` (and ``w`` jagged ``(B, j)``)

    Raises:
        ValueError: naming the offending set when feature dimensions, dtypes or weight
            lengths disagree.
    """
    items = _check_sets(sets)
    values = torch.cat(items) if len(items) > 1 else items[0]
    sizes = torch.tensor([s.shape[0] for s in items], dtype=torch.long, device=values.device)
    offsets = torch.zeros(len(items) + 1, dtype=torch.long, device=values.device)
    offsets[1:] = torch.cumsum(sizes, 0)
    x = torch.nested.nested_tensor_from_jagged(values, offsets)
    if weights is None:
        return x
    ws = _check_weights(weights, items)
    w = torch.cat(ws) if len(ws) > 1 else ws[0]
    return x, torch.nested.nested_tensor_from_jagged(w.to(values.dtype), offsets)


def collate(batch: Sequence[Any], form: str = "packed") -> Any:
    r"""A ``collate_fn`` for ``DataLoader`` over datasets of variable-size sets.

    .. math:: [(X_1, y_1), \dots, (X_B, y_B)] \mapsto
              (\mathrm{pack}(X_1, \dots, X_B),\ [y_1, \dots, y_B])

    Each item is a set ``(n, D)`` or a tuple ``(set, *rest)``. The sets become one packed
    jagged tensor (``form="packed"``) or a padded ``(x, mask)`` pair (``form="padded"``);
    the rest (targets, contexts, ...) is stacked by ``torch.utils.data.default_collate``.
    Use ``functools.partial(collate, form="padded")`` to pick the form.

    Shapes:
        - items: ``(n_b, D)`` or ``((n_b, D), *rest)``
        - packed: ``x`` jagged ``(B, j, D)``; padded: ``(x (B, M, D), mask (B, M))``;
          with ``rest`` a tuple ``(sets, *collated_rest)``
    """
    if form not in _FORMS:
        raise ValueError(f"form must be one of {', '.join(map(repr, _FORMS))}; got {form!r}")
    if len(batch) == 0:
        raise ValueError("batch must hold at least one item; got an empty batch")
    with_rest = isinstance(batch[0], (tuple, list))
    sets = [item[0] for item in batch] if with_rest else list(batch)
    packed: Any = pack_sets(sets) if form == "packed" else pad_sets(sets)
    if not with_rest:
        return packed
    rest = default_collate([tuple(item[1:]) for item in batch])
    return (packed, *rest)


class BucketBatchSampler(Sampler[list[int]]):
    r"""Batches of indices whose sets have similar sizes (for padded training).

    The dataset order is shuffled, cut into pools of ``batch_size · pool_batches`` indices,
    each pool is sorted by set size and cut into batches, and the batches are shuffled. The
    padding per batch, :math:`\sum_{b} (M - n_b)`, then stays small while every epoch still
    sees a different random order.

    Shapes:
        ``sizes``: ``(len(dataset),)`` set sizes → yields lists of ``≤ batch_size`` indices

    Args:
        sizes: the size of every set in the dataset.
        batch_size: indices per batch.
        pool_batches: batches per sorted pool (1 = no sorting across batches).
        shuffle: shuffle the dataset and the batch order every epoch.
        drop_last: drop each pool's last, smaller batch.
        generator: random source (seed it for reproducible epochs).
    """

    def __init__(
        self,
        sizes: Sequence[int] | Tensor,
        batch_size: int,
        *,
        pool_batches: int = 50,
        shuffle: bool = True,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.sizes = torch.as_tensor(sizes, dtype=torch.long)
        if self.sizes.dim() != 1 or bool((self.sizes < 0).any()):
            raise ValueError(
                f"sizes must be a 1-D sequence of non-negative set sizes; "
                f"got shape {tuple(self.sizes.shape)}"
            )
        self.batch_size = check_dim(batch_size, name="batch_size")
        self.pool_batches = check_dim(pool_batches, name="pool_batches")
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator

    def _batches(self) -> list[list[int]]:
        n = self.sizes.shape[0]
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        pool = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[torch.argsort(self.sizes[chunk], stable=True)]
            for b in range(0, chunk.shape[0], self.batch_size):
                batch = chunk[b : b + self.batch_size].tolist()
                if len(batch) < self.batch_size and self.drop_last:
                    continue
                batches.append(batch)
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=self.generator).tolist()
            batches = [batches[i] for i in perm]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        n = self.sizes.shape[0]
        pool = self.batch_size * self.pool_batches
        full, last = divmod(n, pool)
        per_pool = self.pool_batches
        if self.drop_last:
            return full * per_pool + last // self.batch_size
        return full * per_pool + math.ceil(last / self.batch_size)
