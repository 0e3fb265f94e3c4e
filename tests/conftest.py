import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The upstream mirror named by BENCHMARK_MIRROR (CI points it at ../shared/mirror); skip if unset."""
    value = os.environ.get("BENCHMARK_MIRROR")
    if not value or not Path(value).is_dir():
        pytest.skip("BENCHMARK_MIRROR is not set to a mirror directory")
    return Path(value)


@pytest.fixture(scope="session")
def astronaut():
    """scikit-image's astronaut photo, uint8 (512, 512, 3)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    learned coding runs on one thread, and the context models' bitstreams depend on the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def params_file(tmp_path):
    """``params_file(mutate, name="params.yaml")``: the project's params.yaml, changed by
    ``mutate(dict)`` (in place), written into ``tmp_path``; returns its path."""
    from ruamel.yaml import YAML

    from benchmark.config import read_params

    root = Path(__file__).resolve().parents[1]

    def make(mutate=None, name="params.yaml"):
        params = read_params(root / "params.yaml")
        if mutate is not None:
            mutate(params)
        path = tmp_path / name
        with open(path, "w") as f:
            YAML(typ="safe", pure=True).dump(params, f)
        return path

    return make


@pytest.fixture(scope="module")
def base():
    """The project's params.yaml as a plain mapping (``benchmark.config.read_params``), to mutate
    with ``helpers.build_with``."""
    from benchmark.config import read_params

    return read_params(Path(__file__).resolve().parents[1] / "params.yaml")
