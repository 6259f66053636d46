"""Record outputs of the official SCN, EAC and Ada-DF code (needs torch).

Takes local checkouts of the official repositories (fetched by whoever
runs it; nothing of theirs is copied into ferzoo), imports their modules,
builds their networks at a tiny size with fixed (seeded) weights, and on
one fixed batch runs their loss, their backward pass and one step of
their optimiser. It writes `tests/fixtures/official/{scn,eac,ada_df}.npz`
(inputs, weights in PyTorch `state_dict` names and layouts, each loss
term, gradients, weights after the step, relabel decisions and, for
Ada-DF, the epoch-end class-distribution mining on a known input).

What is theirs and what is re-stated:
- SCN (`src/train.py`): `Res18Feature.forward` is called as their code
  defines it, on a network whose `features`, `fc` and `alpha` are tiny
  (conv 3x3 + ReLU + global pooling, 8 channels; `__init__` builds a
  torchvision ResNet-18 with the removed `pretrained` argument, so it is
  bypassed). The loop body of `run_training` (rank regularization, loss,
  Adam step with `weight_decay=1e-4`, relabel; lines 217-258) cannot be
  imported and is re-stated below line by line.
- EAC (`src/loss.py`, `src/utils.py`): `ACLoss` and `generate_flip_grid`
  are theirs. `Model.forward` (`src/model.py` lines 22-41) hard-codes
  2048 channels, so it is re-stated with the tiny width; `main.py`'s
  `train` body (lines 56-74: CE + lam * ACLoss, Adam lr 1e-4,
  weight_decay 1e-4, `lam` 5) is re-stated.
- Ada-DF (`model.py`, `utils.py`): `ResNet18.forward` is theirs, on tiny
  modules (its `__init__` loads `./pretrain/resnet18_msceleb.pth`); the
  epoch-end `generate_adaptive_LD` is theirs; `train.py`'s loss (lines
  145-206: the schedules, RR, CE, the [0.2, 1] rescaling of the
  attention weights, the fused targets, KLD) is re-stated, because
  `train.py` parses the command line when imported.

Usage:
    python scripts/record_official_fixtures.py \\
        --scn PATH/Self-Cure-Network --eac PATH/Erasing-Attention-Consistency \\
        --ada-df PATH/Ada-DF [--output tests/fixtures/official]
"""

import argparse
import math
import pathlib
import subprocess
import sys

import numpy as np

BATCH, SIZE, CHANNELS, CLASSES, DATASET = 8, 6, 8, 7, 12


def git_commit(path):
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def import_from(folder, name):
    """Import `name` from the official `folder` (a fresh module)."""
    import importlib

    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def seeded(module, rng, scale, bias_scale=0.1):
    """Give every parameter of `module` a seeded normal value."""
    import torch

    with torch.no_grad():
        for name, p in module.named_parameters():
            std = bias_scale if name.endswith("bias") else scale
            p.copy_(torch.tensor(rng.normal(0, std, p.shape), dtype=p.dtype))


def tiny_conv(rng):
    import torch.nn as nn

    conv = nn.Conv2d(3, CHANNELS, 3, padding=1)
    seeded(conv, rng, 0.5, bias_scale=0.3)
    return conv


def batch(rng):
    """NHWC float32 inputs (already normalised) and their NCHW tensor."""
    import torch

    images = rng.normal(0, 1, (BATCH, SIZE, SIZE, 3))
    images = (images + rng.normal(0, 2, (BATCH, 1, 1, 3))).astype("float32")
    return images, torch.tensor(images.transpose(0, 3, 1, 2))


def state(module, prefix=""):
    return {
        prefix + k: v.detach().numpy().copy()
        for k, v in module.state_dict().items()
    }


def grads(module, prefix=""):
    return {
        prefix + k: p.grad.detach().numpy().copy()
        for k, p in module.named_parameters()
        if p.grad is not None
    }


def with_step(out, weights, gradients, module):
    """`out` with one optimizer step of `module`: its weights before
    (`weights/`), its gradients (`grads/`) and its weights after
    (`after/`)."""
    out.update({f"weights/{k}": v for k, v in weights.items()})
    out.update({f"grads/{k}": v for k, v in gradients.items()})
    out.update({f"after/{k}": v for k, v in state(module).items()})
    return out


