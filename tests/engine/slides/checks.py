"""Checks every slide backend must pass, shared by the backend tests."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def full_level(slide, level: int, plane: int = 0) -> np.ndarray:
    lv = slide.levels[level]
    return slide.read_region(level, 0, 0, lv.width, lv.height, plane)


def assert_round_trip(slide, expected) -> None:
    """``expected[level][plane]`` equals every level and plane of ``slide`` exactly."""
    assert slide.level_count == len(expected)
    for level, planes in enumerate(expected):
        assert slide.plane_count == len(planes)
        for plane, want in enumerate(planes):
            got = full_level(slide, level, plane)
            assert got.dtype == np.uint8 and got.shape == want.shape, (level, plane)
            assert np.array_equal(got, want), f"level {level} plane {plane} differs"


def assert_edge_reads_are_white_outside(slide, plane: int = 0) -> None:
    """A region straddling the bottom-right corner holds the slide's pixels inside and
    white outside; one straddling the top-left (negative x, y) too."""
    W, H = slide.dimensions
    inside = slide.read_region(0, W - 40, H - 30, 40, 30, plane)
    region = slide.read_region(0, W - 40, H - 30, 100, 80, plane)
    assert np.array_equal(region[:30, :40], inside)
    assert (region[30:] == 255).all() and (region[:, 40:] == 255).all()
    corner = slide.read_region(0, -16, -8, 48, 40, plane)
    assert (corner[:8] == 255).all() and (corner[:, :16] == 255).all()
    assert np.array_equal(corner[8:, 16:], slide.read_region(0, 0, 0, 32, 32, plane))


def assert_threaded_reads_match(slide, n_regions: int = 48, size: int = 200, seed: int = 0) -> None:
    """Random regions on every level and plane, read from 4 threads at once, equal the same
    regions read one after the other."""
    rng = np.random.default_rng(seed)
    W, H = slide.dimensions
    jobs = []
    for _ in range(n_regions):
        level = int(rng.integers(0, slide.level_count))
        plane = int(rng.integers(0, slide.plane_count))
        jobs.append((level, int(rng.integers(0, W)), int(rng.integers(0, H)), size, size, plane))
    serial = [slide.read_region(*job) for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda job: slide.read_region(*job), jobs))
    for job, a, b in zip(jobs, serial, parallel):
        assert np.array_equal(a, b), job
