import pytest
import torch

from models.codec import CodecConfig, DeepJscec, EveDecoder, decoder_features
from models.networks import GDN, latent_channels


def test_latent_channels_follow_rho():
    assert latent_channels(1 / 6, "cifar") == 8      # 8×8×8 = 512 = 3072/6
    assert latent_channels(1 / 6, "tiny") == 128     # 4×4×128 = 2048 = 12288/6
    with pytest.raises(ValueError):
        latent_channels(1 / 7, "cifar")


@pytest.mark.parametrize("size", [(32, 32), (37, 50), (512, 512)])
def test_fully_convolutional_any_size(size):
    torch.manual_seed(0)
    model = DeepJscec(CodecConfig(width=8)).eval()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        z_bar, plaintext, shape = model.encode(x)
        assert plaintext.shape[1] == shape[0] * shape[1] * shape[2]
        assert plaintext.min() >= 0 and plaintext.max() < 4093
        x_hat = model.decode(plaintext.double(), shape, out_size=size)
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) >= 0 and float(x_hat.max()) <= 1


def test_tiny_layout_downsamples_by_16():
    model = DeepJscec(CodecConfig(layout="tiny", width=8)).eval()
    with torch.no_grad():
        _, plaintext, shape = model.encode(torch.rand(2, 3, 64, 64))
    assert shape == (128, 4, 4) and plaintext.shape == (2, 2048)


def test_gdn_inverse_undoes_gdn_for_small_inputs():
    g, ig = GDN(4), GDN(4, inverse=True)
    x = torch.randn(1, 4, 5, 5) * 0.1
    assert torch.allclose(ig(g(x)), x, atol=5e-3)


def test_gradient_skip_reaches_encoder_through_both_decoder_inputs():
    for mode in ("circular", "eq16"):
        model = DeepJscec(CodecConfig(width=8, decoder_input=mode))
        x = torch.rand(2, 3, 32, 32)
        z_bar, plaintext, shape = model.encode(x, sigma_q=5.0)
        received = torch.remainder(plaintext.double() + 300.0, 4093)  # a noisy, non-differentiable z'
        loss = ((model.decode(received, shape, z_bar=z_bar) - x) ** 2).mean()
        loss.backward()
        grads = [p.grad for p in model.encoder.parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_decoder_features_forward_uses_received_value():
    z_bar = torch.zeros(1, 1, 1, 1, requires_grad=True)
    received = torch.full((1, 1, 1, 1), 4.0)  # a quarter turn on the circle of 16
    f = decoder_features(received, z_bar, "circular")
    assert torch.allclose(f.flatten(), torch.tensor([0.0, 1.0]), atol=1e-6)


def test_eve_decoder_has_bob_decoder_size():
    cfg = CodecConfig(width=8)
    bob = DeepJscec(cfg)
    eve = EveDecoder(cfg)
    assert sum(p.numel() for p in eve.parameters()) == sum(p.numel() for p in bob.decoder.parameters())
