"""Record PyTorch reference fixtures for `ferzoo.convert` (needs torch).

Builds narrow networks in the layouts of the checkpoints the papers used,
written the way the original repositories define them (never derived from
ferzoo's code), gives every weight and batch-norm statistic a seeded random
value, runs them in eval mode on seeded RGB pixels and writes, per layout:

- `tests/fixtures/torch_<name>.npz`: the checkpoint, one array per tensor,
  keyed by the exact PyTorch name; a key `state_dict/module.conv1.weight`
  means the tensor sits at `checkpoint["state_dict"]["module.conv1.weight"]`
  (the nesting of the real file).
- `tests/fixtures/torch_<name>_io.npz`: `images` (uint8, NHWC, the pixels
  ferzoo takes), `features` (float32, NCHW, the torch net's last feature
  map for `(images / 255 - mean) / std` with ImageNet mean and std, the
  normalisation SCN, Ada-DF and POSTER feed these checkpoints) and
  `description`.

Layouts:
- `resnet18_msceleb`: torchvision `resnet18` ([2, 2, 2, 2] BasicBlocks,
  widths 4-32) saved as SCN's / Ada-DF's `resnet18_msceleb.pth`: a dict
  with `epoch` and `state_dict`, keys prefixed `module.` (DataParallel),
  and a 12,666-way `fc` (zero-filled here to keep the file small).
- `resnet50`: torchvision `resnet50`-style Bottleneck net ([2, 1, 1, 1]),
  a plain state dict with `fc`.
- `seresnet50_timm`: timm `seresnet50`-style ResNet (Bottleneck +
  `attn_layer="se"`) with `fc`. timm rounds the SE width up to a multiple
  of 8; seresnet50's SE widths (16-128) already are, so the narrow net
  passes `rd_divisor=1` to keep `channels // 16` as at full size.
- `seresnet50_cadene`: timm's `legacy_seresnet50`, the port of Cadene's
  `se_resnet50` (`layer0.*`, `se_module.*`, `last_linear`, stride on the
  first 1x1 conv, ceil-mode stem pooling).
- `ir50`: insightface / face.evoLVe `Backbone(mode="ir")` as POSTER's
  `models/ir50.py` defines it (`input_layer`, `body.N.res_layer`,
  `body.N.shortcut_layer`, `output_layer`), a plain state dict like
  POSTER's `ir50.pth`.
- `ir_se50`: the same with `bottleneck_IR_SE` units.
- `mobilefacenet`: POSTER's `models/mobilefacenet.py` (`conv1`,
  `conv2_dw`, `conv_23`, `conv_3.model.N`, ..., `conv_6_sep`, GDC
  `output_layer` with a 136-way landmark head), saved as POSTER's
  `mobilefacenet_model_best.pth.tar`: `state_dict` inside a dict.

The IR and MobileFaceNet modules below copy POSTER's code, with its
hard-coded widths and block counts made arguments; the features are
those of the body (IR: `self.body` output, before POSTER's reshape;
MobileFaceNet: `conv_features`, the output of `conv_6_sep`).

`--full-size DIR` instead checks the real sizes: it saves full-width
nets of each layout (random weights; ResNet-18 with the 12,666-way fc in
SCN's file layout, torchvision `resnet50`, timm `seresnet50` and
`legacy_seresnet50`, IR-50 and IR-SE-50 with 4 stages as in face.evoLVe's
`ir50.pth`, POSTER's MobileFaceNet) as `.pth` files in DIR, converts each
with `ferzoo-convert torch --image-size 112`, loads the preset and prints
the max abs error against torch on two 112 px images (KERAS_BACKEND
selects the backend).

Usage:
    python scripts/make_torch_fixtures.py [--output tests/fixtures]
    python scripts/make_torch_fixtures.py --full-size /tmp/full [NAME ...]
"""

import argparse
import json
import math
import pathlib
import subprocess
import sys
from collections import namedtuple
from functools import partial

if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    try:  # --help works without the torch extra (scripts/test.sh runs it)
        import torch  # noqa: F401
    except ImportError:
        print(__doc__)
        sys.exit(0)

