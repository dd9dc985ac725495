"""AWGN channel (eq. 2): SNR = P̄/σ² with complex noise CN(0, σ²), in numpy and torch."""
import numpy as np
import pytest
import torch

from models import channel as tch
from radio import channel as nch
from crypto.zp import P
from radio.zp_qam import modulate

N = 10 ** 6


@pytest.fixture(scope="module")
def qam():
    return modulate(np.random.default_rng(0).integers(0, P, N))


def test_noise_variance():
    assert nch.noise_variance(0) == 1.0
    assert np.isclose(nch.noise_variance(10, signal_power=2.0), 0.2)
    assert nch.noise_variance(np.inf) == 0.0
    assert np.allclose(nch.noise_variance(np.array([0.0, 20.0])), [1.0, 0.01])


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 23.5, 40.0])
def test_numpy_awgn_measured_snr_is_the_requested_one(qam, snr_db):
    y = nch.awgn(qam, snr_db, np.random.default_rng(1))
    assert y.dtype == np.complex64 and y.shape == qam.shape
    assert abs(nch.measured_snr_db(qam, y) - snr_db) < 0.05
    # σ²/2 in each real dimension, uncorrelated.
    noise = (y - qam).astype(np.complex128)
    half = nch.noise_variance(snr_db) / 2
    assert abs(np.var(noise.real) / half - 1) < 0.01
    assert abs(np.var(noise.imag) / half - 1) < 0.01
    assert abs(np.mean(noise.real * noise.imag)) < 0.01 * half


def test_numpy_awgn_signal_power_reproducibility_and_broadcasting(qam):
    x = 2.0 * qam[:200000].astype(np.complex128)
    y = nch.awgn(x, 10.0, np.random.default_rng(2), signal_power=4.0)
    assert y.dtype == np.complex128
    assert abs(nch.measured_snr_db(x, y) - 10.0) < 0.05
    assert np.array_equal(nch.awgn(x, 5.0, 3), nch.awgn(x, 5.0, np.random.default_rng(3)))
    assert np.array_equal(nch.awgn(x, np.inf, 4), x)
    frames = qam[:200000].reshape(2, -1)
    y = nch.awgn(frames, np.array([[0.0], [20.0]]), np.random.default_rng(5))
    assert abs(nch.measured_snr_db(frames[0], y[0]) - 0.0) < 0.05
    assert abs(nch.measured_snr_db(frames[1], y[1]) - 20.0) < 0.05
    with pytest.raises(TypeError):
        nch.awgn(x, 10.0, None)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 23.5, 40.0])
def test_torch_awgn_measured_snr_is_the_requested_one(qam, snr_db):
    x = torch.from_numpy(qam)
    g = torch.Generator().manual_seed(int(snr_db * 10) + 100)
    y = tch.awgn(x, snr_db, generator=g)
    assert y.dtype == torch.complex64 and y.shape == x.shape
    assert abs(tch.measured_snr_db(x, y) - snr_db) < 0.05
    assert abs(nch.measured_snr_db(qam, y.numpy()) - snr_db) < 0.05
    noise = (y - x).to(torch.complex128)
    half = nch.noise_variance(snr_db) / 2
    assert abs(noise.real.var().item() / half - 1) < 0.01
    assert abs(noise.imag.var().item() / half - 1) < 0.01
    # The real-pair form is the same channel.
    pairs = torch.view_as_real(x)
    yp = tch.awgn_real_pairs(pairs, snr_db, generator=g)
    assert abs(tch.measured_snr_db(pairs, yp) - snr_db) < 0.05


def test_torch_awgn_tensor_snr_gradients_and_seeding(qam):
    x = torch.from_numpy(qam[:400000]).reshape(4, -1)
    snr = torch.tensor([[0.0], [5.0], [10.0], [30.0]])
    y = tch.awgn(x, snr, generator=torch.Generator().manual_seed(0))
    for i in range(4):
        assert abs(tch.measured_snr_db(x[i], y[i]) - snr[i, 0].item()) < 0.05
    y2 = tch.awgn(x, snr, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, y2)
    assert torch.equal(tch.awgn(x, float("inf")), x)
    xr = torch.view_as_real(x).clone().requires_grad_()
    out = tch.awgn_real_pairs(xr, 10.0, signal_power=torch.tensor(1.0))
    out.sum().backward()
    assert torch.equal(xr.grad, torch.ones_like(xr))
    xc = x.clone().requires_grad_()
    tch.awgn(xc, 10.0).real.sum().backward()
    assert torch.allclose(xc.grad, torch.ones_like(xc.grad))
    with pytest.raises(TypeError):
        tch.awgn(torch.zeros(3), 10.0)
