"""`open_slide` chooses the backend from the content, and turns every kind of bad input into a
`SlideError` subclass whose message names the file."""
import os
import shutil
import time

import pytest

from engine.slides import (CorruptSlideError, SlideError, SlideNotFoundError, UnsupportedSlideError,
                           open_slide)
from engine.slides.dicom import DicomSlide
from engine.slides.ome_tiff import OmeTiffSlide
from engine.slides.openslide_backend import OpenSlideSlide
from tests import slide_files

EXPECTED_ERRORS = {
    "missing": (SlideNotFoundError, "no such file"),
    "zero_bytes": (CorruptSlideError, "empty"),
    "empty_directory": (UnsupportedSlideError, "no slide in it"),
    "text_as_svs": (UnsupportedSlideError, "looks like text"),
    "truncated_svs": (CorruptSlideError, "truncated"),
    "absurd_dimensions": (CorruptSlideError, "3000000000x3000000000"),
    "path_under_file": (SlideNotFoundError, "is a file, not a folder"),
    "symlink_loop": (SlideNotFoundError, "symbolic link loop"),
    "unreadable": (SlideNotFoundError, "permission denied"),
}


def _open_and_read(path):
    with open_slide(path) as slide:
        lv = slide.levels[0]
        slide.read_region(0, 0, 0, lv.width, lv.height)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_bad_input_gives_a_clear_error_naming_the_file(bad_corpus, name):
    if name not in bad_corpus:
        pytest.skip("running as root: a chmod 000 file is still readable, so the case cannot be made")
    error_type, reason = EXPECTED_ERRORS[name]
    path = bad_corpus[name]
    with pytest.raises(error_type) as info:
        open_slide(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert reason in message
    assert "\n" not in message


def test_every_bad_corpus_entry_fails_with_a_slide_error(bad_corpus):
    for name, path in bad_corpus.items():
        if name in slide_files.CORPUS_ENTRIES_THAT_OPEN:
            continue
        with pytest.raises(SlideError) as info:
            _open_and_read(path)
        assert str(path) in str(info.value), name


def test_corrupt_tile_data_fails_on_read_naming_the_file(bad_corpus):
    path = bad_corpus["corrupt_tile"]
    with open_slide(path) as slide:
        with pytest.raises(CorruptSlideError, match=str(path)):
            slide.read_region(0, 0, 0, 256, 256)


def test_absurd_dimensions_are_refused_before_any_allocation(bad_corpus):
    start = time.perf_counter()
    with pytest.raises(CorruptSlideError, match="limit"):
        open_slide(bad_corpus["absurd_dimensions"])
    # 3e9 x 3e9 RGB would be 27 EB; refusing takes no time at all (a loose bound, not a benchmark).
    assert time.perf_counter() - start < 5.0


def test_a_good_file_with_the_wrong_extension_still_opens(bad_corpus):
    with open_slide(bad_corpus["wrong_extension"]) as slide:
        assert isinstance(slide, OpenSlideSlide)
        assert slide.format == "aperio"


def test_content_not_name_decides(ome_zstack, dicom_zstack, tmp_path):
    ome_as_jpg = tmp_path / "really-ome.jpg"
    shutil.copyfile(ome_zstack[0], ome_as_jpg)
    with open_slide(ome_as_jpg) as slide:
        assert isinstance(slide, OmeTiffSlide)
        assert slide.planes_um == (-1.0, 0.0, 1.0)
    dicom_as_svs = tmp_path / "really-dicom.svs"
    shutil.copyfile(dicom_zstack[0] / "level_0.dcm", dicom_as_svs)
    with open_slide(dicom_as_svs) as slide:
        assert isinstance(slide, DicomSlide)


def test_a_folder_with_unrelated_files_is_unsupported(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(UnsupportedSlideError, match="folder of 1 files"):
        open_slide(tmp_path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod 000 does not stop root from reading")
def test_unreadable_file(tmp_path):
    path, _ = slide_files.write_svs_like(tmp_path / "locked.svs")
    path.chmod(0)
    with pytest.raises(SlideNotFoundError, match="permission denied"):
        open_slide(path)


def test_phantom_specs_go_to_the_phantom():
    try:
        from engine.phantom import PhantomSlide  # noqa: F401
    except ImportError:
        with pytest.raises(UnsupportedSlideError, match="phantom"):
            open_slide("phantom:")
        return
    with open_slide(None) as slide:
        assert slide.format == "phantom"
        assert slide.read_region(0, 0, 0, 32, 32).shape == (32, 32, 3)