import numpy as np
import timm
import torch
import torchvision
from timm.layers.squeeze_excite import SEModule as TimmSEModule
from timm.models.senet import SENet
from timm.models.senet import SEResNetBottleneck
from torch import nn
from torch.nn import BatchNorm1d
from torch.nn import BatchNorm2d
from torch.nn import Conv2d
from torch.nn import Dropout
from torch.nn import Linear
from torch.nn import MaxPool2d
from torch.nn import Module
from torch.nn import PReLU
from torch.nn import ReLU
from torch.nn import Sequential
from torch.nn import Sigmoid

ROOT = pathlib.Path(__file__).resolve().parents[1]
MEAN = np.array([0.485, 0.456, 0.406], "float64")
STD = np.array([0.229, 0.224, 0.225], "float64")

# ---------------------------------------------------------------------------
# insightface IR / IR-SE, as in POSTER's models/ir50.py.


class Flatten(Module):
    def forward(self, input):
        return input.view(input.size(0), -1)


class SEModule(Module):
    def __init__(self, channels, reduction):
        super(SEModule, self).__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(
            channels,
            channels // reduction,
            kernel_size=1,
            padding=0,
            bias=False,
        )
        self.relu = ReLU(inplace=True)
        self.fc2 = Conv2d(
            channels // reduction,
            channels,
            kernel_size=1,
            padding=0,
            bias=False,
        )
        self.sigmoid = Sigmoid()

    def forward(self, x):
        module_input = x
        x = self.avg_pool(x)
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        x = self.sigmoid(x)
        return module_input * x


class bottleneck_IR(Module):
    def __init__(self, in_channel, depth, stride, se=False):
        # POSTER's bottleneck_IR_SE is this class with the SE module last
        # in `res_layer` (one class here, the same modules and names).
        super(bottleneck_IR, self).__init__()
        if in_channel == depth:
            self.shortcut_layer = MaxPool2d(1, stride)
        else:
            self.shortcut_layer = Sequential(
                Conv2d(in_channel, depth, (1, 1), stride, bias=False),
                BatchNorm2d(depth),
            )
        self.res_layer = Sequential(
            BatchNorm2d(in_channel),
            Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
            PReLU(depth),
            Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
            BatchNorm2d(depth),
            *([SEModule(depth, 16)] if se else []),
        )

    def forward(self, x):
        shortcut = self.shortcut_layer(x)
        res = self.res_layer(x)
        return res + shortcut


bottleneck_IR_SE = partial(bottleneck_IR, se=True)


class Bottleneck(namedtuple("Block", ["in_channel", "depth", "stride"])):
    """A named tuple describing a ResNet block."""


def get_block(in_channel, depth, num_units, stride=2):
    return [Bottleneck(in_channel, depth, stride)] + [
        Bottleneck(depth, depth, 1) for i in range(num_units - 1)
    ]


def get_blocks(stem, depths, units):
    # POSTER's get_blocks(50) is stem 64, depths (64, 128, 256, 512) and
    # units (3, 4, 14, 3); here they are arguments.
    blocks, in_channel = [], stem
    for depth, n in zip(depths, units):
        blocks.append(get_block(in_channel, depth, n))
        in_channel = depth
    return blocks


class IRBackbone(Module):
    """POSTER's `Backbone(num_layers, drop_ratio, mode)`, widths as args."""

    def __init__(self, stem, depths, units, embedding, mode="ir"):
        super(IRBackbone, self).__init__()
        blocks = get_blocks(stem, depths, units)
        unit_module = bottleneck_IR if mode == "ir" else bottleneck_IR_SE
        self.input_layer = Sequential(
            Conv2d(3, stem, (3, 3), 1, 1, bias=False),
            BatchNorm2d(stem),
            PReLU(stem),
        )
        self.output_layer = Sequential(
            BatchNorm2d(depths[-1]),
            Dropout(0.0),
            Flatten(),
            Linear(depths[-1] * 7 * 7, embedding),
            BatchNorm1d(embedding),
        )
        modules = []
        for block in blocks:
            for bottleneck in block:
                modules.append(
                    unit_module(
                        bottleneck.in_channel,
                        bottleneck.depth,
                        bottleneck.stride,
                    )
                )
        self.body = Sequential(*modules)

    def forward(self, x):
        # POSTER resizes to 112 first and reshapes the map to tokens after;
        # the fixture keeps the body's feature map.
        x = self.input_layer(x)
        return self.body(x)


