"""Which slides a QC batch covers (engine/qc/discover.py)."""
import pytest

from engine.qc.discover import NoSuchInput, discover_slides
from tests import slide_files


def test_a_folder_walk_finds_slide_files_and_slide_folders_once_each(qc_slides, tmp_path):
    found = discover_slides([qc_slides])
    names = [p.relative_to(qc_slides).as_posix() for p in found]
    # the plane set is one slide (a folder), not its PNG planes; order is sorted walk order
    assert names == ["nested/bracket", "scan.svs", "zstack.ome.tif"]
    assert all(p.is_absolute() for p in found)


def test_files_named_directly_are_slides_whatever_their_suffix_and_duplicates_go(qc_slides, tmp_path):
    note = tmp_path / "readme.txt"
    note.write_text("x")
    found = discover_slides([note, qc_slides / "scan.svs", qc_slides])
    assert found[0] == note and found[1] == qc_slides / "scan.svs"
    assert found.count(qc_slides / "scan.svs") == 1


def test_hidden_entries_plain_images_and_the_output_folder_are_left_out(tmp_path):
    slide_files.write_svs_like(tmp_path / "a.svs", size=(300, 300))
    (tmp_path / ".hidden").mkdir()
    slide_files.write_svs_like(tmp_path / ".hidden" / "b.svs", size=(300, 300))
    out = tmp_path / "qc-out"
    out.mkdir()
    slide_files.write_svs_like(out / "c.svs", size=(300, 300))
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert discover_slides([tmp_path], skip=[out]) == [tmp_path / "a.svs"]


def test_a_dicom_folder_is_one_slide(dicom_zstack, tmp_path):
    folder, _ = dicom_zstack
    assert discover_slides([folder]) == [folder.absolute()]


def test_a_missing_input_is_named(tmp_path):
    with pytest.raises(NoSuchInput, match="nope.svs: no such file"):
        discover_slides([tmp_path / "nope.svs"])
