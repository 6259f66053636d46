"""PNG plots of the page: accuracy against noise, ROC curves."""

import pathlib

from ferzoo_bench.fmt import display


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _accuracy_axes(ax, by, keys, methods, columns):
    """Best-on-val (solid) and last-5 (dashed) per method; pair: stars."""
    rates = [r for t, r in columns if t == "symmetric"]
    pairs = [r for t, r in columns if t == "pair"]
    for key in keys:
        points = [
            (r, by[(key, ("symmetric", r))])
            for r in rates
            if (key, ("symmetric", r)) in by
        ]
        if not points:
            continue
        xs = [100 * r for r, _ in points]
        best = [100 * c["test"]["best_on_val_accuracy"] for _, c in points]
        last = [100 * c["test"]["last5_mean_accuracy"] for _, c in points]
        (line,) = ax.plot(xs, best, "o-", label=display(key, methods))
        ax.plot(xs, last, "x--", color=line.get_color(), alpha=0.6)
        for r in pairs:
            c = by.get((key, ("pair", r)))
            if c is not None:
                ax.plot(
                    [100 * r],
                    [100 * c["test"]["best_on_val_accuracy"]],
                    "*",
                    markersize=11,
                    color=line.get_color(),
                )


def make_plots(profile, cells, keys, methods, columns, assets):
    """Accuracy-vs-noise and (at 30% or the highest rate) ROC curves."""
    from ferzoo_bench.cells import Cell

    plt = _pyplot()
    by = {(c["method"], Cell.of(c).column): c for c in cells}
    rates = [r for t, r in columns if t == "symmetric"]
    out = []
    fig, ax = plt.subplots(figsize=(6, 4))
    _accuracy_axes(ax, by, keys, methods, columns)
    ax.set_xlabel("symmetric label noise (%)")
    ax.set_ylabel("test accuracy (%)")
    title = (
        f"FER2013 PrivateTest, {profile} profile\n"
        "(solid: best-on-val, dashed: mean of last 5 epochs)"
    )
    if any(c[0] == "pair" for _, c in by):
        title = title[:-1] + "; star: pair noise)"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = pathlib.Path(assets) / f"{profile}-accuracy-vs-noise.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    out.append(("test accuracy vs noise rate", path))

    rate = 0.3 if 0.3 in rates else max(rates)
    curves = [
        (key, by[(key, ("symmetric", rate))]["noise_detection"])
        for key in keys
        if (key, ("symmetric", rate)) in by
        and (by[(key, ("symmetric", rate))].get("noise_detection") or {}).get(
            "roc_curve"
        )
    ]
    if rate > 0 and curves:
        fig, ax = plt.subplots(figsize=(5, 5))
        for key, nd in curves:
            ax.plot(
                nd["roc_curve"]["fpr"],
                nd["roc_curve"]["tpr"],
                label=f"{display(key, methods)} (AUC {nd['roc_auc']:.3f})",
            )
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("false positive rate (flipped scored as clean)")
        ax.set_ylabel("true positive rate (clean scored as clean)")
        ax.set_title(f"Noise detection at {rate:.0%} noise ({profile})")
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = (
            pathlib.Path(assets) / f"{profile}-roc-noise{int(rate * 100)}.png"
        )
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append((f"noise-detection ROC curves at {rate:.0%} noise", path))
    return out


def regimes_plot(panels, methods, assets, name="regimes-accuracy-vs-noise"):
    """One accuracy-vs-noise panel per regime, on a shared accuracy axis.

    Args:
        panels: list of `(title, by, keys, columns)`, `by` keyed by
            `(method, column)` as in `sections.grid`.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 4), sharey=True
    )
    axes = axes if len(panels) > 1 else [axes]
    for ax, (title, by, keys, columns) in zip(axes, panels):
        _accuracy_axes(ax, by, keys, methods, columns)
        if not by:
            ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("symmetric label noise (%); star: pair noise")
        ax.grid(alpha=0.3)
        if by:
            ax.legend(fontsize=7)
    axes[0].set_ylabel("test accuracy (%), best-on-val solid")
    fig.tight_layout()
    path = pathlib.Path(assets) / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
