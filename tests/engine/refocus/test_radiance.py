"""The compact radiance a cache keeps: under 40 % of the float16 field's bytes (66 per model px
of the field for three planes), decoded straight from its int8 values to within 0.002 SSIM of the
float16 field — far less than the model's own error against the truth."""
import numpy as np
import pytest
import torch

from engine.refocus.image_metrics import as_tensor, ssim
from engine.refocus.radiance import CompactRadiance
from engine.refocus.refocused_slide import BLOCK, HALO, RadianceCache, RefocusedSlide, shipped_model
from tests.engine.refocus.phantom_region import SIZE


def test_a_compact_field_takes_under_40_percent_of_float16_and_decodes_like_it(base):
    compact, half = RadianceCache(dtype=torch.int8), RadianceCache(dtype=torch.float16)
    for z in (0.4, -1.7, 2.5):
        a = RefocusedSlide(base, z, cache=compact).read_region(0, 0, 0, *SIZE)
        b = RefocusedSlide(base, z, cache=half).read_region(0, 0, 0, *SIZE)
        assert float(ssim(as_tensor(a), as_tensor(b))) > 0.998, z
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 4
    field = compact.get(RefocusedSlide(base, 0.4, cache=compact).radiance_key(0, 0), lambda: None)
    assert isinstance(field, CompactRadiance)
    side = BLOCK + 2 * HALO                               # block (0, 0): a full block with its margin
    assert field.nbytes <= 67 * side * side
    assert compact.nbytes < 0.4 * half.nbytes
    assert RefocusedSlide(base, 0.4, cache=compact).block_radiance_bytes() == pytest.approx(field.nbytes, rel=0.01)


def test_the_dense_field_restores_the_keys_and_latents(base):
    model = shipped_model()
    planes = np.stack([base.read_region(0, 0, 0, 256, 256, i) for i in range(3)])
    x = torch.from_numpy(planes).permute(0, 3, 1, 2).float()[None] / 255.0
    with torch.no_grad():
        field = model.encode(x, torch.tensor([list(base.planes_um)]))
    compact = field.compact()
    assert compact.dense().latents[0].dtype == torch.int8     # decoded as stored, nothing dequantised
    dense = compact.float_field()
    for got, want in zip(dense.latents, field.latents):
        assert (got - want).abs().max() <= want.abs().amax() / 127 + 1e-6
    for got, want in zip(dense.keys, field.keys):
        cos = (got * want).sum(2)                        # unit keys: cosine similarity per bin, px
        assert float(cos.min()) > 0.99     # (int8 keys: ±0.5/127 a component)
    np.testing.assert_allclose(dense.images.numpy(), x.numpy(), atol=0.5 / 255 + 1e-6)
    assert dense.focus_um.shape == (1, 3, 1, 1)
    # Decoding the int8 field as stored equals decoding its dequantised float copy.
    with torch.no_grad():
        a = model.decode(compact.dense(), torch.tensor([0.6]))
        b = model.decode(dense, torch.tensor([0.6]))
    assert (a - b).abs().max() < 1e-4
