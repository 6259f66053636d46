"""Command-line tools: ferzoo-train, ferzoo-eval, ferzoo-export."""
