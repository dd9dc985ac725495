"""PSNR, SSIM and MS-SSIM (pytorch-msssim) on known cases, on tensors and on uint8 image arrays."""
import math

import numpy as np
import pytest
import torch

from models.metrics import image_loss, ms_ssim, ms_ssim_window, psnr, psnr_u8, ssim, ssim_u8


def test_psnr_of_a_known_error():
    x = torch.zeros(2, 3, 8, 8)
    y = x + 0.1
    assert torch.allclose(psnr(y, x), torch.full((2,), 20.0))


@pytest.mark.parametrize("side", [32, 64, 100, 200])
def test_ssim_and_ms_ssim_are_one_for_equal_images_and_drop_with_noise(side):
    torch.manual_seed(0)
    x = torch.rand(2, 3, side, side)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert (ssim(noisy, x) < 0.9).all()
    if side >= 64:
        assert torch.allclose(ms_ssim(x, x), torch.ones(2), atol=1e-5)
        assert (ms_ssim(noisy, x) < 0.95).all()
        assert (side - 1) > (ms_ssim_window(side) - 1) * 16
    else:
        with pytest.raises(ValueError):
            ms_ssim(x, x)


def test_losses():
    x = torch.rand(1, 3, 16, 16)
    assert image_loss(x, x, "mse") == 0
    assert math.isclose(float(image_loss(x, x, "ssim")), 0.0, abs_tol=1e-5)
    with pytest.raises(ValueError):
        image_loss(x, x, "l1")


def test_psnr_u8_of_a_known_error_with_peak_255():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    b = a + np.uint8(1)
    assert psnr_u8(b, a).dtype == np.float64 and psnr_u8(b, a).shape == (2,)
    assert np.allclose(psnr_u8(b, a), 20 * np.log10(255.0))
    assert np.allclose(psnr_u8(a, a), 20 * np.log10(255.0) + 100)  # MSE floored at 1e-10
    assert np.allclose(psnr_u8(a.astype(np.float64) + 25.5, a), 20.0)  # float images in [0, 255] too


def test_psnr_u8_and_ssim_u8_agree_with_the_tensor_metrics():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8)
    ta, tb = (torch.from_numpy(v).permute(0, 3, 1, 2).float() / 255 for v in (a, b))
    assert np.allclose(psnr_u8(a, b), psnr(ta, tb).numpy(), atol=1e-4)
    assert ssim_u8(a, b).dtype == np.float64
    assert np.array_equal(ssim_u8(a, b), ssim(ta, tb).numpy().astype(np.float64))
    assert np.allclose(ssim_u8(a, a), 1.0, atol=1e-5)
