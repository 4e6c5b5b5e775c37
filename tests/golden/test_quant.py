"""8-bit quantization against torch.ao's observers and quantize functions (the oracle)."""

import warnings

import numpy as np
import pytest
import torch
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

from cimcodec.golden.codec import quant
from cimcodec.golden.errors import CimcodecError

SCHEMES = {(False, True): torch.per_tensor_symmetric, (False, False): torch.per_tensor_affine,
           (True, True): torch.per_channel_symmetric, (True, False): torch.per_channel_affine}


@pytest.mark.parametrize("per_channel, symmetric", list(SCHEMES))
def test_params_and_integers_equal_torch(per_channel, symmetric):
    rng = np.random.default_rng(3)
    for _ in range(40):
        w = (rng.normal(size=(9, 17)) * rng.uniform(0.01, 3) + rng.normal() * 0.3)
        w = w.astype(np.float32)
        x = torch.tensor(w)
        qs = SCHEMES[per_channel, symmetric]
        obs = (PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=qs) if per_channel
               else MinMaxObserver(dtype=torch.qint8, qscheme=qs))
        obs(x)
        scale, zp = obs.calculate_qparams()
        q, params = quant.quantize(w, per_channel=per_channel, symmetric=symmetric)
        assert (params.scale == scale.numpy().reshape(-1).astype(np.float32)).all()
        assert (params.zero_point == zp.numpy().reshape(-1)).all()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tq = (torch.quantize_per_channel(x, scale, zp, 0, torch.qint8) if per_channel
                  else torch.quantize_per_tensor(x, float(scale), int(zp), torch.qint8))
        assert (tq.int_repr().numpy() == q).all()
        assert (tq.dequantize().numpy() == params.dequantize(q)).all()


def test_level_shift_round_trip():
    q = np.arange(-128, 128, dtype=np.int8).reshape(16, 16)
    s = quant.to_samples(q)
    assert s.dtype == np.uint8 and s.min() == 0 and s.max() == 255
    assert (quant.from_samples(s) == q).all()


@pytest.mark.parametrize("weights, message", [
    (np.zeros((2, 3, 4)), "non-empty 2-D matrix"),
    (np.array([[np.nan, 1.0]]), "NaN or infinite"),
])
def test_bad_weights(weights, message):
    with pytest.raises(CimcodecError, match=message):
        quant.quantize(weights)


def test_bad_params():
    with pytest.raises(CimcodecError, match="finite and positive"):
        quant.QuantParams(quant.QScheme.PER_TENSOR_SYMMETRIC, [0.0], [0])
    with pytest.raises(CimcodecError, match="symmetric scheme has zero points of 0"):
        quant.QuantParams(quant.QScheme.PER_TENSOR_SYMMETRIC, [1.0], [3])
