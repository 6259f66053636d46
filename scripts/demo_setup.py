"""Set up the browser demo (docs/demo/) and the npm packages it needs.

Installs the pinned npm packages (`NPM_PACKAGES`) with `npm install` into
an ignored folder (build/js/ by default; nothing is committed), copies
what the page loads into `DEMO/vendor/` (face-api's bundle, which holds
TF.js 4.22, TF.js's wasm binaries and face-api's SSD MobileNet v1 face
detector weights) and exports the model as TF.js into `DEMO/model/`
(`ferzoo-export --format tfjs`). Then serve the folder:

    python scripts/demo_setup.py                    # the shipped model
    python scripts/demo_setup.py --model runs/scn   # a training run
    cd docs/demo && python -m http.server 8000      # open localhost:8000

The tests (tests/deploy/) use `install_npm` and `build_demo` too.
"""

import functools
import http.server
import json
import pathlib
import shutil
import subprocess
import sys
import threading

import click

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NPM_DIR = ROOT / "build" / "js"
DEMO_DIR = ROOT / "docs" / "demo"
NPM_PACKAGES = {
    "@tensorflow/tfjs": "4.22.0",
    "@tensorflow/tfjs-backend-wasm": "4.22.0",
    "@vladmandic/face-api": "1.7.15",  # bundles TF.js 4.22.0
    "puppeteer-core": "25.16.0",
    "@sparticuz/chromium": "153.0.0",
}
DETECTOR_FILES = (
    "ssd_mobilenetv1_model-weights_manifest.json",
    "ssd_mobilenetv1_model.bin",
)
WASM_FILES = (
    "tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm-threaded-simd.wasm",
)


def node_available():
    return shutil.which("node") is not None and shutil.which("npm") is not None


def install_npm(prefix=NPM_DIR, packages=None):
    """`npm install` the pinned packages into `prefix` unless present.

    Returns the `node_modules` folder. Raises `RuntimeError` with npm's
    output when the install fails.
    """
    import fcntl

    packages = packages or NPM_PACKAGES
    prefix = pathlib.Path(prefix)
    modules = prefix / "node_modules"
    prefix.mkdir(parents=True, exist_ok=True)
    # One install at a time (pytest-xdist workers share the folder).
    with open(prefix / ".install-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install_missing(prefix, modules, packages)
    return modules


def _install_missing(prefix, modules, packages):
    missing = [
        f"{name}@{version}"
        for name, version in packages.items()
        if _installed_version(modules / name) != version
    ]
    if missing:
        if not (prefix / "package.json").exists():
            (prefix / "package.json").write_text('{"private": true}\n')
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--save-exact"]
            + missing,
            cwd=prefix,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"npm install {' '.join(missing)} failed in {prefix}:\n"
                f"{proc.stderr[-3000:]}"
            )


def _installed_version(package_dir):
    try:
        meta = json.loads((package_dir / "package.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return meta.get("version")


def build_demo(dest, node_modules, page_dir=DEMO_DIR):
    """Copy the page (if `dest` is not its folder) and its vendor files."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if dest.resolve() != pathlib.Path(page_dir).resolve():
        for name in ("index.html", "app.js", "style.css"):
            shutil.copy2(pathlib.Path(page_dir) / name, dest / name)
    vendor = dest / "vendor"
    (vendor / "models").mkdir(parents=True, exist_ok=True)
    faceapi = node_modules / "@vladmandic" / "face-api"
    shutil.copy2(faceapi / "dist" / "face-api.js", vendor / "face-api.js")
    for name in DETECTOR_FILES:
        shutil.copy2(faceapi / "model" / name, vendor / "models" / name)
    wasm = node_modules / "@tensorflow" / "tfjs-backend-wasm" / "dist"
    for name in WASM_FILES:
        shutil.copy2(wasm / name, vendor / name)
    return dest


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder):
    """Serve `folder` on 127.0.0.1 (a free port) in a daemon thread.

    Returns the server: its URL is
    `f"http://127.0.0.1:{server.server_address[1]}/"`; stop it with
    `server.shutdown()`.
    """
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@click.command()
@click.option(
    "--model",
    default="ferzoo_fer2013",
    show_default=True,
    help="Preset, training run or .keras file to export into DEMO/model.",
)
@click.option(
    "--demo-dir",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=DEMO_DIR,
    show_default=True,
)
@click.option(
    "--npm-dir",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=NPM_DIR,
    show_default=True,
    help="Where the npm packages are installed (ignored by git).",
)
@click.option("--skip-export", is_flag=True, help="Keep DEMO/model as it is.")
def main(model, demo_dir, npm_dir, skip_export):
    """Install the demo's npm packages, copy its vendor files, export."""
    if not node_available():
        raise click.ClickException("node and npm are needed (not found).")
    modules = install_npm(npm_dir)
    build_demo(demo_dir, modules)
    click.echo(f"vendor files in {demo_dir / 'vendor'}")
    if not skip_export:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ferzoo.cli.export",
                "--model",
                model,
                "--format",
                "tfjs",
                "--output",
                str(demo_dir / "model"),
                "--overwrite",  # replaces only an earlier ferzoo export
            ]
        )
        if proc.returncode != 0:
            raise click.ClickException("ferzoo-export failed.")
    click.echo(f"serve it: cd {demo_dir} && python -m http.server 8000")


if __name__ == "__main__":
    main()
