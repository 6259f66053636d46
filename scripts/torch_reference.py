"""A plain PyTorch training loop: the reference of `benchmark.py --speed`.

The same classifier as ferzoo's Baseline on `ResNetBackbone.from_name(
"resnet18")`: a torchvision-layout ResNet-18 (7x7/2 stem + 3x3/2 max
pooling, basic blocks, batch norm eps 1e-5), global average pooling and a
7-way linear head, trained with Adam (lr 1e-3) and cross-entropy on random
pixels. Written out here so the reference needs torch only (no
torchvision). torch is not a ferzoo dependency; this file is the only
place that imports it. Prints one `SPEED_JSON {...}` line.

Invocations:
    python scripts/torch_reference.py --image-size 112 --batch-size 32
    python scripts/torch_reference.py --precision bf16 --steps 20
    python scripts/torch_reference.py --memory-format channels_last
"""

import json
import time

import click


def build_resnet18(num_classes=7):
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False),
                    nn.BatchNorm2d(cout),
                )

        def forward(self, x):
            shortcut = x if self.downsample is None else self.downsample(x)
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.bn2(self.conv2(x))
            return self.relu(x + shortcut)

    layers = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for i, cout in enumerate((64, 128, 256, 512)):
        for j in range(2):
            stride = 2 if (i > 0 and j == 0) else 1
            layers.append(BasicBlock(cin, cout, stride))
            cin = cout
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, num_classes),
    ]
    return nn.Sequential(*layers)


def _choice(flag, choices, help):
    """A `click.Choice` option whose default is the first choice."""
    return click.option(
        flag,
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help=help,
    )


@click.command()
@click.option("--image-size", default=112, show_default=True, help="Pixels.")
@click.option("--batch-size", default=32, show_default=True, help="Images.")
@click.option("--warmup", default=3, show_default=True, help="Untimed steps.")
@click.option("--steps", default=10, show_default=True, help="Timed steps.")
@_choice("--precision", ["fp32", "bf16"], "fp32, or bfloat16 autocast.")
@_choice(
    "--memory-format",
    ["contiguous", "channels_last"],
    "Tensor layout of the model and the images (NCHW or NHWC).",
)
def main(image_size, batch_size, warmup, steps, precision, memory_format):
    """Time a plain PyTorch ResNet-18 training loop; print img/s as JSON."""
    import torch

    torch.manual_seed(0)
    model = build_resnet18()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    # Pixels in [0, 255] normalised in the loop, as ferzoo does in-model.
    images = torch.rand(batch_size, 3, image_size, image_size) * 255
    labels = torch.randint(0, 7, (batch_size,))
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    stamps = []
    for _ in range(warmup + steps):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"
        ):
            logits = model((images - mean) / std)
            loss = loss_fn(logits.float(), labels)
        loss.backward()
        optimizer.step()
        loss.item()
        stamps.append(time.perf_counter())
    seconds = stamps[-1] - stamps[warmup - 1]
    out = {
        "images_per_second": batch_size * steps / seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "memory_format": memory_format,
    }
    print("SPEED_JSON " + json.dumps(out))


if __name__ == "__main__":
    main()
