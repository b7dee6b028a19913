"""`Radiance`: the target-independent latent 3-D radiance field of one region of a focal stack.

It is what ``RefocusNet.encode`` returns and ``RefocusNet.decode`` consumes, so the viewer can
cache it per viewport and refocus any number of times without re-encoding. Latents are kept
at three scales s = 1, 2, 3 (1/2, 1/4 and 1/8 of the input's px); each is a tensor
(B, D, C_s, H_s, W_s): D depth bins × channels × rows × columns. ``z_um`` (B, D) gives the
focus (µm, same frame as the input planes' z) that each depth bin stands for. ``keys`` holds,
per scale, the unit-norm FSCA keys K_d (B, D, d_k, H_s, W_s) of Eq. 5.5: they depend on the
field only, so they are computed once with it instead of on every refocus. ``images`` (B, N, 3,
H, W) and ``focus_um`` (B, N, H, W) keep the input planes (in [0, 1], any float dtype) and
where each was focused (µm): the decoder refines the blend of the planes nearest the target.

`CompactRadiance` (``Radiance.compact()``) is the same field stored for a cache in 37 % of
float16's bytes (66 per model px of the field for 3 planes, 84 per px of a block with its
margin): latents as int8 with one scale per channel, the unit keys as int8 (×127), the input
planes as uint8, a uniform focus map as one number per plane, and no blurred planes (the decoder
blurs the blend instead, which is the same by linearity). ``dense()`` gives the `Radiance` to
decode without dequantising anything: the decoder pools the int8 values and applies the scales to
the pooled features and the similarities. The decoded image differs from the float16 field's by
far less than the model's own error (`tests/engine/refocus/test_radiance.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Radiance"]


@dataclass(frozen=True)
class Radiance:
    latents: tuple[torch.Tensor, ...]   # 3 × (B, D, C_s, H_s, W_s), finest first
    keys: tuple[torch.Tensor, ...]      # 3 (or 2: 1/4 and 1/8 px) × (B, D, d_k, H_s, W_s), unit norm along d_k
    z_um: torch.Tensor                  # (B, D) µm per depth bin
    size: tuple[int, int]               # (H, W) px of the encoded images
    images: torch.Tensor                # (B, N, 3, Hp, Wp) input planes in [0, 1], padded to ×8
    focus_um: torch.Tensor              # (B, N, Hp, Wp) µm, where each plane is in focus, or (B, N, 1, 1)
    #: A quantised field (from `CompactRadiance.dense`): int8 latents whose value is
    #: stored × scale (3 × (B, 1, C_s, 1, 1)), int8 keys whose value is stored × ``key_scale``.
    latent_scales: tuple | None = None
    key_scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "_blurred", {})
        if len(self.latents) != 3 or len(self.keys) not in (2, 3):
            raise ValueError(f"a Radiance has 3 scales, got {len(self.latents)} latents, {len(self.keys)} keys")
        b, d = self.z_um.shape
        for lat in (*self.latents, *self.keys):
            if lat.ndim != 5 or lat.shape[0] != b or lat.shape[1] != d:
                raise ValueError(f"latent of shape {tuple(lat.shape)} does not match z_um {(b, d)}")
        if self.images.ndim != 5 or self.images.shape[0] != b or self.focus_um.shape not in (
                self.images.shape[:2] + self.images.shape[3:], self.images.shape[:2] + (1, 1)):
            raise ValueError(f"images {tuple(self.images.shape)} and focus maps {tuple(self.focus_um.shape)} "
                             "do not match")

    def blurred_images(self, sigma_px: float) -> torch.Tensor:
        """The input planes blurred by a Gaussian of ``sigma_px`` (float32, computed once per σ:
        the decoder's detail operators on a uniform blend of the planes)."""
        if sigma_px not in self._blurred:
            from .baselines import gaussian_blur

            b, n, c, h, w = self.images.shape
            blurred = gaussian_blur(self.images.float().reshape(b * n, c, h, w), sigma_px)
            self._blurred[sigma_px] = blurred.view(b, n, c, h, w)
        return self._blurred[sigma_px]

    def has_blurred(self, sigmas) -> bool:
        """Whether the planes' blurs of every σ in ``sigmas`` are cached with the field."""
        return all(sg in self._blurred for sg in sigmas)

    def compact(self) -> "CompactRadiance":
        """The field stored compactly for a cache (see the module docstring)."""
        lat, scales = zip(*(_quantise(t.float()) for t in self.latents))
        keys = tuple((t.float() * 127.0).round_().clamp_(-127, 127).to(torch.int8) for t in self.keys)
        images = (self.images.float() * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        f = self.focus_um
        flat = f.flatten(-2)
        if bool((flat == flat[..., :1]).all()):
            focus = flat[..., :1].unsqueeze(-1).float().contiguous()
        else:
            focus = f.to(torch.float16)
        return CompactRadiance(lat, scales, keys, self.z_um, self.size, images, focus)

    @property
    def depth(self) -> int:
        return int(self.z_um.shape[1])

    @property
    def batch(self) -> int:
        return int(self.z_um.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by all tensors of the field, blurred planes included (for cache accounting)."""
        return sum(t.numel() * t.element_size()
                   for t in (*self.latents, *self.keys, self.z_um, self.images, self.focus_um,
                             *self._blurred.values()))

    def to(self, dtype: torch.dtype) -> "Radiance":
        """The same field with latents stored as ``dtype`` (e.g. float16 to halve a cache)."""
        if self.latent_scales is not None:
            raise ValueError("a quantised field keeps its int8 values: use CompactRadiance.float_field()")
        out = Radiance(tuple(t.to(dtype) for t in self.latents), tuple(t.to(dtype) for t in self.keys),
                       self.z_um, self.size, self.images.to(dtype), self.focus_um)
        out._blurred.update({s: b.to(dtype) for s, b in self._blurred.items()})
        return out

    def select(self, index: int) -> "Radiance":
        """The field of one batch element (kept as a batch of one)."""
        sl = slice(index, index + 1)
        out = Radiance(tuple(t[sl] for t in self.latents), tuple(t[sl] for t in self.keys), self.z_um[sl],
                       self.size, self.images[sl], self.focus_um[sl])
        out._blurred.update({s: b[sl] for s, b in self._blurred.items()})
        return out


def _quantise(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D, C, h, w) float -> int8 values and (B, 1, C, 1, 1) float32 scales (absmax / 127 per
    channel over depth and space: symmetric, zero stays zero)."""
    scale = t.abs().amax(dim=(1, 3, 4), keepdim=True).clamp_min(1e-12) / 127.0
    return (t / scale).round_().clamp_(-127, 127).to(torch.int8), scale.float()


@dataclass(frozen=True)
class CompactRadiance:
    """A `Radiance` stored for a cache: int8 latents with per-channel ``latent_scales``, int8 keys
    (unit vectors × 127), uint8 ``images``, ``focus_um`` (B, N, 1, 1) float32 when uniform (else
    float16 per pixel), no blurred planes. Not decoded as it is: ``dense()`` first."""

    latents: tuple[torch.Tensor, ...]        # 3 × int8 (B, D, C_s, H_s, W_s)
    latent_scales: tuple[torch.Tensor, ...]  # 3 × float32 (B, 1, C_s, 1, 1)
    keys: tuple[torch.Tensor, ...]           # 3 (or 2) × int8 (B, D, d_k, H_s, W_s), unit keys × 127
    z_um: torch.Tensor
    size: tuple[int, int]
    images: torch.Tensor                     # uint8 (B, N, 3, Hp, Wp)
    focus_um: torch.Tensor

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.latents, *self.latent_scales, *self.keys,
                                                          self.z_um, self.images, self.focus_um))

    @property
    def depth(self) -> int:
        return int(self.z_um.shape[1])

    def dense(self) -> Radiance:
        """The field to decode: latents and keys as stored (int8; the decoder folds their scales
        into the pooled features and the similarities), the planes as float in [0, 1] (a
        transient copy)."""
        return Radiance(self.latents, self.keys, self.z_um, self.size, self.images.float() * (1.0 / 255.0),
                        self.focus_um.float(), latent_scales=self.latent_scales, key_scale=1.0 / 127.0)

    def float_field(self, dtype: torch.dtype = torch.float32) -> Radiance:
        """The field with latents and keys dequantised to ``dtype`` (for tests and inspection)."""
        lat = tuple(q.to(dtype) * sc.to(dtype) for q, sc in zip(self.latents, self.latent_scales))
        keys = tuple(k.to(dtype) * (1.0 / 127.0) for k in self.keys)
        return Radiance(lat, keys, self.z_um, self.size, self.images.to(dtype) * (1.0 / 255.0), self.focus_um.float())
