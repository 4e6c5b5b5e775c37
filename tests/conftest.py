"""Shared pytest fixtures: every hardware testbench runs on both simulators."""

import pytest
import torch

from cimcodec.sim.tools import SIMULATORS


@pytest.fixture(params=SIMULATORS)
def simulator(request):
    """Each test that takes ``simulator`` runs once on Icarus and once on Verilator."""
    return request.param


# Two pytest workers on two cores: one torch thread each, not two fighting over a core.
torch.set_num_threads(1)
