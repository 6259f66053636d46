"""The files an audit writes: the ranked table, the corrected label file,
contact sheets, thumbnails and the HTML page."""

import csv
import html
import math
import os
import pathlib
import re
import sys

import numpy as np

CSV_FILE = "label_issues.csv"
CORRECTED_FILE = "corrected_labels.txt"
HTML_FILE = "index.html"
CONFIG_FILE = "audit.json"
SKIPPED_FILE = "skipped.csv"
SHEET_COLUMNS = 8
SHEET_ROWS = 6

CSV_COLUMNS = [
    "rank",
    "path",
    "name",
    "given_label",
    "suggested_label",
    "issue_score",
    "label_quality",
    "method_score",
    "cleanlab_issue",
    "relabel",
    "method_relabel",
    "p_given",
    "p_suggested",
    "sample_id",
    "fold",
]


def table(info, probs, ranking, method_raw, method_relabel, fold):
    import pandas as pd

    names = np.asarray(info.class_names, dtype=object)
    labels = np.asarray(info.labels)
    suggested = ranking["suggested"]
    rows = np.arange(len(labels))
    columns = {
        "rank": ranking["rank"],
        "path": list(info.sources),
        "name": list(info.names),
        "given_label": names[labels],
        "suggested_label": names[suggested],
        "issue_score": ranking["issue_score"],
        "label_quality": ranking["label_quality"],
        "method_score": method_raw,
        "cleanlab_issue": ranking["cleanlab_issue"],
        "method_relabel": np.where(
            method_relabel >= 0, names[np.maximum(method_relabel, 0)], ""
        ),
        "p_given": probs[rows, labels],
        "p_suggested": probs[rows, suggested],
        "sample_id": rows,
        "fold": fold + 1,
    }
    if info.noise:
        columns["clean_label"] = names[np.asarray(info.clean_labels)]
        columns["flipped"] = np.asarray(info.noise_mask, bool)
    df = pd.DataFrame(columns)
    return df.iloc[ranking["order"]].reset_index(drop=True)


# --- Files ---------------------------------------------------------------
def corrected_labels(df, info):
    """Labels (class indices, sample order) after the audit's relabels."""
    index = {name: i for i, name in enumerate(info.class_names)}
    labels = np.asarray(info.labels).copy()
    change = df["relabel"].to_numpy()
    ids = df["sample_id"].to_numpy()[change]
    labels[ids] = [index[s] for s in df["suggested_label"].to_numpy()[change]]
    return labels


def write_corrected_labels(path, df, info):
    """Write the EAC-format file; None (with a reason) if impossible."""
    from ferzoo.data import write_noise_file
    from ferzoo.data.noise import rafdb_label_map

    try:
        rafdb_label_map(info.class_names)
    except ValueError:
        return (
            f"classes {list(info.class_names)} are not the 7 RAF-DB "
            "classes, which the EAC label format requires"
        )
    spaced = [n for n in info.names if any(c.isspace() for c in n)]
    if spaced:
        return (
            f"{len(spaced)} image name(s) contain whitespace, which the "
            f"'name label' format cannot hold (first: {spaced[0]!r})"
        )
    labels = corrected_labels(df, info)
    tmp = pathlib.Path(path).with_name(".tmp-" + pathlib.Path(path).name)
    write_noise_file(tmp, info.names, labels, info.class_names)
    os.replace(tmp, path)
    return None


