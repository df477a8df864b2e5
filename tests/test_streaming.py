"""Streaming and mergeable pooling: chunked == one-shot, merge order does not matter,
``all_reduce`` across two gloo processes equals pooling everything in one place."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from deepsets import DeepSetsInvariant, PoolingState
from deepsets.functional import masked_pool, segment_pool
from deepsets.streaming import chunked
from deepsets.testing import saved_tensor_bytes

POOLS = ["sum", "mean", "max"]


def _data(seed: int, rows: int, weighted: bool) -> tuple[Tensor, Tensor | None]:
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(rows, 3, generator=generator, dtype=torch.float64)
    if not weighted:
        return values, None
    weights = torch.rand(rows, generator=generator, dtype=torch.float64) * 2
    weights[torch.rand(rows, generator=generator) < 0.3] = 0
    return values, weights


def _cuts(rows: int, draw_cuts: list[int]) -> list[tuple[int, int]]:
    points = sorted({0, rows, *(c % (rows + 1) for c in draw_cuts)})
    return list(pairwise(points))


@given(
    rows=st.integers(0, 1000),
    cuts=st.lists(st.integers(0, 1000), max_size=8),
    seed=st.integers(0, 2**31 - 1),
    pool=st.sampled_from(POOLS),
    weighted=st.booleans(),
)
def test_streaming_equals_one_shot(
    rows: int, cuts: list[int], seed: int, pool: str, weighted: bool
) -> None:
    values, weights = _data(seed, rows, weighted)
    state = PoolingState(pool)
    for start, stop in _cuts(rows, cuts) or [(0, 0)]:
        state.update(values[start:stop], None if weights is None else weights[start:stop])
    mask = None if weights is None else weights.unsqueeze(0)
    expected = masked_pool(values.unsqueeze(0), pool, mask)
    torch.testing.assert_close(state.result(), expected)


@given(
    rows=st.integers(1, 600),
    cuts=st.lists(st.integers(0, 600), min_size=1, max_size=6),
    seed=st.integers(0, 2**31 - 1),
    pool=st.sampled_from(POOLS),
    weighted=st.booleans(),
    data=st.data(),
)
def test_merge_order_does_not_matter(
    rows: int,
    cuts: list[int],
    seed: int,
    pool: str,
    weighted: bool,
    data: st.DataObject,
) -> None:
    values, weights = _data(seed, rows, weighted)
    states = []
    for start, stop in _cuts(rows, cuts):
        w = None if weights is None else weights[start:stop]
        states.append(PoolingState(pool).update(values[start:stop], w))
    one_shot = PoolingState(pool).update(values, weights).result()
    # merge in a random order and a random tree shape
    pending = data.draw(st.permutations(states))
    while len(pending) > 1:
        i = data.draw(st.integers(0, len(pending) - 2))
        merged = PoolingState(pool).merge(pending[i]).merge(pending[i + 1])
        pending[i : i + 2] = [merged]
    torch.testing.assert_close(pending[0].result(), one_shot)


@pytest.mark.parametrize("pool", POOLS)
def test_many_sets_with_an_index(pool: str) -> None:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(500, 4, generator=generator)
    index = torch.randint(0, 6, (500,), generator=generator)
    index[index == 4] = 5  # set 4 stays empty
    weights = torch.rand(500, generator=generator)
    state = PoolingState(pool, num_sets=6)
    for rows in range(0, 500, 77):
        sl = slice(rows, rows + 77)
        state.update(values[sl], weights[sl], index=index[sl])
    expected = segment_pool(values, pool, index=index, weights=weights, num_sets=6)
    torch.testing.assert_close(state.result(), expected)
    assert state.result()[4].abs().max() == 0


@pytest.mark.parametrize("pool", POOLS)
def test_forward_chunks_equals_the_model(pool: str) -> None:
    torch.manual_seed(0)
    model = DeepSetsInvariant(3, [16, 8], [8], 2, pool_type=pool).double()
    x = torch.randn(3000, 3, dtype=torch.float64)
    weights = torch.rand(3000, dtype=torch.float64)
    weights[::7] = 0
    with torch.no_grad():
        chunks = model.forward_chunks(chunked(x, 256))
        torch.testing.assert_close(chunks, model(x.unsqueeze(0)))
        pairs = zip(chunked(x, 500), chunked(weights, 500), strict=True)
        weighted = model.forward_chunks(pairs)
        torch.testing.assert_close(weighted, model(x.unsqueeze(0), weights.unsqueeze(0)))


def test_forward_chunks_is_differentiable() -> None:
    torch.manual_seed(0)
    model = DeepSetsInvariant(3, [8], [4], 1, pool_type="mean").double()
    x = torch.randn(100, 3, dtype=torch.float64)
    model.forward_chunks(chunked(x, 30)).sum().backward()
    streamed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x.unsqueeze(0)).sum().backward()
    for g, p in zip(streamed, model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


def _grads_of_chunks(
    model: DeepSetsInvariant,
    x: Tensor,
    weights: Tensor | None,
    *,
    checkpoint: bool,
    seed: int = 0,
) -> tuple[Tensor, list[Tensor], Tensor]:
    """Output, parameter gradients and input gradient of ``forward_chunks`` on ``x``."""
    model.zero_grad()
    rows = x.detach().clone().requires_grad_()
    chunks: list[Tensor | tuple[Tensor, Tensor]] = list(chunked(rows, 37))
    if weights is not None:
        chunks = list(zip(chunked(rows, 37), chunked(weights, 37), strict=True))
    torch.manual_seed(seed)  # dropout masks
    out = model.forward_chunks(chunks, checkpoint=checkpoint)
    (out * torch.arange(1.0, 3.0, dtype=out.dtype)).sum().backward()
    assert rows.grad is not None
    return out.detach(), [p.grad.clone() for p in model.parameters()], rows.grad


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("weighted", [False, True])
def test_checkpointed_chunks_give_the_same_output_and_gradients(pool: str, weighted: bool) -> None:
    """Recomputing φ chunk by chunk in backward changes nothing, dropout masks included."""
    torch.manual_seed(0)
    model = DeepSetsInvariant(3, [16, 8], [8], 2, pool_type=pool, dropout=0.2).double()
    values, weights = _data(1, 200, weighted)
    if weights is not None:
        values[weights == 0] = float("nan")  # padding-like rows must not leak either way
    plain = _grads_of_chunks(model, values, weights, checkpoint=False)
    recomputed = _grads_of_chunks(model, values, weights, checkpoint=True)
    torch.testing.assert_close(recomputed[0], plain[0], rtol=0, atol=0)
    for a, b in zip(recomputed[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(recomputed[2], plain[2], rtol=1e-12, atol=1e-12)
    assert torch.isfinite(recomputed[2]).all()


def test_checkpointed_chunks_keep_only_rows_and_partials() -> None:
    """Without checkpointing every chunk's 64-wide activations are kept for backward; with it,
    what is kept does not grow with φ's width: the 16-wide rows plus (1, 64) partials."""
    torch.manual_seed(0)
    model = DeepSetsInvariant(16, [64, 64], [8], 1)
    x = torch.randn(4096, 16)
    plain = saved_tensor_bytes(lambda: model.forward_chunks(chunked(x, 512)))
    recomputed = saved_tensor_bytes(lambda: model.forward_chunks(chunked(x, 512), checkpoint=True))
    activations = 4096 * 64 * 4  # one 64-wide float32 activation of the whole set
    assert plain > 2 * activations
    assert recomputed < activations / 2


