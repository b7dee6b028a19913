import pytest
import torch

from tests.engine.refocus.phantom_crops import write_cache
from tests.engine.refocus.phantom_region import SIZE


@pytest.fixture(scope="session")
def refocus_checkpoints(tmp_path_factory):
    """A checkpoints folder whose crop caches (data/ and val/) are already rendered."""
    root = tmp_path_factory.mktemp("refocus-ck")
    write_cache(root / "data", 1_000_000)
    (root / "val").mkdir()
    (root / "val" / "2000000.npz").write_bytes((root / "data" / "1000000.npz").read_bytes())
    return root


@pytest.fixture(scope="module")
def phantom():
    from engine.phantom import PhantomSlide

    return PhantomSlide(seed=5, size=(2048, 2048), planes=3)


@pytest.fixture(scope="module")
def base(phantom):
    """The phantom's three captured planes (−1, 0, +1 µm) of a 700 × 600 px region."""
    from engine.slides.array import ArraySlide

    planes = [phantom.read_region(0, 0, 0, *SIZE, i) for i in range(3)]
    return ArraySlide(planes, planes_um=list(phantom.planes_um), mpp=(0.25, 0.25))


@pytest.fixture(scope="module")
def cache():
    """A radiance cache of the test module's own (float32: exact comparisons)."""
    from engine.refocus.refocused_slide import RadianceCache

    return RadianceCache(dtype=torch.float32)
