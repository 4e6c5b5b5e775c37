"""Shared pytest fixtures: every hardware testbench runs on both simulators."""

import pytest

from cimcodec.sim.tools import SIMULATORS


@pytest.fixture(params=SIMULATORS)
def simulator(request):
    """Each test that takes ``simulator`` runs once on Icarus and once on Verilator."""
    return request.param