def record_scn(repo, rng):
    """SCN: forward, CE + RR, Adam(weight_decay=1e-4) step, relabel."""
    import torch
    import torch.nn as nn

    scn = import_from(pathlib.Path(repo) / "src", "train")
    net = scn.Res18Feature.__new__(scn.Res18Feature)
    nn.Module.__init__(net)
    net.drop_rate = 0
    net.features = nn.Sequential(
        tiny_conv(rng), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
    )
    net.fc = nn.Linear(CHANNELS, CLASSES)
    net.alpha = nn.Sequential(nn.Linear(CHANNELS, 1), nn.Sigmoid())
    seeded(net.fc, rng, 3.0)
    seeded(net.alpha, rng, 0.03)
    images, imgs = batch(rng)
    dataset_labels = rng.integers(0, CLASSES, DATASET)
    indexes = rng.permutation(DATASET)[:BATCH]
    weights = state(net)
    # Their defaults (parse_args): beta 0.7, margin_1 0.15, margin_2 0.2,
    # relabel_epoch 10; Adam(params, weight_decay=1e-4), lr 1e-3.
    beta, margin_1, margin_2, epoch, relabel_epoch = 0.7, 0.15, 0.2, 10, 10
    optimizer = torch.optim.Adam(net.parameters(), weight_decay=1e-4)
    criterion = torch.nn.CrossEntropyLoss()
    # --- train.py lines 217-247 ---
    batch_sz = imgs.size(0)
    tops = int(batch_sz * beta)
    optimizer.zero_grad()
    attention_weights, outputs = net(imgs)
    # Two samples of the batch carry the label the network predicts, so
    # the relabel step keeps some labels and changes others.
    dataset_labels[indexes[:2]] = outputs.argmax(1).numpy()[:2]
    targets = torch.tensor(dataset_labels[indexes])
    _, top_idx = torch.topk(attention_weights.squeeze(), tops)
    _, down_idx = torch.topk(
        attention_weights.squeeze(), batch_sz - tops, largest=False
    )
    high_mean = torch.mean(attention_weights[top_idx])
    low_mean = torch.mean(attention_weights[down_idx])
    diff = low_mean - high_mean + margin_1
    rr_loss = diff if diff > 0 else torch.zeros(())
    ce = criterion(outputs, targets)
    loss = ce + rr_loss
    loss.backward()
    gradients = grads(net)
    optimizer.step()
    # --- lines 249-258: relabel (on this batch's outputs) ---
    labels_after = dataset_labels.copy()
    if epoch >= relabel_epoch:
        sm = torch.softmax(outputs, dim=1)
        p_max, predicted = torch.max(sm, 1)
        p_gt = torch.gather(sm, 1, targets.view(-1, 1)).squeeze()
        update = (p_max - p_gt > margin_2).nonzero().squeeze(1).numpy()
        labels_after[indexes[update]] = predicted.numpy()[update]
    changed = labels_after[indexes] != dataset_labels[indexes]
    assert 0 < changed.sum() < BATCH, changed  # a batch worth testing
    assert float(rr_loss.detach()) > 0
    out = {
        "images": images,
        "sample_ids": indexes.astype("int32"),
        "labels": dataset_labels[indexes].astype("int32"),
        "dataset_labels": dataset_labels.astype("int32"),
        "dataset_labels_after": labels_after.astype("int32"),
        "importance": attention_weights.detach().numpy()[:, 0],
        "weighted_logits": outputs.detach().numpy(),
        "loss_ce": float(ce),
        "loss_rr": float(rr_loss),
        "loss": float(loss),
        "epoch": epoch,
        "beta": beta,
        "margin_1": margin_1,
        "margin_2": margin_2,
        "lr": 1e-3,
        "weight_decay": 1e-4,
    }
    return with_step(out, weights, gradients, net)


