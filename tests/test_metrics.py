"""PSNR, SSIM and MS-SSIM (pytorch-msssim) on known cases."""
import math

import pytest
import torch

from models.metrics import image_loss, ms_ssim, ms_ssim_window, psnr, ssim


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
