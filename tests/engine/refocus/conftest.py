import pytest

from tests.engine.refocus.phantom_crops import write_cache


@pytest.fixture(scope="session")
def refocus_checkpoints(tmp_path_factory):
    """A checkpoints folder whose crop caches (data/ and val/) are already rendered."""
    root = tmp_path_factory.mktemp("refocus-ck")
    write_cache(root / "data", 1_000_000)
    (root / "val").mkdir()
    (root / "val" / "2000000.npz").write_bytes((root / "data" / "1000000.npz").read_bytes())
    return root
