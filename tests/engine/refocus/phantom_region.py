"""A small region of the phantom as a three-plane slide, shared by the tests of the computed
refocused slides (`RefocusedSlide`, `FocusMappedSlide`); fixtures in conftest.py."""
#: 2 × 2 blocks of the 512-px grid, the right and bottom ones partial.
SIZE = (700, 600)