# ---------------------------------------------------------------------------
# MobileFaceNet, as in POSTER's models/mobilefacenet.py.


class Linear_block(Module):
    def __init__(
        self,
        in_c,
        out_c,
        kernel=(1, 1),
        stride=(1, 1),
        padding=(0, 0),
        groups=1,
    ):
        super(Linear_block, self).__init__()
        self.conv = Conv2d(
            in_c,
            out_channels=out_c,
            kernel_size=kernel,
            groups=groups,
            stride=stride,
            padding=padding,
            bias=False,
        )
        self.bn = BatchNorm2d(out_c)

    def forward(self, x):
        x = self.conv(x)
        x = self.bn(x)
        return x


class Conv_block(Linear_block):
    # POSTER's Conv_block is its Linear_block followed by a PReLU (the
    # same modules, in the same order).
    def __init__(self, in_c, out_c, *args, **kwargs):
        super(Conv_block, self).__init__(in_c, out_c, *args, **kwargs)
        self.prelu = PReLU(out_c)

    def forward(self, x):
        return self.prelu(super(Conv_block, self).forward(x))


class Depth_Wise(Module):
    def __init__(
        self,
        in_c,
        out_c,
        residual=False,
        kernel=(3, 3),
        stride=(2, 2),
        padding=(1, 1),
        groups=1,
    ):
        super(Depth_Wise, self).__init__()
        self.conv = Conv_block(
            in_c, out_c=groups, kernel=(1, 1), padding=(0, 0), stride=(1, 1)
        )
        self.conv_dw = Conv_block(
            groups,
            groups,
            groups=groups,
            kernel=kernel,
            padding=padding,
            stride=stride,
        )
        self.project = Linear_block(
            groups, out_c, kernel=(1, 1), padding=(0, 0), stride=(1, 1)
        )
        self.residual = residual

    def forward(self, x):
        if self.residual:
            short_cut = x
        x = self.conv(x)
        x = self.conv_dw(x)
        x = self.project(x)
        if self.residual:
            output = short_cut + x
        else:
            output = x
        return output


class Residual(Module):
    def __init__(
        self, c, num_block, groups, kernel=(3, 3), stride=(1, 1), padding=(1, 1)
    ):
        super(Residual, self).__init__()
        modules = []
        for _ in range(num_block):
            modules.append(
                Depth_Wise(
                    c,
                    c,
                    residual=True,
                    kernel=kernel,
                    padding=padding,
                    stride=stride,
                    groups=groups,
                )
            )
        self.model = Sequential(*modules)

    def forward(self, x):
        return self.model(x)


class GDC(Module):
    def __init__(self, channels, embedding_size):
        super(GDC, self).__init__()
        self.conv_6_dw = Linear_block(
            channels,
            channels,
            groups=channels,
            kernel=(7, 7),
            stride=(1, 1),
            padding=(0, 0),
        )
        self.conv_6_flatten = Flatten()
        self.linear = Linear(channels, embedding_size, bias=False)
        self.bn = BatchNorm1d(embedding_size)

    def forward(self, x):
        x = self.conv_6_dw(x)
        x = self.conv_6_flatten(x)
        x = self.linear(x)
        x = self.bn(x)
        return x


