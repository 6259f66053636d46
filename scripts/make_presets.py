"""Write the built-in preset folders under presets/ from their definitions.

Each module in scripts/preset_defs/ defines `PRESETS = {name: (build,
metadata)}`, where `build()` returns a ferzoo model and `metadata` is the
preset's description, paper, dataset, noise protocol and recipe. This
script writes presets/<name>/config.json and metadata.json (no weights:
ferzoo ships none).

Invocations:
    python scripts/make_presets.py            # write every preset
    python scripts/make_presets.py --check    # fail if presets/ is stale
    python scripts/make_presets.py --only scn_resnet18
"""

import importlib
import json
import pathlib
import pkgutil
import sys
import tempfile

import click

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def all_definitions():
    import preset_defs

    presets = {}
    for info in pkgutil.iter_modules(preset_defs.__path__):
        module = importlib.import_module(f"preset_defs.{info.name}")
        for name, value in module.PRESETS.items():
            if name in presets:
                raise click.ClickException(f"preset {name} defined twice")
            presets[name] = value
    return presets


def write_preset(name, build, metadata, folder):
    from ferzoo.presets import save_to_preset

    model = build()
    save_to_preset(model, folder, metadata, save_weights=False)
    meta_path = pathlib.Path(folder) / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("date_saved", None)  # keep the files stable across runs
    meta.pop("backend", None)
    meta.pop("keras_version", None)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


@click.command()
@click.option("--only", multiple=True, help="Write only these presets.")
@click.option("--check", is_flag=True, help="Fail if presets/ is stale.")
def main(only, check):
    """Write presets/<name>/{config,metadata}.json from preset_defs/."""
    definitions = all_definitions()
    stale = []
    for name, (build, metadata) in sorted(definitions.items()):
        if only and name not in only:
            continue
        target = ROOT / "presets" / name
        if check:
            with tempfile.TemporaryDirectory() as tmp:
                write_preset(name, build, metadata, tmp)
                for file in ("config.json", "metadata.json"):
                    new = (pathlib.Path(tmp) / file).read_text()
                    old = target / file
                    if not old.is_file() or old.read_text() != new:
                        stale.append(f"{name}/{file}")
        else:
            write_preset(name, build, metadata, target)
            click.echo(f"wrote presets/{name}")
    if stale:
        raise click.ClickException("stale presets: " + ", ".join(stale))


if __name__ == "__main__":
    main()
