"""1-D K-means: the dynamic program is optimal (brute force on tiny cases) and never
worse than Lloyd; shared levels, snap table and trained quantization."""

import itertools

import numpy as np
import pytest
import torch

from cimcodec.golden.codec import kmeans
from cimcodec.golden.errors import CimcodecError


def brute_force_sse(q, k):
    levels, counts = kmeans.histogram(q)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(levels)), k - 1):
        bounds = [0, *cuts, len(levels)]
        sse = 0.0
        for a, b in zip(bounds, bounds[1:]):
            mean = (counts[a:b] * levels[a:b]).sum() / counts[a:b].sum()
            sse += (counts[a:b] * (levels[a:b] - mean) ** 2).sum()
        best = min(best, sse)
    return best


def test_optimal_equals_brute_force_on_tiny_cases():
    rng = np.random.default_rng(7)
    for _ in range(30):
        q = rng.integers(-12, 12, rng.integers(4, 30)).astype(np.int8)
        for k in range(1, min(5, len(np.unique(q))) + 1):
            assert kmeans.optimal(q, k).sse == pytest.approx(brute_force_sse(q, k), abs=1e-6)


def test_optimal_never_worse_than_lloyd():
    rng = np.random.default_rng(8)
    q = np.clip(np.round(rng.laplace(0, 20, (200, 64))), -128, 127).astype(np.int8)
    for k in (2, 4, 8, 16, 32, 64):
        both = kmeans.compare(q, k)
        assert both["optimal"].sse <= both["lloyd"].sse + 1e-6
    assert kmeans.optimal(q, 256).sse == 0


def test_shared_levels_and_snap_table():
    rng = np.random.default_rng(9)
    q = np.clip(np.round(rng.normal(0, 30, (50, 40))), -128, 127).astype(np.int8)
    book = kmeans.optimal(q, 8)
    shared = book.share(q)
    assert set(np.unique(shared)) <= set(book.shared_levels.tolist())
    assert (np.diff(book.shared_levels) > 0).all()
    snap = kmeans.snap_table(book.shared_levels)
    # every shared level snaps to itself; every sample to a nearest level
    assert (snap[book.shared_levels + 128] == np.arange(8)).all()
    dist = np.abs(np.arange(256)[:, None] - 128 - book.shared_levels[None, :])
    assert (dist[np.arange(256), snap] == dist.min(axis=1)).all()


def test_linear_init_spans_the_range():
    q = np.array([-50, -3, 0, 2, 70], dtype=np.int8)
    assert kmeans.linear_init(q, 5).tolist() == [-50, -20, 10, 40, 70]


def test_finetune_keeps_weights_shared():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4))
    x, y = torch.randn(64, 8), torch.randint(0, 4, (64,))
    w = model[0].weight.detach().numpy()
    labels = (w > 0).astype(np.int64)
    c0 = np.array([-0.2, 0.2], np.float32)
    c = kmeans.finetune_centroids(model, "0.weight", labels, c0, (x, y), steps=5, lr=0.05)
    assert c.shape == (2,) and not np.array_equal(c, c0)
    assert set(np.unique(model[0].weight.detach().numpy())) == set(c.tolist())
    with pytest.raises(CimcodecError, match="no parameter named"):
        kmeans.finetune_centroids(model, "nope", labels, c0, (x, y))


@pytest.mark.parametrize("k", [0, 257, 2.5])
def test_bad_cluster_count(k):
    with pytest.raises(CimcodecError, match="cluster count must be an integer 1..256"):
        kmeans.optimal(np.zeros(4, np.int8), k)
