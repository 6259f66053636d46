import os
import subprocess
import sys

import pytest

from tests.test_case import REPO


@pytest.mark.large
@pytest.mark.parametrize(
    "code",
    [
        # keras first imported by a ferzoo module: the registration hook
        # must not import ferzoo.models in the middle of backbone.py.
        "import ferzoo.backbones, ferzoo.models",
        "from ferzoo.convert import tfjs; import ferzoo.backbones.dlib_resnet",
        # Presets read files and configs without backbones or models.
        "import sys, ferzoo.presets; ferzoo.presets.list_presets(); "
        "assert not [m for m in sys.modules "
        "if m.startswith(('ferzoo.backbones', 'ferzoo.models'))]",
        # A backbone from a model preset: the backbones import no models,
        # yet the model's class is registered to load its weights.
        "import sys; from ferzoo.backbones import Backbone; "
        "assert 'ferzoo.models' not in sys.modules; "
        "Backbone.from_preset('ferzoo_fer2013', load_weights=True)",
        # keras first imported by the user: registration happens.
        "import ferzoo, keras; "
        "assert 'ferzoo>SCN' in keras.saving.get_custom_objects()",
    ],
)
def test_import_orders_in_a_fresh_process(code):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
