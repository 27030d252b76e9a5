import pytest
import torch

from ich_infer.config import ModelConfig
from ich_infer.model import SEUNet3D, SqueezeExcitation, count_parameters


def test_paper_parameter_counts():
    # 32-64-128-256-512, one 3x3x3 conv per level, SE after each encoder level (reduction 16)
    assert count_parameters(SEUNet3D(ModelConfig())) == 10_840_544
    assert count_parameters(SEUNet3D(ModelConfig(skip="add"))) == 8_490_464


@pytest.mark.parametrize("placement", ["encoder", "ends", "all", "none"])
def test_se_placements_give_the_right_number_of_blocks(placement):
    model = SEUNet3D(ModelConfig(base_width=8, se_placement=placement))
    blocks = sum(isinstance(m, SqueezeExcitation) for m in model.modules())
    assert blocks == {"encoder": 5, "ends": 2, "all": 9, "none": 0}[placement]


@pytest.mark.parametrize("shape", [(16, 48, 48), (32, 96, 80)])
def test_forward_shapes(shape):
    model = SEUNet3D(ModelConfig(base_width=4)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, *shape))
    assert out.shape == (2, 2, *shape)


@pytest.mark.parametrize("variant", [dict(downsample="conv"), dict(skip="add"), dict(in_channels=2), dict(depth=3)])
def test_variants_run(variant):
    cfg = ModelConfig(base_width=4, **variant)
    out = SEUNet3D(cfg).eval()(torch.randn(1, cfg.in_channels, 16, 48, 48))
    assert out.shape == (1, 2, 16, 48, 48)


def test_sizes_not_divisible_by_the_poolings_are_rejected():
    with pytest.raises(ValueError, match="divisible by 16"):
        SEUNet3D(ModelConfig(base_width=4))(torch.randn(1, 1, 12, 48, 48))


def test_dropout_active_in_train_mode_only():
    torch.manual_seed(0)
    model = SEUNet3D(ModelConfig(base_width=4, dropout=0.5))
    x = torch.randn(1, 1, 16, 48, 48)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
