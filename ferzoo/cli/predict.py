import dataclasses
import sys

import click

from ferzoo.cli import options

EXIT_UNREADABLE = 5
EXIT_NO_FACE = 6


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=False, metavar="PATH...")
@click.option(
    "--model",
    default="ferzoo_fer2013",
    show_default=True,
    metavar="PRESET_OR_RUN_OR_EXPORT",
    help="A preset name or folder, a training output folder (its "
    "best.keras), a .keras file, a SavedModel folder, or an ONNX / LiteRT "
    "export folder (ferzoo-export --format onnx|litert).",
)
@click.option(
    "--runtime",
    type=click.Choice(["keras", "onnx", "litert"]),
    default=None,
    help="onnx / litert: run an exported model in ONNX Runtime / LiteRT, "
    "without loading TensorFlow or Keras (starts in about a second). "
    "Default: an export folder on its runtime, anything else in Keras.",
)
@click.option(
    "--detector",
    type=click.Choice(
        ["ssd-blazeface", "ssd", "ssd-upright", "blazeface", "haar", "none"]
    ),
    default="ssd-blazeface",
    show_default=True,
    help="Find faces with face-api's SSD MobileNet v1 face detector (ssd: "
    "upright and turned +-25 degrees, each also zoomed out 2x, boxes "
    "merged; ssd-upright: one upright pass, about 6x faster), the same "
    "on the image and its gray copy with MediaPipe's BlazeFace vetoing "
    "boxes only the gray passes see (ssd-blazeface; on an ONNX / LiteRT "
    "export it runs as ssd), BlazeFace alone (blazeface), OpenCV's Haar "
    "cascade (haar), or take each image as one face crop (none).",
)
@click.option(
    "--align/--no-align",
    default=None,
    help="Turn each face upright (eyes level) and frame it like FER2013's "
    "crops with face-api's 68-point landmark net. Default: on, except "
    "with --detector none.",
)
@click.option(
    "--margin",
    type=options.FiniteFloatRange(0, 2),
    default=0.0,
    show_default=True,
    help="Extra crop on each side of a found face, as a fraction of the "
    "box's width and height.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write predictions.csv, predictions.json and annotated copies of "
    "the images here.",
)
@click.option(
    "--cam",
    is_flag=True,
    help="Also write each face's class activation map of its predicted "
    "class as a PNG overlay (needs --output-dir).",
)
@click.option(
    "--camera",
    type=click.IntRange(0),
    default=None,
    metavar="INDEX",
    help="Read frames from this camera (0: the first webcam) instead of "
    "files; stop with Ctrl-C or --max-frames.",
)
@click.option(
    "--every",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Videos and cameras: classify every N-th frame.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(1),
    default=None,
    help="Videos and cameras: stop after this many frames read.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Faces per forward pass.",
)
@click.option(
    "--tta/--no-tta",
    "tta",
    default=None,
    help="Test-time flip: average each face's probabilities with its "
    "mirror image's (two forward passes). Default: the model's own "
    "setting (its preset's config, an export's metadata). An export made "
    "with --tta cannot turn it off.",
)
@options.backend_option
@options.json_option
@options.verbose_option
@options.handle_errors
def main(
    paths,
    model,
    runtime,
    detector,
    align,
    margin,
    output_dir,
    cam,
    camera,
    every,
    max_frames,
    batch_size,
    tta,
    backend,
    as_json,
    verbose,
):
    """Print the emotion of every face in photos, videos or a camera.

    PATH is an image file (jpg, png, bmp, webp) or a folder of them. Each
    face found gets a row: file, box (x, y, width, height in pixels),
    top emotion with its probability, and the whole distribution. Exit
    codes: 0 every file read and a face found in each; 5 a file could not
    be read (it is listed, the others are still done); 6 an image had no
    face; 3 the model could not be loaded, or it has no CAM for --cam.

    A video PATH (mp4, avi, mov, mkv, webm, ...) or --camera gives one row
    per face per sampled frame (--every N), with a face id kept while its
    box overlaps the previous sampled frame's; --output-dir gets
    predictions.csv, predictions.jsonl and annotated/<video>.mp4, written
    as frames come (memory stays flat). Exit code 6: a video without a
    face in any sampled frame.

    \b
    Examples:
      ferzoo-predict photo.jpg
      ferzoo-predict photos/ --output-dir predictions --cam
      ferzoo-predict crops/ --detector none --model runs/scn --json
      ferzoo-predict photo.jpg --model exported/onnx --runtime onnx
      ferzoo-predict photo.jpg --tta
      ferzoo-predict clip.mp4 --every 5 --output-dir out
      ferzoo-predict --camera 0 --every 10 --max-frames 300
    """
    if cam and not output_dir:
        raise click.UsageError("--cam writes PNG files: give --output-dir.")
    if cam and runtime in ("onnx", "litert"):
        raise click.UsageError(
            "--cam needs the model's feature maps: run it in Keras."
        )
    from ferzoo.predict.video import is_video

    videos = [p for p in paths if is_video(p)]
    if camera is None and not paths:
        raise click.UsageError(
            "give a PATH (photo, folder, video) or --camera."
        )
    if (camera is not None or videos) and len(videos) != len(paths):
        raise click.UsageError(
            "videos/--camera and photos go in separate runs. Received: "
            f"{len(videos)} video(s), {len(paths) - len(videos)} other PATH(s)"
            + (", --camera" if camera is not None else "")
        )
    if cam and (videos or camera is not None):
        raise click.UsageError("--cam is for photos, not videos.")
    options.set_backend(backend)
    from ferzoo import outputs

    run = _PredictRun(
        paths=tuple(paths),
        videos=tuple(videos),
        camera=camera,
        model=model,
        runtime=runtime,
        detector=detector,
        align=align,
        margin=margin,
        output_dir=output_dir,
        cam=cam,
        every=every,
        max_frames=max_frames,
        batch_size=batch_size,
        tta=tta,
        as_json=as_json,
    )

    # The output folder is checked (and locked) before anything is read.
    with outputs.owned(output_dir, "predict"):
        code = _run(run)
    sys.exit(code)


