"""Intertwiner bases: the seed's counts, closed forms against the numerical solver."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from deepsets.equivariance import (
    CyclicAction,
    GroupAction,
    ProductAction,
    ReflectionAction,
    SymmetricAction,
    TrivialAction,
    bell_number,
    intertwiner_basis,
    intertwiner_dim,
    invariant_basis,
    set_partitions,
)
from deepsets.equivariance.partitions import pattern_to_orbit_matrix

S = SymmetricAction


def bell_triangle(m: int) -> int:
    """B(m) by the Bell triangle, independent of the library's Stirling sum."""
    row = [1]
    for _ in range(m):
        nxt = [row[-1]]
        for value in row:
            nxt.append(nxt[-1] + value)
        row = nxt
    return row[0]


def as_set(basis: torch.Tensor) -> list[list[float]]:
    return sorted(b.flatten().tolist() for b in basis)


def assert_equivariant_basis(basis, in_action, out_action, trials: int = 3) -> None:
    from deepsets.equivariance import common_group

    group = common_group(in_action, out_action)
    gen = torch.Generator().manual_seed(0)
    for _ in range(trials):
        g = group.random_element(generator=gen)
        rho_in, rho_out = in_action.matrix(g), out_action.matrix(g)
        b = basis.double()
        assert torch.allclose(b @ rho_in, rho_out @ b)


@pytest.mark.parametrize("m", range(9))
def test_bell_numbers_and_set_partitions_agree_with_the_bell_triangle(m: int) -> None:
    partitions = list(set_partitions(m))
    assert bell_number(m) == bell_triangle(m) == len(partitions) == len(set(partitions))
    for p in partitions:  # restricted growth strings
        assert all(p[i] <= max(p[:i], default=-1) + 1 for i in range(m))


@given(n=st.integers(2, 40))
def test_first_order_sets_have_two_maps_for_any_n(n: int) -> None:
    basis = intertwiner_basis(S(n), S(n))
    assert basis.shape == (2, n, n)
    assert torch.equal(basis[0], torch.eye(n))  # w_id: the diagonal
    assert torch.equal(basis.sum(0), torch.ones(n, n))  # and the rest
    assert intertwiner_dim(S(n), S(n)) == 2


@pytest.mark.parametrize(
    ("in_action", "out_action", "expected"),
    [
        (S(5, 2), S(5, 2), 15),
        (S(4, 2), S(4, 2), 15),
        (S(6, 1), S(6, 2), 5),
        (S(6, 2), S(6, 1), 5),
        (S(5, 2), TrivialAction(), 2),
        (S(5, 1), TrivialAction(), 1),
        (ProductAction(S(3), S(4)), ProductAction(S(3), S(4)), 4),
        (ProductAction(S(2), S(3), S(4)), ProductAction(S(2), S(3), S(4)), 8),
        (CyclicAction(7), CyclicAction(7), 7),
        (CyclicAction(7), TrivialAction(), 1),
        (ReflectionAction.monomials(6), TrivialAction(), 4),
        (ReflectionAction.monomials(6), ReflectionAction(), 3),
    ],
    ids=str,
)
def test_the_seeds_basis_sizes(in_action, out_action, expected: int) -> None:
    basis = intertwiner_basis(in_action, out_action)
    assert basis.shape == (expected, out_action.dim, in_action.dim)
    assert intertwiner_dim(in_action, out_action) == expected
    assert torch.linalg.matrix_rank(basis.flatten(1).double()) == expected
    assert_equivariant_basis(basis, in_action, out_action)


@given(n=st.integers(4, 9))
def test_second_order_has_15_maps_for_every_n_from_4(n: int) -> None:
    assert intertwiner_dim(S(n, 2), S(n, 2)) == 15
    orbits = intertwiner_basis(S(n, 2), S(n, 2), method="orbits")
    assert orbits.shape == (15, n * n, n * n)
    assert as_set(orbits) == as_set(intertwiner_basis(S(n, 2), S(n, 2)))


def test_second_order_n5_replaces_625_entries_by_15() -> None:
    basis = intertwiner_basis(S(5, 2), S(5, 2))
    assert basis[0].numel() == 625 and basis.shape[0] == 15


@pytest.mark.parametrize(("k", "ell"), [(0, 1), (1, 1), (0, 3), (1, 2), (2, 2), (1, 3), (2, 3)])
def test_order_k_to_order_l_has_bell_k_plus_l_maps(k: int, ell: int) -> None:
    n = k + ell
    in_action = S(n, k) if k else TrivialAction()
    basis = intertwiner_basis(in_action, S(n, ell))
    assert basis.shape[0] == bell_triangle(k + ell)


