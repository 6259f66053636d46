"""The benchmark harness behind `scripts/benchmark.py`, one job a module.

- `profiles`: what each profile trains, pair mappings, data, presets.
- `grid`: which cells a run trains (seed 0 first, then extra seeds).
- `cells`: one cell: its name, signature, training, caching and JSON.
- `callbacks`: epoch times, time budget, training-set fit (memorisation).
- `sections`, `targets`, `plots`, `report`: the page from the cells.
- `peers`: reference models trained elsewhere, on the same test split.
- `speed`: training throughput against PyTorch.
- `machine`, `fmt`: machine description, number formats.
"""
