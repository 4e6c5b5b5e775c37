"""Layer decomposition (Tucker-2, CP, SVD) on kernels of known rank, the decomposed
layers against the convolution of the kernel they stand for, EVBMF on a planted rank,
rank rules and budgets, the whole-network allocation, and the saved description."""

import pytest
import torch
from torch import nn

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml import decompose as dec
from cimcodec.golden.ml import models, mtd
from cimcodec.golden.ml.datasets import digits


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _relative(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


def test_tucker2_recovers_a_kernel_of_exact_ranks_and_not_below():
    core, u, v = _randn(3, 2, 3, 3), _randn(9, 3, seed=1), _randn(7, 2, seed=2)
    kernel = torch.einsum("abyx,oa,ib->oiyx", core, u, v)      # ranks (r_in, r_out) = (2, 3)

    def error(ranks):
        g, uo, vi = dec.tucker_factors(kernel, ranks)
        return _relative(torch.einsum("abyx,oa,ib->oiyx", g, uo, vi), kernel)

    assert error((2, 3)) < 1e-12
    assert error((7, 9)) < 1e-12
    lower = [error(r) for r in ((1, 1), (1, 2), (2, 1), (2, 2), (1, 3))]
    assert min(lower) > 1e-3
    # Raising either rank never makes it worse.
    assert error((1, 1)) >= error((1, 2)) >= error((1, 3)) > error((2, 3))
    assert error((1, 1)) >= error((2, 1)) >= error((2, 2)) >= error((2, 3))


def test_cp_recovers_a_kernel_of_exact_rank_and_not_below():
    a, b, c, d = (_randn(n, 4, seed=s) for s, n in enumerate((10, 7, 3, 3)))
    kernel = torch.einsum("or,ir,yr,xr->oiyx", a, b, c, d)

    def error(rank, iterations):
        fa, fb, fc, fd = dec.cp_factors(kernel, rank, iterations=iterations, tol=0)
        return _relative(torch.einsum("or,ir,yr,xr->oiyx", fa, fb, fc, fd), kernel)

    errors = [error(r, 100) for r in (1, 2, 3)] + [error(4, 300)]
    assert errors[3] < 1e-10
    assert min(errors[:3]) > 1e-3
    assert errors[0] >= errors[1] >= errors[2]


@pytest.mark.parametrize("method,ranks", [("tucker", (3, 5)), ("cp", (6,))])
@pytest.mark.parametrize("stride,padding,kernel", [(1, 1, 3), (2, 1, 3), (1, 2, 5),
                                                   (2, 0, (3, 1))])
def test_decomposed_conv_is_the_convolution_of_its_kernel(method, ranks, stride, padding,
                                                          kernel):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 8, kernel, stride=stride, padding=padding).double()
    plan = dec.Plan(method, ranks)
    seq = dec.decompose(conv, plan)
    x = _randn(3, 6, 9, 7, seed=4)
    want = nn.functional.conv2d(x, dec.recompose(seq, plan), conv.bias, stride=stride,
                                padding=padding)
    torch.testing.assert_close(seq(x), want, rtol=1e-12, atol=1e-12)
    assert sum(p.numel() for p in seq.parameters()) == dec.parameters(conv, plan)
    assert torch.equal(seq[-1].bias, conv.bias)
    if method == "cp":                      # the depthwise layers are grouped by rank
        assert seq[1].groups == seq[2].groups == ranks[0]


def test_full_rank_tucker_and_svd_keep_the_layer_function():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 5, 3, padding=1).double()
    x = _randn(2, 4, 6, 6, seed=1)
    torch.testing.assert_close(dec.decompose(conv, dec.Plan("tucker", (4, 5)))(x), conv(x),
                               rtol=1e-10, atol=1e-10)
    fc = nn.Linear(12, 7).double()
    y = _randn(5, 12, seed=2)
    torch.testing.assert_close(dec.decompose(fc, dec.Plan("svd", (7,)))(y), fc(y),
                               rtol=1e-10, atol=1e-10)
    low = dec.decompose(fc, dec.Plan("svd", (2,)))
    assert _relative(low(y), fc(y)) > 1e-3
    u, s, vh = torch.linalg.svd(fc.weight.detach())
    torch.testing.assert_close(dec.recompose(low, dec.Plan("svd", (2,))),
                               (u[:, :2] * s[:2]) @ vh[:2])


def test_evbmf_finds_the_planted_rank_and_the_noise():
    for seed, (rows, cols, rank, sigma) in enumerate([(40, 60, 4, 0.3), (90, 30, 6, 0.5)]):
        signal = _randn(rows, rank, seed=seed) @ _randn(rank, cols, seed=seed + 10)
        y = signal + sigma * _randn(rows, cols, seed=seed + 20)
        got = dec.evbmf(y)
        assert got.rank == rank
        assert abs(got.sigma2 / sigma ** 2 - 1) < 0.1
        assert got.singular_values[rank - 1] > got.threshold > got.singular_values[rank]
    assert dec.evbmf(_randn(30, 40)).rank == 0              # pure noise: nothing survives
    assert abs(dec.tau_bar(1.0) - 2.5129) < 1e-4