@pytest.mark.parametrize(
    ("in_action", "out_action"),
    [
        (S(3), S(3)),
        (S(2, 2), S(2, 2)),
        (S(3, 2), S(3, 2)),
        (S(4, 2), S(4, 2)),
        (S(4, 1), S(4, 2)),
        (S(3, 2), S(3, 1)),
        (S(4, 3), TrivialAction()),
        (TrivialAction(), S(3, 2)),
        (ProductAction(S(2), S(3)), ProductAction(S(2), S(3))),
        (ProductAction(S(2), S(3)), ProductAction(S(2), TrivialAction())),
        (ProductAction(S(2), S(3), S(2)), ProductAction(S(2), S(3), S(2))),
        (CyclicAction(5), CyclicAction(5)),
        (TrivialAction(), CyclicAction(4)),
        (ReflectionAction.monomials(4), ReflectionAction()),
        (TrivialAction(), TrivialAction()),
        (
            ProductAction(CyclicAction(3), ReflectionAction([1, -1])),
            ProductAction(CyclicAction(3), ReflectionAction()),
        ),
    ],
    ids=str,
)
def test_closed_forms_equal_the_numerical_solver(in_action, out_action) -> None:
    closed = intertwiner_basis(in_action, out_action, method="closed_form", dtype=torch.float64)
    numerical = intertwiner_basis(in_action, out_action, method="nullspace", dtype=torch.float64)
    assert as_set(closed) == as_set(numerical)
    assert_equivariant_basis(numerical, in_action, out_action)