@dataclasses.dataclass(frozen=True)
class _PredictRun:
    """What one `ferzoo-predict` command asks for, checked by `main`."""

    paths: tuple
    videos: tuple
    camera: object
    model: str
    runtime: object
    detector: str
    align: object
    margin: float
    output_dir: object
    cam: bool
    every: int
    max_frames: object
    batch_size: int
    tta: object
    as_json: bool

    def face_options(self):
        """How faces are found, cropped and batched: photos and videos."""
        return {
            "detector": self.detector,
            "align": self.align,
            "margin": self.margin,
            "batch_size": self.batch_size,
        }


def _run(run):
    from ferzoo import predict as api
    from ferzoo.predict import report as reports

    predictor = api.load_predictor(
        run.model, runtime=run.runtime, test_time_flip=run.tta
    )
    for note in predictor.notes:
        click.echo(f"warning: {note}", err=True)
    if run.videos or run.camera is not None:
        return _run_videos(run, predictor)
    try:
        results = api.predict(
            list(run.paths), model=predictor, cam=run.cam, **run.face_options()
        )
    except api.CamUnsupportedError as e:
        raise options.DataOrPresetError(str(e)) from e
    for r in results:
        if r.error:
            click.echo(f"error: {r.source}: {r.error} (skipped)", err=True)
    report = reports.to_json(
        results,
        predictor,
        detector=run.detector,
        align=run.align if run.align is not None else run.detector != "none",
        margin=run.margin,
    )
    report["exit_code"] = exit_code(results)
    if run.output_dir:
        reports.write_outputs(results, report, run.output_dir, cam=run.cam)
    text = reports.format_table(results, predictor.class_names)
    if run.output_dir:
        text += f"\nwrote predictions.csv, predictions.json to {run.output_dir}"
    options.emit(report, run.as_json, text)
    return report["exit_code"]


def _run_videos(run, predictor):
    """Stream one line (or JSON line) per face per sampled frame; return
    the exit code."""
    import json

    from ferzoo.predict.video import run_videos

    as_json = run.as_json
    sources = [run.camera] if run.camera is not None else list(run.videos)
    names = predictor.class_names
    if not as_json:
        click.echo("  ".join(["source", "frame", "time_s", "id",
                              "box x,y,w,h", "emotion", *names]))  # fmt: skip

    def on_row(face):
        if as_json:
            click.echo(json.dumps(face.to_json()))
            return
        cells = [
            face.source,
            str(face.frame),
            f"{face.time:.2f}",
            str(face.face_id),
            ",".join(str(int(v)) for v in face.box),
            f"{face.top_class} {face.top_probability:.2f}",
            *(f"{p:.2f}" for p in face.probabilities),
        ]
        click.echo("  ".join(cells))

    summary = run_videos(
        sources,
        predictor,
        every=run.every,
        max_frames=run.max_frames,
        output_dir=run.output_dir,
        on_row=on_row,
        **run.face_options(),
    )
    code = 0
    for entry in summary["sources"]:
        if entry["error"]:
            click.echo(
                f"error: {entry['source']}: {entry['error']} (skipped)",
                err=True,
            )
            code = EXIT_UNREADABLE
        elif not entry["rows"] and code == 0:
            code = EXIT_NO_FACE
        click.echo(
            f"{entry['source']}: {entry['frames']} sampled frame(s), "
            f"{entry['rows']} face row(s), {entry['faces']} face id(s)",
            err=True,
        )
    if run.output_dir:
        click.echo(
            f"wrote predictions.csv, predictions.jsonl and annotated videos "
            f"to {run.output_dir}",
            err=True,
        )
    return code


def exit_code(results):
    """5 if a file could not be read, else 6 if an image had no face."""
    statuses = {r.status for r in results}
    if "error" in statuses:
        return EXIT_UNREADABLE
    return EXIT_NO_FACE if "no_face" in statuses else 0


if __name__ == "__main__":
    main()
