"""Peak memory and throughput of the streaming and in-memory data paths.

Writes N synthetic face PNGs (`ferzoo.data.synthetic`, saved at
`--file-size` px) into an image folder under a temporary directory, then,
for each path, a fresh process loads the train split at `--image-size`
and reads one epoch; it reports the peak RSS of that process, the load
time and the epoch's images per second.

    python scripts/measure_streaming.py --files 2000 20000
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, resource, sys, time
import ferzoo.data
root, stream, size = sys.argv[1], sys.argv[2] == "stream", int(sys.argv[3])
start = time.perf_counter()
ds, info = ferzoo.data.load_split(
    "imagefolder:" + root, "train", image_size=size, batch_size=64,
    stream=stream, seed=0,
)
loaded = time.perf_counter()
count = 0
for x, y in ds:
    count += int(y.shape[0])
done = time.perf_counter()
print(json.dumps({
    "samples": count,
    "load_s": round(loaded - start, 2),
    "epoch_img_per_s": round(count / (done - loaded), 1),
    "total_img_per_s": round(count / (done - start), 1),
    "peak_rss_mb": round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""


def write_folder(root, n, file_size):
    from PIL import Image

    from ferzoo.data.synthetic import SYNTHETIC_CLASS_NAMES
    from ferzoo.data.synthetic import make_synthetic_faces

    done = 0
    while done < n:
        chunk = min(2000, n - done)
        images, labels = make_synthetic_faces(
            chunk, image_size=file_size, seed=done
        )
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = os.path.join(root, SYNTHETIC_CLASS_NAMES[label])
            os.makedirs(folder, exist_ok=True)
            name = os.path.join(folder, f"{done + i:06d}.png")
            Image.fromarray(image).save(name)
        done += chunk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--file-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    rows = []
    for n in args.files:
        with tempfile.TemporaryDirectory(prefix="ferzoo-stream-") as root:
            start = time.perf_counter()
            write_folder(root, n, args.file_size)
            print(f"wrote {n} files in {time.perf_counter() - start:.0f} s")
            for mode in ("memory", "stream"):
                proc = subprocess.run(
                    [sys.executable, "-c", CHILD, root, mode]
                    + [str(args.image_size)],
                    capture_output=True,
                    text=True,
                    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                )
                if proc.returncode:
                    sys.exit(proc.stderr[-3000:])
                row = {"files": n, "path": mode}
                row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("| files | path | peak RSS (MB) | load (s) | epoch img/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['files']} | {r['path']} | {r['peak_rss_mb']} | "
            f"{r['load_s']} | {r['epoch_img_per_s']} |"
        )


if __name__ == "__main__":
    main()
