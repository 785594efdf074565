"""A torch DenseNet-121 with exactly torchvision's module names, as the torch reference.

torchvision from PyPI does not import beside torch 2.13.0 here, so this is the
architecture of `torchvision.models.densenet121` (memory_efficient=False) written
out: `features.conv0/norm0/relu0/pool0`, `features.denseblock{1..4}.denselayer{i}`
with `norm1/relu1/conv1/norm2/relu2/conv2`, `features.transition{1..3}` with
`norm/relu/conv/pool`, `features.norm5`, then ReLU, global average pooling and
`classifier`. Its state_dict keys are torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class DenseLayer(nn.Module):
    def __init__(self, channels: int, growth: int = 32, bottleneck: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(channels, bottleneck * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bottleneck * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.relu1(self.norm1(x)))
        y = self.conv2(self.relu2(self.norm2(y)))
        return torch.cat([x, y], 1)


class Transition(nn.Sequential):
    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(channels))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(channels, out, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(2, 2))


class TorchDenseNet121(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        stem = [
            ("conv0", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(64)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]
        self.features = nn.Sequential(OrderedDict(stem))
        channels = 64
        for index, n_layers in enumerate((6, 12, 24, 16), start=1):
            block = nn.Sequential()
            for layer in range(1, n_layers + 1):
                block.add_module(f"denselayer{layer}", DenseLayer(channels))
                channels += 32
            self.features.add_module(f"denseblock{index}", block)
            if index < 4:
                self.features.add_module(f"transition{index}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024 features: features -> ReLU -> global average pooling (torchvision's forward
        without the classifier)."""
        return torch.flatten(
            nn.functional.adaptive_avg_pool2d(nn.functional.relu(self.features(x)), 1), 1
        )


def randomised(seed: int = 0) -> TorchDenseNet121:
    """The reference in eval mode with random weights and non-trivial batch-norm statistics."""
    generator = torch.Generator().manual_seed(seed)
    model = TorchDenseNet121()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2.0 / fan_in) ** 0.5, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.7, 1.3, generator=generator)
                module.bias.normal_(0, 0.1, generator=generator)
                module.running_mean.normal_(0, 0.1, generator=generator)
                module.running_var.uniform_(0.7, 1.3, generator=generator)
    return model.eval()


def legacy_keys(state: dict) -> dict:
    """torchvision's pre-0.3 key names (`norm.1`, `conv.2`, …), which its loader remaps."""
    out = {}
    for key, value in state.items():
        for part in ("norm1", "norm2", "conv1", "conv2", "relu1", "relu2"):
            key = key.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
        out[key] = value
    return out