def test_rank_rules_and_budgets():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3).double()
    with torch.no_grad():                                  # exact ranks (3, 5) + noise
        conv.weight.copy_(torch.einsum("abyx,oa,ib->oiyx", 3 * _randn(5, 3, 3, 3),
                                       _randn(32, 5, seed=1), _randn(16, 3, seed=2))
                          + 0.01 * _randn(32, 16, 3, 3, seed=3))
    assert dec.vbmf_plan(conv, "tucker") == dec.Plan("tucker", (3, 5))
    assert dec.energy_plan(conv, "tucker", 0.999) == dec.Plan("tucker", (3, 5))
    cp = dec.vbmf_plan(conv, "cp")
    assert dec.parameters(conv, cp) <= dec.parameters(conv, dec.Plan("tucker", (3, 5))) \
        < dec.parameters(conv, dec.Plan("cp", (cp.ranks[0] + 1,)))
    for method in ("tucker", "cp"):
        plan = dec.budget_plan(conv, method, 1000)
        assert dec.parameters(conv, plan) <= 1000
    assert dec.budget_plan(conv, "tucker", 1000) == dec.Plan("tucker", (5, 10))  # 882
    assert dec.budget_plan(conv, "cp", 1000) == dec.Plan("cp", (17,))   # 17 * 54 + 32


def test_bad_input_is_one_sentence():
    conv, fc = nn.Conv2d(4, 6, 3), nn.Linear(5, 3)
    with pytest.raises(CimcodecError, match="above the input mode"):
        dec.decompose(conv, dec.Plan("tucker", (5, 2)))
    with pytest.raises(CimcodecError, match="above the output mode"):
        dec.decompose(conv, dec.Plan("tucker", (2, 7)))
    with pytest.raises(CimcodecError, match="above the smaller dimension"):
        dec.decompose(fc, dec.Plan("svd", (4,)))
    with pytest.raises(CimcodecError, match="only Conv2d and Linear"):
        dec.decompose(nn.BatchNorm2d(4), dec.Plan("tucker", (1, 1)))
    with pytest.raises(CimcodecError, match="grouped convolution"):
        dec.decompose(nn.Conv2d(4, 6, 3, groups=2), dec.Plan("tucker", (1, 1)))
    with pytest.raises(CimcodecError, match="takes svd, not cp"):
        dec.decompose(fc, dec.Plan("cp", (2,)))
    with pytest.raises(CimcodecError, match="No tucker rank fits"):
        dec.budget_plan(conv, "tucker", 20)


def test_allocation_meets_the_target_from_the_cheapest_layers():
    def pts(size, curve):
        return [mtd.Point(None, size, 1.0)] + [
            mtd.Point(dec.Plan(m, r), p, a) for m, r, p, a in curve]
    points = {"big": pts(1000, [("tucker", (4, 4), 500, 1.0), ("cp", (3,), 300, 0.99),
                                ("tucker", (2, 2), 250, 0.5), ("cp", (1,), 100, 0.2)]),
              "small": pts(100, [("tucker", (1, 1), 50, 0.3), ("cp", (1,), 20, 0.1)])}
    got = mtd.allocate(points, 450, 10)
    assert got["big"].plan == dec.Plan("cp", (3,)) and got["small"].plan is None
    got = mtd.allocate(points, 450, 10, method="tucker")
    assert got["big"].plan == dec.Plan("tucker", (2, 2)) and got["small"].plan is None
    # Dominated points (more parameters, no more accuracy) are never chosen.
    assert mtd.front([mtd.Point(None, 10, 0.5), mtd.Point(None, 8, 0.6),
                      mtd.Point(None, 5, 0.6)]) == [mtd.Point(None, 5, 0.6)]
    a, b, c = mtd.Point(None, 9, 0.9), mtd.Point(None, 9, 0.8), mtd.Point(None, 4, 0.7)
    assert mtd.front([c, b, a]) == [a, c]
    with pytest.raises(CimcodecError, match="No rank reaches the target"):
        mtd.allocate(points, 100, 10)


def test_a_decomposed_network_saves_and_rebuilds_from_its_description():
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = digits(0)
    data = (x_train[:200], y_train[:200], x_test[:50], y_test[:50])
    net = models.fit_digits(models.build("lenet5"), epochs=1, data=data)
    result = mtd.run(net, data, net="lenet5", method="mtd", ranks=2, finetune_epochs=1)
    assert set(result.description["decomposed"]) == {"net.4", "net.9", "net.12"}
    assert result.params[1] == mtd.count(result.model) < result.params[0]
    back = models.from_description(result.description, result.model.state_dict())
    x = x_test[:20]
    torch.testing.assert_close(back(x), result.model(x))
    with pytest.raises(CimcodecError, match="does not fit the decomposed lenet5"):
        models.from_description(result.description, net.state_dict())
