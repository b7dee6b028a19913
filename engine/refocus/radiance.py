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
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Radiance"]


@dataclass(frozen=True)
class Radiance:
    latents: tuple[torch.Tensor, ...]   # 3 × (B, D, C_s, H_s, W_s), finest first
    keys: tuple[torch.Tensor, ...]      # 3 × (B, D, d_k, H_s, W_s), unit norm along d_k
    z_um: torch.Tensor                  # (B, D) µm per depth bin
    size: tuple[int, int]               # (H, W) px of the encoded images
    images: torch.Tensor                # (B, N, 3, Hp, Wp) input planes in [0, 1], padded to ×8
    focus_um: torch.Tensor              # (B, N, Hp, Wp) µm, where each plane is in focus

    def __post_init__(self):
        object.__setattr__(self, "_blurred", {})
        if len(self.latents) != 3 or len(self.keys) != 3:
            raise ValueError(f"a Radiance has 3 scales, got {len(self.latents)} latents, {len(self.keys)} keys")
        b, d = self.z_um.shape
        for lat in (*self.latents, *self.keys):
            if lat.ndim != 5 or lat.shape[0] != b or lat.shape[1] != d:
                raise ValueError(f"latent of shape {tuple(lat.shape)} does not match z_um {(b, d)}")
        if self.images.ndim != 5 or self.images.shape[0] != b or self.focus_um.shape != (
                self.images.shape[:2] + self.images.shape[3:]):
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
