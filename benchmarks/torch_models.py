"""PyTorch copies of kerashw's models, for the benchmarks that compare against PyTorch
(parity_torch.py, throughput.py). Same layers, shapes and parameter counts as
kerashw.models; PyTorch's default init. torch is a benchmark-only dependency."""
from __future__ import annotations

import torch
import torch.nn as nn

HEADS = 4


class Block(nn.Module):
    """ResNet basic block: two 3x3 conv+BN, a 1x1 conv+BN shortcut when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.b1(self.c1(x)))
        return self.relu(self.short(x) + self.b2(self.c2(y)))


class FourHeads(nn.Module):
    """A body giving one feature vector, then four linear heads (softmax is in the loss)."""

    def __init__(self, body, features, num_classes):
        super().__init__()
        self.body = body
        self.heads = nn.ModuleList(nn.Linear(features, num_classes) for _ in range(HEADS))

    def forward(self, x):
        f = self.body(x)
        return [h(f) for h in self.heads]


class PositionHeads(nn.Module):
    """blocks.apply_position_pool, then the four heads: a 1x1 conv scores every cell of the
    feature map for each position, a softmax over the cells weights them, and head k reads
    position k's weighted average of the features."""

    def __init__(self, body, features, num_classes):
        super().__init__()
        self.body = body
        self.scores = nn.Conv2d(features, HEADS, 1)
        self.heads = nn.ModuleList(nn.Linear(features, num_classes) for _ in range(HEADS))

    def forward(self, x):
        f = self.body(x)
        weights = self.scores(f).flatten(2).softmax(-1)  # (batch, positions, cells)
        pooled = torch.bmm(weights, f.flatten(2).transpose(1, 2))  # (batch, positions, channels)
        return [h(pooled[:, k]) for k, h in enumerate(self.heads)]


def resnet18(num_classes=19, in_ch=3, channels=(64, 64, 128, 256, 512), pool="avg", stem_pool=True):
    layers = [nn.Conv2d(in_ch, channels[0], 7, 2, 3, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()]
    if stem_pool:
        layers.append(nn.MaxPool2d(3, 2, 1))
    cin = channels[0]
    for cout, stride in zip(channels[1:], (1, 2, 2, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    if pool == "position":
        return PositionHeads(nn.Sequential(*layers), cin, num_classes)
    return FourHeads(nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), cin, num_classes)


def resnet18_mod(num_classes=19, in_ch=3):
    return resnet18(num_classes, in_ch, channels=(16, 16, 16, 32, 32))


SLIM = (16, 16, 16, 32, 32)
TINY = (6, 8, 8, 16, 16)


def baseline(num_classes=19, in_ch=3, height=50, width=130):
    """The TA's CNN (kerashw.models.build_baseline's plan)."""
    plan = [(32, 1), (32, 0), "pool", (64, 1), (64, 0), "pool", (128, 1), (128, 0), "bn", "pool",
            (256, 1), (256, 1), "pool", (512, 1), "bn", "pool"]
    layers, c, h, w = [], in_ch, height, width
    for step in plan:
        if step == "pool":
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        elif step == "bn":
            layers.append(nn.BatchNorm2d(c))
        else:
            cout, same = step
            layers += [nn.Conv2d(c, cout, 3, padding=1 if same else 0), nn.ReLU()]
            c, h, w = cout, (h if same else h - 2), (w if same else w - 2)
    body = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.5))
    return FourHeads(body, c * h * w, num_classes)


def mnist_nn(num_classes=10):
    """Flatten(784) -> 256 -> 128 -> 10 (softmax in the loss)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, num_classes))


MODELS = {"nn": mnist_nn, "resnet18_mod": resnet18_mod, "baseline": baseline, "resnet18": resnet18,
          # kerashw.captcha.models.SLIM_VARIANTS: position pooling; _hr without the stem's max pool
          "resnet18_mod_hr": lambda num_classes=19, in_ch=3: resnet18(num_classes, in_ch, SLIM, "position", False),
          "resnet18_tiny_hr": lambda num_classes=19, in_ch=3: resnet18(num_classes, in_ch, TINY, "position", False)}
