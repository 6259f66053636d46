"""Seeds derived from a run's seed (shared by training and the data path)."""

import numpy as np


def epoch_seed(seed, epoch):
    """The seed of epoch `epoch` of a run seeded `seed` (a function of both)."""
    return int(
        np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]
    )
