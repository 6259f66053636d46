import pathlib

import click

from ferzoo.cli import options

LAYOUT_CHOICES = ["auto", "resnet", "cadene_senet", "iresnet", "mobilefacenet"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Convert pretrained weights into ferzoo backbone presets.

    Each subcommand writes a preset folder (config.json, metadata.json
    with provenance, model.weights.h5) that
    `ferzoo.backbones.Backbone.from_preset(folder)` loads and
    `ferzoo-train --preset` can start from.
    """


@main.command("torch")
@click.argument(
    "checkpoint", type=click.Path(exists=True, dir_okay=False)
)  # fmt: skip
@click.option(
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Preset folder to write.",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUT_CHOICES),
    default="auto",
    show_default=True,
    help="Checkpoint layout; auto detects it from the keys.",
)
@click.option(
    "--key",
    default=None,
    metavar="PATH",
    help="Where the state dict sits in the checkpoint, e.g. state_dict "
    "('/' separates levels); by default state_dict, model_state_dict, "
    "model, net or the top level.",
)
@click.option(
    "--image-size",
    type=click.IntRange(1),
    default=None,
    help="Input height and width of the backbone; defaults to 224 for "
    "ResNets and 112 for IR and MobileFaceNet.",
)
@click.option("--description", default=None, help="Preset description.")
@click.option(
    "--source-url", default=None, help="Where the checkpoint came from."
)
@click.option(
    "--license", "license_", default=None, help="Licence of the weights."
)
@click.option(
    "--training-data",
    default=None,
    help="What the weights were trained on, e.g. MS-Celeb-1M.",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Let torch.load unpickle arbitrary objects (weights_only=False); "
    "only for files you trust.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier ferzoo-convert output (never a folder ferzoo "
    "did not write).",
)
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def torch_command(
    checkpoint,
    output,
    layout,
    key,
    image_size,
    description,
    source_url,
    license_,
    training_data,
    trust_pickle,
    overwrite,
    backend,
    as_json,
    verbose,
):
    """Convert a PyTorch checkpoint (.pth, .pth.tar, .pt or .npz).

    Layouts: torchvision / timm ResNet-18/34/50 and SE-ResNet-50
    (resnet), Cadene's se_resnet50 / timm's legacy_seresnet50
    (cadene_senet), insightface IR-50 / IR-SE-50 as in POSTER
    (iresnet), POSTER's MobileFaceNet (mobilefacenet). A `module.`
    prefix is stripped and the classifier head (fc, last_linear,
    output_layer, ...) is dropped and listed in metadata.json; any other
    unknown or missing key is an error that lists them. Reading .pth
    files needs torch (`pip install ferzoo[torch]`); a .npz of the state
    dict does not.

    \b
    Examples:
      ferzoo-convert torch resnet18_msceleb.pth --output presets/r18_msceleb \\
          --training-data MS-Celeb-1M --source-url https://github.com/...
      ferzoo-convert torch ir50.pth --output ir50_ms1m --image-size 112
      python -c "import ferzoo; \\
          b = ferzoo.backbones.Backbone.from_preset('ir50_ms1m')"
    """
    options.set_backend(backend)
    from ferzoo import outputs
    from ferzoo.convert import convert_checkpoint

    folder = pathlib.Path(output)
    metadata = {
        k: v
        for k, v in {
            "description": description,
            "source_url": source_url,
            "license": license_,
            "training_data": training_data,
        }.items()
        if v is not None
    }
    # A new or empty folder, or (with --overwrite) an earlier conversion;
    # never a folder ferzoo did not write.
    with outputs.owned(folder, "convert", overwrite=overwrite, replace=True):
        info = convert_checkpoint(
            checkpoint,
            folder,
            layout=None if layout == "auto" else layout,
            image_shape=(
                None if image_size is None else (image_size,) * 2 + (3,)
            ),
            key=key,
            metadata=metadata,
            trust_pickle=trust_pickle,
        )
    text = (
        f"wrote {info['preset_dir']}: {info['layout']} layout, "
        f"{info['num_tensors']} tensors, {info['parameter_count']:,} "
        f"parameters; dropped {len(info['dropped'])} head keys"
    )
    if verbose and info["dropped"]:
        text += ": " + ", ".join(info["dropped"])
    options.emit(info, as_json, text)


if __name__ == "__main__":
    main()
