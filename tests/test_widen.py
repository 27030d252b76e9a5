from dataclasses import replace

import pytest
import torch

from ich_infer.config import ModelConfig
from ich_infer.model import SEUNet3D
from training.widen import jitter, widen_state


@pytest.mark.parametrize(("skip", "downsample", "se"), [("concat", "maxpool", "encoder"), ("add", "conv", "all")])
def test_widened_network_computes_the_same_function(skip, downsample, se):
    cfg = ModelConfig(base_width=4, depth=2, se_reduction=2, skip=skip, downsample=downsample, se_placement=se,
                      dropout=0.0)
    torch.manual_seed(0)
    narrow = SEUNet3D(cfg).eval()
    wide = SEUNet3D(replace(cfg, base_width=8)).eval()
    wide.load_state_dict(widen_state(narrow.state_dict(), cfg, 2))
    x = torch.randn(2, 1, 8, 16, 16)
    with torch.no_grad():
        assert torch.allclose(narrow(x), wide(x), atol=1e-5)
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in narrow.parameters())


def test_jitter_breaks_the_symmetry_of_copies_but_not_the_biases():
    cfg = ModelConfig(base_width=4, depth=2, se_reduction=2, dropout=0.0)
    state = widen_state(SEUNet3D(cfg).state_dict(), cfg, 2)
    noisy = jitter(state, 0.01, torch.Generator().manual_seed(0))
    w = noisy["encoders.0.0.weight"]
    assert not torch.equal(w[:4], w[4:])  # copies differ after jitter
    assert torch.equal(state["encoders.0.0.weight"][:4], state["encoders.0.0.weight"][4:])
    assert torch.equal(noisy["encoders.0.0.bias"], state["encoders.0.0.bias"])
    assert 0 < float((noisy["encoders.0.0.weight"] - state["encoders.0.0.weight"]).abs().max()) < 0.1
