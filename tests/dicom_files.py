"""DICOM WSI writer for tests (re-exported by tests/slide_files.py): a VL Whole Slide Microscopy
Image series with several focal planes, written with pydicom only."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tests.slide_files import DEFAULT_PLANES_UM, decimate_pyramid, textured_plane


def _dicom_level_dataset(uids: dict, level: int, img_planes: list[np.ndarray],
                         planes_um: Sequence[float], tile: int, mpp_um: float,
                         sparse: bool):
    """One VL Whole Slide Microscopy Image instance (uncompressed, Explicit VR Little Endian)
    holding one pyramid level of every focal plane."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    wsi_sop = "1.2.840.10008.5.1.4.1.1.77.1.6"
    height, width = img_planes[0].shape[:2]
    nx, ny = -(-width // tile), -(-height // tile)
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = wsi_sop
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = wsi_sop
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.DimensionOrganizationUID = uids["dimension"]
    ds.Modality = "SM"
    ds.PatientName = "Phantom^Test"
    ds.PatientID = "FF-0001"
    ds.ContainerIdentifier = "FF-SLIDE-1"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = level + 1
    ds.Manufacturer = "FineFocus tests"
    ds.ImageType = (["ORIGINAL", "PRIMARY", "VOLUME", "NONE"] if level == 0
                    else ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"])
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.Rows = tile
    ds.Columns = tile
    ds.TotalPixelMatrixColumns = width
    ds.TotalPixelMatrixRows = height
    ds.TotalPixelMatrixFocalPlanes = len(planes_um)
    ds.NumberOfOpticalPaths = 1
    ds.NumberOfFrames = nx * ny * len(planes_um)
    ds.DimensionOrganizationType = "TILED_SPARSE" if sparse else "TILED_FULL"
    ds.ImagedVolumeWidth = width * mpp_um / 1000.0
    ds.ImagedVolumeHeight = height * mpp_um / 1000.0
    ds.ImagedVolumeDepth = 0.004
    spacing_mm = mpp_um / 1000.0
    measures = Dataset()
    measures.PixelSpacing = [spacing_mm, spacing_mm]
    measures.SliceThickness = 0.004
    if not sparse and len(planes_um) > 1:
        measures.SpacingBetweenSlices = float(planes_um[1] - planes_um[0]) / 1000.0
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([measures])
    frame_type = Dataset()
    frame_type.FrameType = list(ds.ImageType)
    shared.WholeSlideMicroscopyImageFrameTypeSequence = DicomSequence([frame_type])
    optical = Dataset()
    optical.OpticalPathIdentifier = "0"
    optical_ref = Dataset()
    optical_ref.OpticalPathIdentifier = "0"
    shared.OpticalPathIdentificationSequence = DicomSequence([optical_ref])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    illum = Dataset()
    illum.CodeValue, illum.CodingSchemeDesignator, illum.CodeMeaning = "111744", "DCM", "Brightfield illumination"
    optical.IlluminationTypeCodeSequence = DicomSequence([illum])
    color = Dataset()
    color.CodeValue, color.CodingSchemeDesignator, color.CodeMeaning = "414298005", "SCT", "Full Spectrum"
    optical.IlluminationColorCodeSequence = DicomSequence([color])
    ds.OpticalPathSequence = DicomSequence([optical])
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = 20.0
    origin.YOffsetInSlideCoordinateSystem = 40.0
    if not sparse:
        origin.ZOffsetInSlideCoordinateSystem = float(planes_um[0])
    ds.TotalPixelMatrixOriginSequence = DicomSequence([origin])
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    ds.SpecimenLabelInImage = "NO"
    ds.BurnedInAnnotation = "NO"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    ds.VolumetricProperties = "VOLUME"

    frames, per_frame = [], []
    for zi, img in enumerate(img_planes):
        padded = np.full((ny * tile, nx * tile, 3), 255, np.uint8)
        padded[:height, :width] = img
        for ty in range(ny):
            for tx in range(nx):
                frames.append(padded[ty * tile:(ty + 1) * tile, tx * tile:(tx + 1) * tile].tobytes())
                if sparse:
                    pos = Dataset()
                    pos.ColumnPositionInTotalImagePixelMatrix = tx * tile + 1
                    pos.RowPositionInTotalImagePixelMatrix = ty * tile + 1
                    pos.XOffsetInSlideCoordinateSystem = 20.0 + ty * tile * spacing_mm
                    pos.YOffsetInSlideCoordinateSystem = 40.0 + tx * tile * spacing_mm
                    pos.ZOffsetInSlideCoordinateSystem = float(planes_um[zi])
                    item = Dataset()
                    item.PlanePositionSlideSequence = DicomSequence([pos])
                    per_frame.append(item)
    if sparse:
        ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = b"".join(frames)
    return ds


def write_dicom_zstack(folder, planes_um: Sequence[float] = DEFAULT_PLANES_UM,
                       size: tuple[int, int] = (1024, 768), mpp: float = 0.25, tile: int = 256,
                       n_levels: int = 3, sparse: bool | None = None):
    """A DICOM VL Whole Slide Microscopy Image series with several focal planes, written with
    pydicom: one uncompressed instance per pyramid level (``level_<k>.dcm`` in ``folder``), all
    planes in each. Equally spaced planes are written TILED_FULL (TotalPixelMatrixFocalPlanes,
    SpacingBetweenSlices, first z in the origin); others TILED_SPARSE with a
    PlanePositionSlideSequence (ZOffsetInSlideCoordinateSystem, µm) per frame.

    Returns ``(folder, expected)`` with ``expected[level][plane]`` exact pixels, planes in the
    order of ``planes_um`` (give them ascending)."""
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    zs = [float(z) for z in planes_um]
    if sparse is None:
        steps = np.diff(zs)
        sparse = len(zs) > 1 and not np.allclose(steps, steps[0])
    width, height = size
    planes = [textured_plane(width, height, i, seed=21) for i in range(len(zs))]
    pyramids = [decimate_pyramid(p, n_levels) for p in planes]
    expected = [[pyr[k] for pyr in pyramids] for k in range(n_levels)]
    uids = {k: generate_uid() for k in ("study", "series", "frame", "dimension")}
    for k in range(n_levels):
        ds = _dicom_level_dataset(uids, k, expected[k], zs, tile, mpp * 2 ** k, sparse)
        ds.save_as(folder / f"level_{k}.dcm", enforce_file_format=True)
    return folder, expected
