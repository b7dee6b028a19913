"""Shared fixtures: small real slide files, written once per test session (see
tests/slide_files.py for what each holds). Each fixture gives what its writer returns:
``ome_zstack``, ``dicom_zstack``, ``ndpi_zstack`` → (path, expected[level][plane]);
``plane_set`` → (folder, expected[plane]); ``bad_corpus`` → {name: path}."""
import pytest

from tests import slide_files


@pytest.fixture(scope="session")
def ome_zstack(tmp_path_factory):
    return slide_files.write_ome_zstack(tmp_path_factory.mktemp("ome") / "zstack.ome.tif")


@pytest.fixture(scope="session")
def dicom_zstack(tmp_path_factory):
    return slide_files.write_dicom_zstack(tmp_path_factory.mktemp("dicom") / "zstack")


@pytest.fixture(scope="session")
def ndpi_zstack(tmp_path_factory):
    return slide_files.write_ndpi_zstack(tmp_path_factory.mktemp("ndpi") / "zstack.ndpi")


@pytest.fixture(scope="session")
def plane_set(tmp_path_factory):
    return slide_files.write_plane_set(tmp_path_factory.mktemp("planeset") / "bracket")


@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory):
    return slide_files.make_bad_corpus(tmp_path_factory.mktemp("bad"))
