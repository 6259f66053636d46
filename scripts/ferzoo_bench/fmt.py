"""Number formats and labels shared by the page's sections."""


def pct(value):
    return "–" if value is None else f"{100 * value:.1f}"


def num(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def display(key, methods):
    """The class name of a method key (the key itself if unknown)."""
    cls = methods.get(key)
    return cls.__name__ if cls is not None else key


def column_label(column, short=False):
    """`30% noise` (symmetric) or `30% pair`; short: `30%`, `30% pair`."""
    noise_type, rate = column
    if noise_type == "symmetric":
        return f"{rate:.0%}" if short else f"{rate:.0%} noise"
    return f"{rate:.0%} {noise_type}"


def points(gap, spread):
    """A gap (signed) and a spread, both in points, at one decimal unless
    that would print them equal (`+0.6 points ... (0.6)`): then two.
    """
    digits = 1
    if gap is not None and spread is not None:
        if f"{abs(100 * gap):.1f}" == f"{100 * spread:.1f}":
            digits = 2
    return f"{100 * gap:+.{digits}f}", f"{100 * spread:.{digits}f}"