def record_eac(repo, rng):
    """EAC: x and flip(x), CE + 5 ACLoss, Adam(1e-4, wd 1e-4) step."""
    import torch
    import torch.nn as nn

    src = pathlib.Path(repo) / "src"
    ac_loss = import_from(src, "loss").ACLoss
    generate_flip_grid = import_from(src, "utils").generate_flip_grid

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(tiny_conv(rng), nn.ReLU())
            self.features2 = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(CHANNELS, CLASSES)

        def forward(self, x):  # model.py lines 22-41, 2048 -> CHANNELS
            x = self.features(x)
            feature = self.features2(x)
            feature = feature.view(feature.size(0), -1)
            output = self.fc(feature)
            params = list(self.parameters())
            fc_weights = params[-2].data
            fc_weights = fc_weights.view(1, CLASSES, CHANNELS, 1, 1)
            fc_weights = fc_weights.detach()  # Variable(requires_grad=False)
            feat = x.unsqueeze(1)
            hm = (feat * fc_weights).sum(2)
            return output, hm

    model = Tiny()
    seeded(model.fc, rng, 0.5)
    images, imgs1 = batch(rng)
    imgs2 = torch.flip(imgs1, dims=[3])  # dataset.py: the flipped image
    labels = torch.tensor(rng.integers(0, CLASSES, BATCH))
    weights = state(model)
    lam = 5.0
    optimizer = torch.optim.Adam(
        model.parameters(), lr=0.0001, weight_decay=1e-4
    )
    # --- main.py lines 56-74 ---
    output, hm1 = model(imgs1)
    output_flip, hm2 = model(imgs2)
    grid_l = generate_flip_grid(SIZE, SIZE, "cpu")
    loss1 = nn.CrossEntropyLoss()(output, labels)
    flip_loss_l = ac_loss(hm1, hm2, grid_l, output)
    loss = loss1 + lam * flip_loss_l
    optimizer.zero_grad()
    loss.backward()
    gradients = grads(model)
    optimizer.step()
    out = {
        "images": images,
        "labels": labels.numpy().astype("int32"),
        "logits": output.detach().numpy(),
        "maps": hm1.detach().numpy(),
        "maps_flip": hm2.detach().numpy(),
        "loss_ce": float(loss1),
        "loss_flip": float(flip_loss_l),
        "loss": float(loss),
        "lam": lam,
        "lr": 1e-4,
        "weight_decay": 1e-4,
    }
    return with_step(out, weights, gradients, model)


