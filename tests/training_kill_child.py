"""Run `ferzoo.training.train` and SIGKILL itself at one write point.

`python tests/training_kill_child.py POINT EPOCH KWARGS_JSON`: the
in-process fault injection of the kill tests (`training_test.py`). The
process kills itself with SIGKILL (no cleanup, no flush, as a power cut
or the OOM killer would) when the checkpoint sequence reaches `POINT` at
epoch `EPOCH`; exit code -9 means it did.
"""

import json
import os
import signal
import sys

from ferzoo.training import checkpoints


def main(point, epoch, kwargs):
    def write_point(name, at):
        if name == point and at == epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoints._write_point = write_point
    from ferzoo import training

    training.train(**kwargs)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
