"""Which cells a run trains: the profile's grid, then the extra seeds."""

import click

from ferzoo_bench.cells import Cell


def strongest(cells, rate, top):
    """The `top` non-Baseline methods with the best seed-0 cell at `rate`."""
    ranked = sorted(
        (
            (c["test"]["best_on_val_accuracy"], c["method"])
            for c in cells
            if Cell.of(c) == Cell(c["method"], rate)
            and c["method"] != "baseline"
            and c["test"].get("best_on_val_accuracy") is not None
        ),
        reverse=True,
    )
    return [m for _, m in ranked[:top]]


def plan(spec, methods, noise_rates=(), only_methods=()):
    """Seed-0 cells of a grid: symmetric (highest first), then pair."""
    keys = [m.lower() for m in only_methods] or list(methods)
    rates = sorted(list(noise_rates) or spec["noise_rates"], reverse=True)
    # A profile may run some rates first (`cpu-full`: its 30% column).
    first = [r for r in spec.get("first_rates", []) if r in rates]
    rates = first + [r for r in rates if r not in first]
    todo = [Cell(m, r) for r in rates for m in keys]
    if not noise_rates:
        todo += [Cell(m, r, "pair") for r in spec["pair_rates"] for m in keys]
    return todo


def seed_plan(spec, cells, only_methods=()):
    """Extra-seed cells: Baseline and the strongest at the seed rates."""
    if len(spec["seeds"]) < 2 or not spec["seed_rates"]:
        return []
    top = strongest(cells, max(spec["seed_rates"]), spec["seed_top"])
    if len(top) < spec["seed_top"]:
        click.echo(
            "[benchmark] the strongest methods are chosen from the seed-0 "
            f"cells at {max(spec['seed_rates']):.0%} noise, which are not "
            "all finished; their extra seeds wait for a later run."
        )
    keys = ["baseline"] + top
    if only_methods:
        keys = [k for k in keys if k in {m.lower() for m in only_methods}]
    return [
        Cell(m, r, "symmetric", s)
        for s in spec["seeds"][1:]
        for r in sorted(spec["seed_rates"], reverse=True)
        for m in keys
    ]
