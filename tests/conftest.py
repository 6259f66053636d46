import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption(
        "--run_large", action="store_true", help="run `large` tests"
    )
    parser.addoption(
        "--run_extra_large",
        action="store_true",
        help="run `extra_large` tests (real data from FERZOO_DATA_DIR)",
    )


def pytest_collection_modifyitems(config, items):
    run_large = config.getoption("--run_large")
    run_xl = config.getoption("--run_extra_large")
    skip_large = pytest.mark.skip(reason="needs --run_large")
    skip_xl = pytest.mark.skip(reason="needs --run_extra_large")
    for item in items:
        if "extra_large" in item.keywords and not run_xl:
            item.add_marker(skip_xl)
        elif "large" in item.keywords and not (run_large or run_xl):
            item.add_marker(skip_large)


@pytest.fixture(autouse=True)
def _clear_session():
    import keras

    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