@pytest.mark.parametrize("method", ["nullspace", "orbits", "closed_form"])
@pytest.mark.parametrize(("k", "ell"), [(1, 1), (2, 2), (1, 2), (2, 1)])
def test_permutation_bases_are_disjoint_orbit_indicators(k: int, ell: int, method: str) -> None:
    basis = intertwiner_basis(S(3, k), S(3, ell), method=method)
    assert set(basis.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(basis.sum(0), torch.ones(3**ell, 3**k))  # a partition of the pairs


def test_numerical_solvers_handle_n6_second_order() -> None:
    """The n = 6 solve (1296 pairs); its time is measured in benchmarks/equivariance.py."""
    closed = intertwiner_basis(S(6, 2), S(6, 2))
    orbits = intertwiner_basis(S(6, 2), S(6, 2), method="orbits")
    assert orbits.shape == (15, 36, 36)
    assert as_set(orbits) == as_set(closed)


@pytest.mark.parametrize(
    ("in_action", "out_action"),
    [
        (S(3, 2), S(3, 2)),
        (S(3, 1), S(3, 2)),
        (S(3, 3), TrivialAction()),
        (ProductAction(S(2), S(3)), ProductAction(S(2), S(3))),
        (CyclicAction(6), CyclicAction(6)),
    ],
    ids=str,
)
def test_orbits_equal_the_nullspace_exactly_in_the_same_order(in_action, out_action) -> None:
    orbits = intertwiner_basis(in_action, out_action, method="orbits", dtype=torch.float64)
    numerical = intertwiner_basis(in_action, out_action, method="nullspace", dtype=torch.float64)
    assert torch.equal(orbits, numerical)


@given(n=st.integers(2, 5), k=st.integers(0, 3), ell=st.integers(0, 2))
def test_orbits_match_the_set_partition_closed_form(n: int, k: int, ell: int) -> None:
    in_action = S(n, k) if k else TrivialAction()
    out_action = S(n, ell) if ell else TrivialAction()
    orbits = intertwiner_basis(in_action, out_action, method="orbits")
    assert as_set(orbits) == as_set(intertwiner_basis(in_action, out_action))
    # Bell-number count, truncated to partitions with at most n blocks.
    assert orbits.shape[0] == sum(1 for p in set_partitions(k + ell) if max(p, default=-1) < n)


def test_orbits_refuse_non_permutation_actions() -> None:
    with pytest.raises(ValueError, match=r"'orbits' needs permutation actions.*'nullspace'"):
        intertwiner_basis(ReflectionAction.monomials(3), ReflectionAction(), method="orbits")


class UnorderedPairs(GroupAction):
    """A user-defined action: S_n on the n(n-1)/2 unordered pairs {i, j} (undirected edges)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pairs = list(itertools.combinations(range(n), 2))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.pairs),)

    @property
    def group_key(self):
        return ("S", self.n)

    def identity(self):
        return torch.arange(self.n)

    def generators(self):
        return SymmetricAction(self.n).generators()

    def random_element(self, *, generator=None):
        return torch.randperm(self.n, generator=generator)

    def index(self, g):
        p = g.tolist()
        return torch.tensor([self.pairs.index(tuple(sorted((p[i], p[j])))) for i, j in self.pairs])


@pytest.mark.parametrize("n", [4, 5])
def test_nullspace_solves_a_user_defined_action(n: int) -> None:
    edges = UnorderedPairs(n)
    assert intertwiner_basis(S(n), edges).shape[0] == 2  # node in the edge, or not
    assert intertwiner_basis(edges, S(n)).shape[0] == 2
    basis = intertwiner_basis(edges, edges)  # edges sharing 2, 1 or 0 nodes
    assert basis.shape == (3, len(edges.pairs), len(edges.pairs))
    assert_equivariant_basis(basis, edges, edges)
    assert set(basis.unique().tolist()) == {0.0, 1.0}
    # "auto" found it by orbits; the SVD null space agrees exactly.
    assert torch.equal(basis, intertwiner_basis(edges, edges, method="nullspace"))


@given(n=st.integers(2, 7), k=st.integers(0, 2), ell=st.integers(0, 2), seed=st.integers(0, 99))
def test_every_basis_map_commutes_with_random_permutations(n, k, ell, seed) -> None:
    basis = intertwiner_basis(S(n, k), S(n, ell)).double()
    p = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(basis @ S(n, k).matrix(p), S(n, ell).matrix(p) @ basis)


def test_pattern_to_orbit_matrix_sums_orbits_coarser_than_the_pattern() -> None:
    n, partitions = 4, list(set_partitions(4))
    orbits = intertwiner_basis(S(n, 2), S(n, 2), dtype=torch.float64)
    z = pattern_to_orbit_matrix(partitions)
    idx = torch.cartesian_prod(*[torch.arange(n)] * 4)  # (o1, o2, i1, i2) in row-major order
    for p, pattern in enumerate(partitions):
        equal = torch.ones(len(idx), dtype=torch.bool)
        for a in range(4):
            for b in range(4):
                if pattern[a] == pattern[b]:
                    equal &= idx[:, a] == idx[:, b]
        dense = equal.double().view(n * n, n * n)
        assert torch.equal(torch.einsum("s,sij->ij", z[:, p], orbits), dense)


def test_invariant_basis_is_fixed_by_the_group() -> None:
    vectors = invariant_basis(S(5, 2))
    assert vectors.shape == (2, 25)
    p = torch.randperm(5)
    assert torch.equal(S(5, 2).act(p, vectors, dim=1), vectors)


def test_memory_cap_refuses_the_n100_second_order_basis() -> None:
    """The refusal names the size and the structured layers, and allocates nothing."""
    with pytest.raises(
        ValueError, match=r"15 x 10000 x 10000.*6\.0 GB.*SecondOrderEquivariantLayer"
    ):
        intertwiner_basis(S(100, 2), S(100, 2))
    with pytest.raises(ValueError, match="constraint system"):
        intertwiner_basis(S(5, 2), S(5, 2), method="nullspace", max_bytes=10**6)
    with pytest.raises(ValueError, match="orbit labelling"):
        intertwiner_basis(UnorderedPairs(30), UnorderedPairs(30), max_bytes=10**6)
    # A basis that fits under a raised cap is built.
    assert intertwiner_basis(S(5, 2), S(5, 2), max_bytes=15 * 625 * 4).shape[0] == 15
    with pytest.raises(ValueError, match="above max_bytes"):
        intertwiner_basis(S(5, 2), S(5, 2), max_bytes=15 * 625 * 4 - 1)


def test_bad_requests_raise() -> None:
    with pytest.raises(ValueError, match=r"method must be one of .*'orbits'.*got 'svd'"):
        intertwiner_basis(S(3), S(3), method="svd")
    with pytest.raises(ValueError, match="same group"):
        intertwiner_basis(S(3), S(4))
    with pytest.raises(ValueError, match="no closed form"):
        intertwiner_dim(UnorderedPairs(4), TrivialAction())
    with pytest.raises(ValueError, match="no closed form"):
        intertwiner_basis(UnorderedPairs(4), TrivialAction(), method="closed_form")
