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
