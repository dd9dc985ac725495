import torch

from models.quantiser import (circle_features, index_to_zp, quantise, sigma_q_schedule, soft_dequantise,
                              soft_dequantise_weights, soft_quantise)
from crypto.zp import P, centroids


def test_sigma_q_schedule_is_eq29_without_compounding():
    assert sigma_q_schedule(0) == 5
    assert sigma_q_schedule(1999) == 5
    assert sigma_q_schedule(2000) == 10
    assert sigma_q_schedule(10_000) == 30
    assert sigma_q_schedule(10 ** 7) == 200


def test_forward_is_hard_and_backward_is_soft_quantiser_gradient():
    torch.manual_seed(0)
    z = (torch.randn(200) * 6).requires_grad_()
    z_bar, index = quantise(z, sigma_q=7.0)
    assert torch.equal(z_bar.detach(), torch.round(z.detach()))
    assert torch.equal(index, torch.remainder(torch.round(z.detach()), 16).long())
    w = torch.randn(200)
    (g_hard,) = torch.autograd.grad((z_bar * w).sum(), z)
    z2 = z.detach().clone().requires_grad_()
    (g_soft,) = torch.autograd.grad((soft_quantise(z2, 7.0) * w).sum(), z2)
    assert torch.allclose(g_hard, g_soft)
    assert g_soft.abs().sum() > 0


def test_soft_quantiser_is_circular_and_hardens_with_sigma():
    z = torch.tensor([15.6, 0.3, 7.3])
    soft = soft_quantise(z, sigma_q=200.0)
    assert torch.allclose(soft, torch.tensor([16.0, 0.0, 7.0]), atol=1e-3)
    # Near the wrap the soft value stays next to z instead of jumping to the middle of the circle.
    assert abs(float(soft_quantise(torch.tensor([15.5]), 1.0)) - 15.5) < 0.5


def test_centroids_and_zp_mapping():
    assert list(index_to_zp(torch.arange(16))) == list(centroids())
    assert int(index_to_zp(torch.tensor(15))) == (15 * P) // 16


def test_soft_dequantiser_uses_circular_distance():
    # z' just below p is 0.1 spacing from centroid 0: the estimate must be near 0 (mod 16), not near 15.
    z = torch.tensor([15.9, 0.1, 8.0])
    out = soft_dequantise(z)
    d = torch.remainder(out - torch.tensor([0.0, 0.0, 8.0]) + 8, 16) - 8
    assert torch.all(d.abs() < 0.5)
    w = soft_dequantise_weights(z)
    assert torch.allclose(w.sum(-1), torch.ones(3))
    assert int(w[0].argmax()) == 0


def test_circle_features_period_is_n_levels():
    f = circle_features(torch.tensor([0.0, 16.0, 4.0]))
    assert torch.allclose(f[0], f[1], atol=1e-6)
    assert torch.allclose(f[2], torch.tensor([0.0, 1.0]), atol=1e-6)