class MobileFaceNet(Module):
    """POSTER's `MobileFaceNet([112, 112], 136)`, widths divided by `d`."""

    def __init__(self, d=1, embedding_size=136):
        super(MobileFaceNet, self).__init__()
        c64, c128, c256, c512 = 64 // d, 128 // d, 256 // d, 512 // d
        k3, s1, s2, p0, p1 = (3, 3), (1, 1), (2, 2), (0, 0), (1, 1)
        self.conv1 = Conv_block(3, c64, kernel=k3, stride=s2, padding=p1)
        self.conv2_dw = Conv_block(
            c64, c64, kernel=k3, stride=s1, padding=p1, groups=c64
        )
        self.conv_23 = Depth_Wise(
            c64, c64, kernel=k3, stride=s2, padding=p1, groups=c128
        )
        self.conv_3 = Residual(
            c64, num_block=4, groups=c128, kernel=k3, stride=s1, padding=p1
        )
        self.conv_34 = Depth_Wise(
            c64, c128, kernel=k3, stride=s2, padding=p1, groups=c256
        )
        self.conv_4 = Residual(
            c128, num_block=6, groups=c256, kernel=k3, stride=s1, padding=p1
        )
        self.conv_45 = Depth_Wise(
            c128, c128, kernel=k3, stride=s2, padding=p1, groups=c512
        )
        self.conv_5 = Residual(
            c128, num_block=2, groups=c256, kernel=k3, stride=s1, padding=p1
        )
        self.conv_6_sep = Conv_block(
            c128, c512, kernel=(1, 1), stride=s1, padding=p0
        )
        self.output_layer = GDC(c512, embedding_size)

    def forward(self, x):
        out = self.conv1(x)
        out = self.conv2_dw(out)
        out = self.conv_23(out)
        out = self.conv_3(out)
        out = self.conv_34(out)
        out = self.conv_4(out)
        out = self.conv_45(out)
        out = self.conv_5(out)
        conv_features = self.conv_6_sep(out)
        # POSTER also returns `self.output_layer(conv_features)` (landmarks,
        # 7x7 input only); the fixture keeps the feature map.
        return conv_features


# ---------------------------------------------------------------------------
# torchvision and timm nets, narrowed with their own layer builders.


def torchvision_resnet(block, layers, width, num_classes):
    """torchvision's ResNet with stage widths `width * (1, 2, 4, 8)`."""
    model = torchvision.models.resnet.ResNet(block, layers)
    model.inplanes = width
    model.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.layer1 = model._make_layer(block, width, layers[0])
    model.layer2 = model._make_layer(block, 2 * width, layers[1], stride=2)
    model.layer3 = model._make_layer(block, 4 * width, layers[2], stride=2)
    model.layer4 = model._make_layer(block, 8 * width, layers[3], stride=2)
    model.fc = nn.Linear(8 * width * block.expansion, num_classes)
    return model


def torchvision_features(model):
    return nn.Sequential(*list(model.children())[:-2])


def timm_seresnet(width):
    se = partial(TimmSEModule, rd_divisor=1)
    model = timm.models.resnet.ResNet(
        timm.models.resnet.Bottleneck,
        [2, 1, 1, 1],
        channels=(width, 2 * width, 4 * width, 8 * width),
        num_classes=10,
        block_args={"attn_layer": se},
    )
    return model


def cadene_seresnet(width):
    """timm's `legacy_seresnet50` (Cadene's layout), narrow stages."""
    block = SEResNetBottleneck
    model = SENet(
        block, [1, 1, 1, 1], groups=1, reduction=16, inplanes=width,
        num_classes=10,
    )  # fmt: skip
    model.inplanes = width
    for i, blocks in enumerate([2, 1, 1, 1]):
        setattr(
            model,
            f"layer{i + 1}",
            model._make_layer(
                block,
                planes=width * 2**i,
                blocks=blocks,
                groups=1,
                reduction=16,
                stride=1 if i == 0 else 2,
            ),
        )
    model.last_linear = nn.Linear(8 * width * 4, 10)
    return model


