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