def test_checkpoint_is_ignored_without_autograd_and_must_be_a_bool() -> None:
    model = DeepSetsInvariant(3, [8], [4], 1)
    x = torch.randn(50, 3)
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_chunks(chunked(x, 7), checkpoint=True),
            model.forward_chunks(chunked(x, 7)),
        )
    with pytest.raises(TypeError, match="checkpoint must be a bool; got 'yes'"):
        model.forward_chunks(chunked(x, 7), checkpoint="yes")  # type: ignore[arg-type]


def test_from_partial_checks_shapes() -> None:
    state = PoolingState.from_partial(
        "mean", torch.tensor([[1.0] * 3, [0.0] * 3]), torch.tensor([2.0, 0.0]), dtype=torch.float32
    )
    torch.testing.assert_close(state.result(), torch.tensor([[0.5] * 3, [0.0] * 3]))
    with pytest.raises(ValueError, match=r"value must have shape \(S, D\) and count shape \(S,\)"):
        PoolingState.from_partial("sum", torch.ones(2, 3), torch.ones(3), dtype=torch.float32)


def _one_shot_grads(
    model: DeepSetsInvariant, x: Tensor, weights: Tensor | None, target: Tensor
) -> tuple[Tensor, list[Tensor], Tensor]:
    """Loss, parameter gradients and input gradient of the whole set at once."""
    model.zero_grad()
    rows = x.detach().clone().requires_grad_()
    mask = None if weights is None else weights.unsqueeze(0)
    loss = ((model(rows.unsqueeze(0), mask) - target) ** 2).sum()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()], torch.nan_to_num(rows.grad)


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("weighted", [False, True])
@given(
    rows=st.integers(1, 120),
    chunk=st.integers(1, 50),
    tied=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_backward_chunks_equals_the_whole_set(
    pool: str, weighted: bool, rows: int, chunk: int, tied: bool, seed: int
) -> None:
    """Two passes over the chunks give the loss and every gradient of one pass over the set,
    ties of the max included (duplicated rows, possibly in different chunks)."""
    torch.manual_seed(seed)
    model = DeepSetsInvariant(3, [8], [4], 2, pool_type=pool).double()
    values, weights = _data(seed, rows, weighted)
    if tied:  # every row appears twice: row i equals row rows - 1 - i
        values[rows // 2 :] = values[: rows - rows // 2].flip(0)
    if weights is not None:
        values[weights == 0] = float("nan")
    target = torch.randn(1, 2, dtype=torch.float64)
    expected = _one_shot_grads(model, values, weights, target)

    model.zero_grad()
    leaf = values.detach().clone().requires_grad_()
    calls = []

    def make_chunks() -> list[Any]:
        calls.append(1)
        if weights is None:
            return list(chunked(leaf, chunk))
        return list(zip(chunked(leaf, chunk), chunked(weights, chunk), strict=True))

    loss = model.backward_chunks(make_chunks, lambda out: ((out - target) ** 2).sum())
    assert len(calls) == 2
    torch.testing.assert_close(loss, expected[0])
    for got, want in zip((p.grad for p in model.parameters()), expected[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    got_input, want_input = torch.nan_to_num(leaf.grad), expected[2]
    if tied and pool == "max":
        # φ of two copies of a row in chunks of different sizes may differ in the last bit
        # (another matmul kernel), so which copy receives the max's gradient may differ
        # from the one-shot split; each pair of copies receives the same total. The tied
        # rows form a palindrome: row i is a copy of row rows - 1 - i.
        got_input, want_input = got_input + got_input.flip(0), want_input + want_input.flip(0)
    torch.testing.assert_close(got_input, want_input, rtol=1e-9, atol=1e-11)


def test_backward_chunks_of_an_empty_set_give_phi_zero_gradients() -> None:
    model = DeepSetsInvariant(3, [8], [4], 1, pool_type="mean")
    chunks = [(torch.full((4, 3), float("nan")), torch.zeros(4))]
    model.backward_chunks(lambda: chunks, lambda out: out.sum())
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in model.phi.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.rho[-1].bias.grad is not None and model.rho[-1].bias.grad.abs().sum() > 0


def _peak_saved_bytes(run: Callable[[], object]) -> int:
    """The most bytes autograd holds for backward at once while ``run`` runs (a tensor is
    held from its first save until its first use in backward; a view of the caller's rows
    counts its own elements, not the whole storage)."""
    live: dict[tuple[int, int], int] = {}
    high = 0

    def key(t: Tensor) -> tuple[int, int]:
        return t.data_ptr(), t.numel()

    def pack(t: Tensor) -> Tensor:
        nonlocal high
        live[key(t)] = t.numel() * t.element_size()
        high = max(high, sum(live.values()))
        return t

    def unpack(t: Tensor) -> Tensor:
        live.pop(key(t), None)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        run()
    return high


def test_backward_chunks_holds_one_chunk_of_activations() -> None:
    """What autograd holds at any time is one chunk's activations, however many chunks."""
    torch.manual_seed(0)
    model = DeepSetsInvariant(16, [64, 64], [8], 1)
    peak = {}
    for n_chunks in (4, 16):
        x = torch.randn(n_chunks * 256, 16)
        peak[n_chunks] = _peak_saved_bytes(
            lambda x=x: model.backward_chunks(lambda: chunked(x, 256), lambda out: out.sum())
        )
    whole = _peak_saved_bytes(lambda: model(x.unsqueeze(0)).sum().backward())
    assert peak[16] == peak[4]  # independent of the set's size
    assert peak[16] * 8 < whole  # the whole 16-chunk set at once holds far more


def test_backward_chunks_rejects_dropout_in_training_mode() -> None:
    model = DeepSetsInvariant(3, [8], [4], 1, dropout=0.1)
    chunks = [torch.randn(5, 3)]
    with pytest.raises(ValueError, match=r"dropout .* call model.eval\(\) or use"):
        model.backward_chunks(lambda: chunks, lambda out: out.sum())
    model.eval()
    model.backward_chunks(lambda: chunks, lambda out: out.sum())
    with pytest.raises(ValueError, match="make_chunks\\(\\) yielded no chunk"):
        model.backward_chunks(lambda: [], lambda out: out.sum())
    with pytest.raises(TypeError, match="make_chunks and loss_fn must be callables"):
        model.backward_chunks(chunks, lambda out: out.sum())  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_chunks_accumulate_in_float32(dtype: torch.dtype) -> None:
    state = PoolingState("sum")
    for rows in chunked(torch.full((50_000, 1), 0.1, dtype=dtype), 4096):
        state.update(rows)
    out = state.result()
    assert out.dtype == dtype
    exact = torch.full((50_000,), 0.1, dtype=dtype).double().sum()
    torch.testing.assert_close(out.double()[0, 0], exact, rtol=1e-2, atol=0)


def test_state_errors() -> None:
    with pytest.raises(ValueError, match="the state is empty"):
        PoolingState("sum").result()
    with pytest.raises(ValueError, match="pool_type must be one of"):
        PoolingState("median")
    with pytest.raises(ValueError, match="cannot merge a 'max' state"):
        PoolingState("sum").merge(PoolingState("max"))
    state = PoolingState("sum").update(torch.randn(4, 3))
    with pytest.raises(ValueError, match="values must have 3 features"):
        state.update(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"index .* is required when num_sets=2"):
        PoolingState("sum", num_sets=2).update(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"weights must have shape \(N,\) = \(4,\)"):
        state.update(torch.randn(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        next(chunked(torch.randn(4, 3), 0))
    assert PoolingState("max").merge(PoolingState("max")).empty


# ------------------------------------------------------------------ torch.distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        values, weights = _data(7, 901, weighted=True)
        shard = slice(rank * 450, (rank + 1) * 450 + (rank == world - 1))  # 450 + 451 rows
        for pool in POOLS:
            state = PoolingState(pool)
            for start in range(shard.start, shard.stop, 100):
                stop = min(start + 100, shard.stop)
                state.update(values[start:stop], weights[start:stop])
            state.all_reduce()
            torch.save(state.result(), Path(out_dir) / f"{pool}-{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_all_reduce_across_two_gloo_processes(tmp_path: Path) -> None:
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    # fork: the workers start in milliseconds instead of re-importing torch (spawn)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(
        _worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False, start_method=method
    )
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two gloo workers did not finish within 120 s")
    values, weights = _data(7, 901, weighted=True)
    for pool in POOLS:
        expected = masked_pool(values.unsqueeze(0), pool, weights.unsqueeze(0))
        for rank in range(2):
            torch.testing.assert_close(torch.load(tmp_path / f"{pool}-{rank}.pt"), expected)


def test_forward_chunks_errors_name_the_chunk() -> None:
    model = DeepSetsInvariant(3, [8], [4], 1)
    with pytest.raises(ValueError, match=r"every chunk must be a tensor of rows of shape \(n, 3\)"):
        model.forward_chunks([torch.randn(5)])
    with pytest.raises(ValueError, match="chunk must have 3 features"):
        model.forward_chunks([torch.randn(5, 3), torch.randn(5, 4)])
    with pytest.raises(ValueError, match="chunk weights must hold finite, non-negative weights"):
        model.forward_chunks([(torch.randn(5, 3), -torch.ones(5))])