def write_report(df, records, info, out, top, summary):
    """Write the CSV, corrected labels, sheets, thumbnails and HTML."""
    out = pathlib.Path(out)
    files = {}
    tmp = out / (".tmp-" + CSV_FILE)
    df[CSV_COLUMNS + [c for c in ("clean_label", "flipped") if c in df]].to_csv(
        tmp, index=False, float_format="%.6g"
    )
    os.replace(tmp, out / CSV_FILE)
    files["csv"] = CSV_FILE

    with open(out / SKIPPED_FILE, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        writer.writerows(info.skipped)
    files["skipped"] = SKIPPED_FILE

    reason = write_corrected_labels(out / CORRECTED_FILE, df, info)
    if reason is None:
        files["corrected_labels"] = CORRECTED_FILE
    else:
        print(f"[ferzoo-audit] no {CORRECTED_FILE}: {reason}.", file=sys.stderr)
        summary["corrected_labels_skipped"] = reason

    head = df.head(int(top))
    images = records.images[head["sample_id"].to_numpy()]
    for folder in ("sheets", "thumbs"):
        # The folder is ferzoo's (outputs.claim); remove only what an
        # earlier audit wrote there, by its names.
        (out / folder).mkdir(exist_ok=True)
        for old in (out / folder).glob("*.png"):
            if re.fullmatch(r"(sheet_)?\d+\.png", old.name):
                old.unlink()
    files["sheets"] = write_contact_sheets(head, images, out / "sheets")
    files["thumbs"] = write_thumbnails(head, images, out / "thumbs")
    write_html(out / HTML_FILE, head, files, summary)
    files["html"] = HTML_FILE
    return files


def caption(row):
    return (
        f"{row['given_label']} \u2192 {row['suggested_label']} "
        f"({row['issue_score']:.2f})"
    )


def write_contact_sheets(head, images, folder):
    """PNG grids of `images`, captioned; returns their relative paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_sheet = SHEET_COLUMNS * SHEET_ROWS
    paths = []
    for start in range(0, len(head), per_sheet):
        chunk = head.iloc[start : start + per_sheet]
        rows = math.ceil(len(chunk) / SHEET_COLUMNS)
        fig, axes = plt.subplots(
            rows,
            SHEET_COLUMNS,
            figsize=(SHEET_COLUMNS * 1.6, rows * 1.85),
            squeeze=False,
        )
        for ax in axes.flat:
            ax.axis("off")
        for i, (_, row) in enumerate(chunk.iterrows()):
            ax = axes.flat[i]
            ax.imshow(images[start + i], interpolation="nearest")
            ax.set_title(f"#{row['rank']}\n{caption(row)}", fontsize=7, pad=2)
        fig.tight_layout(pad=0.3)
        name = f"sheet_{start // per_sheet + 1:03d}.png"
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        paths.append(f"{folder.name}/{name}")
    return paths


def write_thumbnails(head, images, folder, size=96):
    from PIL import Image

    paths = []
    for (_, row), image in zip(head.iterrows(), images):
        name = f"{int(row['rank']):06d}.png"
        Image.fromarray(np.asarray(image, "uint8")).resize(
            (size, size), Image.NEAREST
        ).save(folder / name)
        paths.append(f"{folder.name}/{name}")
    return paths


def write_html(path, head, files, summary):
    """A self-contained page (relative image links, no server)."""
    esc = html.escape
    basis = "percentile rank of cleanlab's label quality"
    if summary.get("score_combined"):
        basis = (
            "mean percentile rank of cleanlab's label quality and the "
            f"method's clean score ({esc(summary['score'])})"
        )
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>ferzoo-audit: suspected label issues</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;font-size:13px}img.sheet{max-width:100%}"
        "tr.flag td:first-child{background:#fdd}</style>",
        "</head><body>",
        "<h1>Suspected label issues</h1>",
        f"<p>{summary['num_samples']} training images, "
        f"{summary['num_cleanlab_issues']} flagged by confident learning "
        f"(cleanlab, {esc(summary['probabilities'])} probabilities); "
        f"{summary['num_relabeled']} relabelled in "
        f'<a href="{CORRECTED_FILE}">{CORRECTED_FILE}</a>. '
        f'Full ranking: <a href="{CSV_FILE}">{CSV_FILE}</a>. '
        f"Captions read <i>given \u2192 suggested (issue score)</i>; "
        f"the issue score is 1 minus the {basis}.</p>",
    ]
    if summary.get("num_skipped"):
        lines.append(
            f"<p>{summary['num_skipped']} unreadable images were left out "
            f'(<a href="{SKIPPED_FILE}">{SKIPPED_FILE}</a>).</p>'
        )
    lines.append(f"<h2>Top {len(head)}</h2>")
    for sheet in files["sheets"]:
        lines.append(f'<p><img class="sheet" src="{esc(sheet)}" alt=""></p>')
    lines.append(
        "<table><tr><th>rank</th><th>image</th><th>path</th><th>given</th>"
        "<th>suggested</th><th>issue score</th><th>label quality</th>"
        "<th>method score</th><th>cleanlab</th></tr>"
    )
    for (_, row), thumb in zip(head.iterrows(), files["thumbs"]):
        flag = ' class="flag"' if row["cleanlab_issue"] else ""
        method = row["method_score"]
        method = "" if np.isnan(method) else f"{method:.3f}"
        lines.append(
            f"<tr{flag}><td>{row['rank']}</td>"
            f'<td><img src="{esc(thumb)}" width="64" height="64" alt=""></td>'
            f"<td>{esc(str(row['path']))}</td>"
            f"<td>{esc(str(row['given_label']))}</td>"
            f"<td>{esc(str(row['suggested_label']))}</td>"
            f"<td>{row['issue_score']:.3f}</td>"
            f"<td>{row['label_quality']:.3f}</td><td>{method}</td>"
            f"<td>{'flagged' if row['cleanlab_issue'] else ''}</td></tr>"
        )
    lines.append("</table></body></html>")
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
