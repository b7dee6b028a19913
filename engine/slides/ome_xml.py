"""Parse the parts of OME-XML a slide needs: per image its size, dimension order, physical pixel
sizes (converted to µm) and the z of every plane (µm).

Only the standard library's ElementTree is used (fast, tolerant of vendor extensions); the
namespace of the schema version is ignored.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

#: Length units of OME (UnitsLength) in µm. "reference frame" is taken as µm.
UNIT_UM = {
    "pm": 1e-6, "Å": 1e-4, "nm": 1e-3, "µm": 1.0, "μm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4,
    "dm": 1e5, "m": 1e6, "reference frame": 1.0, "in": 25400.0,
}


@dataclass
class OmePlane:
    the_z: int
    the_c: int
    the_t: int
    position_z_um: float | None


@dataclass
class OmeImage:
    """One OME Image. Sizes in px / counts; physical sizes in µm (None when absent)."""

    name: str
    size_x: int
    size_y: int
    size_z: int
    size_c: int
    size_t: int
    dimension_order: str
    samples_per_pixel: int
    physical_size_x_um: float | None
    physical_size_y_um: float | None
    physical_size_z_um: float | None
    planes: list[OmePlane] = field(default_factory=list)

    @property
    def effective_size_c(self) -> int:
        """Channels stored as separate IFDs (RGB samples share one IFD)."""
        return max(1, self.size_c // max(1, self.samples_per_pixel))

    def ifd_index(self, z: int, c: int = 0, t: int = 0) -> int:
        """Index of the IFD holding plane (z, c, t) within the image, by DimensionOrder."""
        sizes = {"Z": self.size_z, "C": self.effective_size_c, "T": self.size_t}
        coords = {"Z": z, "C": c, "T": t}
        index, stride = 0, 1
        for axis in self.dimension_order[2:]:
            index += coords[axis] * stride
            stride *= sizes[axis]
        return index


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _length_um(elem: ET.Element, attr: str) -> float | None:
    value = elem.get(attr)
    if value is None:
        return None
    unit = elem.get(attr + "Unit", "µm")
    factor = UNIT_UM.get(unit)
    if factor is None:
        return None
    try:
        return float(value) * factor
    except ValueError:
        return None


def parse_ome_xml(xml: str) -> list[OmeImage]:
    """All Image elements of an OME-XML document, in document order.

    Raises ``ValueError`` on XML that does not parse."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"OME-XML does not parse: {exc}") from exc
    images = []
    for image in root:
        if _local(image.tag) != "Image":
            continue
        pixels = next((e for e in image if _local(e.tag) == "Pixels"), None)
        if pixels is None:
            continue
        channels = [e for e in pixels if _local(e.tag) == "Channel"]
        spp = int(channels[0].get("SamplesPerPixel", "1")) if channels else 1
        planes = []
        for e in pixels:
            if _local(e.tag) == "Plane":
                planes.append(OmePlane(int(e.get("TheZ", 0)), int(e.get("TheC", 0)),
                                       int(e.get("TheT", 0)), _length_um(e, "PositionZ")))
        images.append(OmeImage(
            name=image.get("Name", ""),
            size_x=int(pixels.get("SizeX", 0)), size_y=int(pixels.get("SizeY", 0)),
            size_z=int(pixels.get("SizeZ", 1)), size_c=int(pixels.get("SizeC", 1)),
            size_t=int(pixels.get("SizeT", 1)),
            dimension_order=pixels.get("DimensionOrder", "XYZCT"),
            samples_per_pixel=spp,
            physical_size_x_um=_length_um(pixels, "PhysicalSizeX"),
            physical_size_y_um=_length_um(pixels, "PhysicalSizeY"),
            physical_size_z_um=_length_um(pixels, "PhysicalSizeZ"),
            planes=planes,
        ))
    return images


def plane_z_um(image: OmeImage) -> tuple[list[float], bool]:
    """z (µm) of each TheZ index, and whether the values are known from the file.

    A single plane is at 0 (the slide convention), whatever its stage position.
    PositionZ of the Plane elements (TheC = TheT = 0) when every z has a distinct one;
    else PhysicalSizeZ × (index − middle), centred on the middle plane because the nominal
    focus of a bare z-stack is its middle; else 1 µm steps (returned as not known)."""
    n = max(1, image.size_z)
    if n == 1:
        return [0.0], True
    by_z: dict[int, float] = {}
    for p in image.planes:
        if p.the_c == 0 and p.the_t == 0 and p.position_z_um is not None and p.the_z < n:
            by_z.setdefault(p.the_z, p.position_z_um)
    if len(by_z) == n and len(set(by_z.values())) == n:
        return [by_z[z] for z in range(n)], True
    mid = (n - 1) / 2.0
    if image.physical_size_z_um:
        return [(z - mid) * image.physical_size_z_um for z in range(n)], True
    return [(z - mid) * 1.0 for z in range(n)], False
