"""Argument checks shared by ferzoo's layers and methods."""


def check_positive_int(**values):
    """Raise a `ValueError` naming the first argument not an int >= 1."""
    for arg, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{arg}` must be a positive int. Received: {arg}={value}"
            )


def check_non_negative(**values):
    """Raise a `ValueError` naming the first argument below 0."""
    for arg, value in values.items():
        if value < 0:
            raise ValueError(f"`{arg}` must be >= 0. Received: {arg}={value}")


def check_unit_interval(**values):
    """Raise a `ValueError` naming the first argument outside [0, 1]."""
    for arg, value in values.items():
        if not 0 <= value <= 1:
            raise ValueError(
                f"`{arg}` must be in [0, 1]. Received: {arg}={value}"
            )