def randomize(model, generator):
    """Seeded random values for every parameter and buffer that matters."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = module.num_features
                module.weight.copy_(
                    torch.rand(n, generator=generator) * 0.5 + 0.25
                )
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_mean.copy_(
                    torch.randn(n, generator=generator) * 0.1
                )
                module.running_var.copy_(
                    torch.rand(n, generator=generator) + 0.5
                )
                module.num_batches_tracked.fill_(1000)
            elif isinstance(module, nn.PReLU):
                module.weight.copy_(
                    torch.rand(module.weight.shape, generator=generator) * 0.5
                )
            elif isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = math.prod(module.weight.shape[1:])
                module.weight.copy_(
                    torch.randn(module.weight.shape, generator=generator)
                    * math.sqrt(2.0 / fan_in)
                )
                if module.bias is not None:
                    module.bias.copy_(
                        torch.randn(module.bias.shape, generator=generator)
                        * 0.1
                    )


def make(name, model, features, size, prefix="", nesting=None, extra=None,
         description="", zero=(), output=None, seed=0):  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    randomize(model, generator)
    model.eval()
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    x = (images.astype("float64") / 255.0 - MEAN) / STD
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        y = features(model.double())(x).numpy().astype("float32")
    model.float()
    arrays = {}
    for key, value in model.state_dict().items():
        value = value.numpy()
        if any(key.startswith(z) for z in zero):
            value = np.zeros_like(value)
        full = prefix + key
        arrays[f"{nesting}/{full}" if nesting else full] = value
    for key, value in (extra or {}).items():
        arrays[key] = np.asarray(value)
    np.savez_compressed(output / f"torch_{name}.npz", **arrays)
    np.savez_compressed(
        output / f"torch_{name}_io.npz",
        images=images,
        features=y,
        description=np.asarray(description),
    )
    print(f"{name}: {len(arrays)} arrays, features {y.shape}, "
          f"|features| max {np.abs(y).max():.3f}")  # fmt: skip


def _whole(model):
    return model


def _forward_features(model):
    return model.forward_features


# name: (narrow torch net, its feature extractor, image size, description
# (the library versions follow), `make` options). Seeds are 1, 2, ... in
# this order.
FIXTURES = {
    "resnet18_msceleb": (
        lambda: torchvision_resnet(
            torchvision.models.resnet.BasicBlock, [2, 2, 2, 2], 4, 12666
        ),
        torchvision_features,
        48,
        "torchvision resnet18 layout, widths 4-32, saved like "
        "resnet18_msceleb.pth ({'epoch', 'arch', 'state_dict'}, 'module.' "
        "keys, 12,666-way fc zero-filled); ",
        {
            "prefix": "module.",
            "nesting": "state_dict",
            "extra": {"epoch": 40, "arch": "resnet18"},
            "zero": ("fc.",),
        },
    ),
    "resnet50": (
        lambda: torchvision_resnet(
            torchvision.models.resnet.Bottleneck, [2, 1, 1, 1], 4, 10
        ),
        torchvision_features,
        40,
        "torchvision resnet50 layout, [2, 1, 1, 1] blocks, widths 4-32; ",
        {},
    ),
    "seresnet50_timm": (
        lambda: timm_seresnet(4),
        _forward_features,
        40,
        "timm seresnet50 layout, [2, 1, 1, 1] blocks, widths 4-32 (the 7x7 "
        "stem keeps 64), SE rd_divisor=1; ",
        {},
    ),
    "seresnet50_cadene": (
        lambda: cadene_seresnet(4),
        _forward_features,
        44,
        "timm legacy_seresnet50 (Cadene se_resnet50) layout, [2, 1, 1, 1] "
        "blocks, widths 4-32; ",
        {},
    ),
    "ir50": (
        lambda: IRBackbone(8, [8, 16, 24, 32], [2, 2, 1, 1], 8),
        _whole,
        32,
        "insightface IR layout as POSTER's models/ir50.py, stem 8, depths "
        "[8, 16, 24, 32], units [2, 2, 1, 1], plain state dict with "
        "output_layer; ",
        {},
    ),
    "ir_se50": (
        lambda: IRBackbone(16, [16, 32], [2, 1], 8, mode="ir_se"),
        _whole,
        32,
        "insightface IR-SE layout as POSTER's models/ir50.py, stem 16, "
        "depths [16, 32], units [2, 1], 'module.' keys with output_layer; ",
        {"prefix": "module."},
    ),
    "mobilefacenet": (
        lambda: MobileFaceNet(d=8),
        _whole,
        48,
        "POSTER's MobileFaceNet layout, widths / 8, GDC output_layer with "
        "136 outputs, saved like mobilefacenet_model_best.pth.tar "
        "({'epoch', 'best_nme', 'state_dict'}); ",
        {
            "nesting": "state_dict",
            "extra": {"epoch": 100, "best_nme": 0.05},
        },
    ),
}


FULL_SIZE = {
    # name: (torch net, its feature extractor, key prefix, nesting)
    "resnet18_msceleb": (
        lambda: torchvision_resnet(
            torchvision.models.resnet.BasicBlock, [2, 2, 2, 2], 64, 12666
        ),
        torchvision_features,
        "module.",
        "state_dict",
    ),
    "resnet50": (torchvision.models.resnet50, torchvision_features, "", None),
    "seresnet50_timm": (
        lambda: timm.create_model("seresnet50"),
        _forward_features,
        "",
        None,
    ),
    "seresnet50_cadene": (
        lambda: timm.create_model("legacy_seresnet50"),
        _forward_features,
        "",
        None,
    ),
    "ir50": (
        lambda: IRBackbone(64, [64, 128, 256, 512], [3, 4, 14, 3], 512),
        _whole,
        "",
        None,
    ),
    "ir_se50": (
        lambda: IRBackbone(
            64, [64, 128, 256, 512], [3, 4, 14, 3], 512, mode="ir_se"
        ),
        _whole,
        "",
        None,
    ),
    "mobilefacenet": (MobileFaceNet, _whole, "", "state_dict"),
}


def full_size(folder, names):
    import keras

    from ferzoo.backbones import Backbone

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    x = (images.astype("float64") / 255.0 - MEAN) / STD
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).astype("float32"))
    for name in names or FULL_SIZE:
        build, features, prefix, nesting = FULL_SIZE[name]
        model = build()
        randomize(model, torch.Generator().manual_seed(1))
        model.eval()
        with torch.no_grad():
            expected = features(model)(x).numpy().transpose(0, 2, 3, 1)
        state = {prefix + k: v for k, v in model.state_dict().items()}
        checkpoint = {nesting: state, "epoch": 1} if nesting else state
        path = folder / f"{name}.pth"
        torch.save(checkpoint, path)
        preset = folder / f"preset_{name}"
        command = [
            sys.executable, "-m", "ferzoo.cli.convert", "torch", str(path),
            "--output", str(preset), "--image-size", "112", "--overwrite",
        ]  # fmt: skip
        subprocess.run(command, check=True)
        backbone = Backbone.from_preset(preset)
        actual = keras.ops.convert_to_numpy(backbone(images))
        size = (preset / "model.weights.h5").stat().st_size
        result = {
            "name": name,
            "backend": keras.backend.backend(),
            "max_abs_err": float(np.abs(actual - expected).max()),
            "max_abs_torch": float(np.abs(expected).max()),
            "feature_shape": list(actual.shape[1:]),
            "weights_mb": round(size / 1e6, 1),
        }
        print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=ROOT / "tests" / "fixtures")
    parser.add_argument("--full-size", default=None, metavar="DIR")
    parser.add_argument("names", nargs="*", help="full-size nets to check")
    args = parser.parse_args()
    if set(args.names) - set(FULL_SIZE):
        parser.error(f"names must be among {sorted(FULL_SIZE)}")
    if args.full_size:
        full_size(args.full_size, args.names)
        return
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    versions = f"torch {torch.__version__}, torchvision " + (
        f"{torchvision.__version__}, timm {timm.__version__}"
    )

    for seed, (name, fixture) in enumerate(FIXTURES.items(), start=1):
        build, features, size, description, options = fixture
        make(name, build(), features, size, description=description +
             versions, output=output, seed=seed, **options)  # fmt: skip
    total = sum(p.stat().st_size for p in output.glob("torch_*.npz"))
    print(json.dumps({"fixture_bytes": total}))


if __name__ == "__main__":
    main()