def record_ada_df(repo, rng):
    """Ada-DF: its loss at an early and a late epoch; LD mining."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    repo = pathlib.Path(repo)
    ada = import_from(repo, "model")
    utils = import_from(repo, "utils")
    net = ada.ResNet18.__new__(ada.ResNet18)
    nn.Module.__init__(net)
    net.drop_rate = 0.0
    net.feature = nn.Sequential(tiny_conv(rng), nn.ReLU())
    for k in (1, 2):
        setattr(
            net,
            f"branch_{k}_feature",
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        )
        setattr(net, f"branch_{k}_classifier", nn.Linear(CHANNELS, CLASSES))
        setattr(
            net,
            f"alpha_{k}",
            nn.Sequential(nn.Linear(CHANNELS, 1), nn.Sigmoid()),
        )
        seeded(getattr(net, f"branch_{k}_classifier"), rng, 1.0)
        seeded(getattr(net, f"alpha_{k}"), rng, 0.5)
    images, imgs = batch(rng)
    labels = torch.tensor(rng.integers(0, CLASSES, BATCH))
    # train.py defaults: beta 3, threshold 0.7, min/max weight 0.2/1,
    # tops 0.7, margin_1 0.07, batch_size = the batch here.
    beta, tops_ratio, margin_1, max_w, min_w = 3, 0.7, 0.07, 1.0, 0.2
    ld = torch.tensor(rng.dirichlet(np.ones(CLASSES), CLASSES)).float()
    out = {"images": images, "labels": labels.numpy().astype("int32")}
    out["class_distribution"] = ld.numpy()
    criterion = nn.CrossEntropyLoss(reduction="none")
    criterion_kld = nn.KLDivLoss(reduction="none")
    for epoch in (2, 5):
        # --- train.py lines 145-152 ---
        if epoch <= beta:
            alpha_1 = math.exp(-((1 - epoch / beta) ** 2))
            alpha_2 = 1
        else:
            alpha_1 = 1
            alpha_2 = math.exp(-((1 - beta / epoch) ** 2))
        outputs_1, outputs_2, attention_weights = net(imgs)
        outputs_1 = outputs_1.detach().requires_grad_(True)
        outputs_2 = outputs_2.detach().requires_grad_(True)
        attention_weights = attention_weights.detach()
        results = {}
        for detach_target in (False, True):
            # --- lines 176-206 ---
            tops = int(BATCH * tops_ratio)
            aw = attention_weights
            _, top_idx = torch.topk(aw.squeeze(), tops)
            _, down_idx = torch.topk(aw.squeeze(), BATCH - tops, largest=False)
            diff = aw[down_idx].mean() - aw[top_idx].mean() + margin_1
            rr_loss = diff if diff > 0 else torch.zeros(())
            ce_each = criterion(outputs_1, labels)
            loss_ce = ce_each.mean()
            aw = aw.squeeze(1)
            aw = ((aw - aw.min()) / (aw.max() - aw.min())) * (
                max_w - min_w
            ) + min_w
            aw = aw.unsqueeze(1)
            targets = (1 - aw) * F.softmax(outputs_1, dim=1) + aw * ld[labels]
            if detach_target:  # ferzoo's documented stop-gradient
                targets = targets.detach()
            loss_kld = (
                criterion_kld(F.log_softmax(outputs_2, dim=1), targets).sum()
                / BATCH
            )
            loss = alpha_2 * loss_ce + alpha_1 * loss_kld + rr_loss
            g1, g2 = torch.autograd.grad(loss, [outputs_1, outputs_2])
            results[detach_target] = (g1, g2)
        e = f"epoch{epoch}/"
        out.update(
            {
                e + "epoch": epoch,
                e + "aux_logits": outputs_1.detach().numpy(),
                e + "logits": outputs_2.detach().numpy(),
                e + "attention": attention_weights.numpy()[:, 0],
                e + "weights": aw.numpy()[:, 0],
                e + "targets": targets.detach().numpy(),
                e + "ce_per_sample": ce_each.detach().numpy(),
                e + "loss_ce": float(loss_ce),
                e + "loss_kld": float(loss_kld),
                e + "loss_rr": float(rr_loss),
                e + "loss": float(loss),
                e + "alpha_1": alpha_1,
                e + "alpha_2": alpha_2,
                e + "grad_aux_logits": results[False][0].numpy(),
                e + "grad_aux_logits_detached": results[True][0].numpy(),
                e + "grad_logits": results[False][1].numpy(),
            }
        )
    # Epoch-end mining on a known input: `validate` stacks a dummy first
    # row (ones, label 1) before the outputs, which the mining drops.
    num = 40
    mined_logits = rng.normal(0, 1, (num, CLASSES))
    mined_labels = rng.integers(0, CLASSES - 1, num)  # the last: no sample
    for c in (1, 3):  # two stable classes
        mined_logits[mined_labels == c, c] += 4.0
    outputs_new = torch.cat(
        [torch.ones(1, CLASSES), torch.tensor(mined_logits).float()]
    )
    targets_new = torch.cat([torch.ones(1).long(), torch.tensor(mined_labels)])
    out["mining/logits"] = outputs_new.numpy()
    out["mining/labels"] = targets_new.numpy().astype("int32")
    for threshold in (0.6, 0.7):
        ld_new = utils.generate_adaptive_LD(
            outputs_new, targets_new, CLASSES, threshold, False, 1.2
        )
        out[f"mining/LD_{threshold}"] = ld_new.numpy()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scn", help="checkout of Self-Cure-Network")
    parser.add_argument("--eac", help="checkout of Erasing-Attention-...")
    parser.add_argument("--ada-df", help="checkout of Ada-DF")
    parser.add_argument("--output", default="tests/fixtures/official")
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(0)
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for name, repo, record, seed in (
        ("scn", args.scn, record_scn, 0),
        ("eac", args.eac, record_eac, 1),
        ("ada_df", args.ada_df, record_ada_df, 2),
    ):
        if not repo:
            continue
        arrays = record(repo, np.random.default_rng(seed))
        arrays["source_commit"] = np.array(git_commit(repo))
        arrays["torch_version"] = np.array(torch.__version__)
        np.savez_compressed(output / f"{name}.npz", **arrays)
        size = (output / f"{name}.npz").stat().st_size
        print(f"{name}: {len(arrays)} arrays, {size} bytes, {repo}")


if __name__ == "__main__":
    sys.exit(main())
