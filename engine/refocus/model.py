"""`RefocusNet`: the virtual refocusing model, with a clean cache boundary.

    field = net.encode(stack, focus_maps)      # target-independent: cache it per region
    image = net.decode(field, target_map)      # cheap: run on every turn of the focus knob

``stack`` is (B, N, 3, H, W) float in [0, 1] (or uint8 (N, H, W, 3) via ``encode_arrays``),
N = 1..16 planes at any z. ``focus_maps`` gives where each plane is in focus, in µm: (B, N, H, W)
per pixel or (B, N) nominal plane z. The field's D depth bins are placed every
``bin_step_um`` around the middle of the input planes unless ``z_bins`` (B, D) is given (the
consistency loss passes the same bins to two disjoint subsets). Any H, W: inputs are padded
(reflect) to a multiple of 8 and outputs cropped back.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .decoder import DETAIL_SIGMAS_PX, POOL_MODES, RefocusDecoder
from .encoder import RadianceEncoder
from .radiance import Radiance

__all__ = ["RefocusNet", "MAX_PLANES"]

MAX_PLANES = 16


class RefocusNet(nn.Module):
    def __init__(self, depth: int = 8, channels: tuple[int, int, int] = (12, 16, 32),
                 bin_step_um: float = 0.75, pool: str = "fsca", image_attention: bool = False,
                 fine_keys: bool = True):
        """``fine_keys``: the field carries FSCA keys at all three scales (True, the first shipped
        model) or only at 1/4 and 1/8 px (False): the finest scale then pools with the 1/4-px
        attention upsampled 2×, which saves 8 bytes per px of the field (a third of the compact
        field) and a third of a turn's pooling."""
        super().__init__()
        if pool not in POOL_MODES:
            raise ValueError(f"pool must be one of {POOL_MODES}, got {pool!r}")
        self.config = {"depth": int(depth), "channels": [int(c) for c in channels],
                       "bin_step_um": float(bin_step_um), "pool": pool, "image_attention": bool(image_attention),
                       "fine_keys": bool(fine_keys)}
        self.encoder = RadianceEncoder(tuple(channels), image_attention=image_attention, fine_keys=fine_keys)
        self.decoder = RefocusDecoder(tuple(channels), pool)

    @classmethod
    def from_config(cls, config: dict) -> "RefocusNet":
        """A model of a weights file's ``config`` (files written before a key existed get its
        default)."""
        return cls(depth=config["depth"], channels=tuple(config["channels"]), bin_step_um=config["bin_step_um"],
                   pool=config["pool"], image_attention=config.get("image_attention", False),
                   fine_keys=config.get("fine_keys", True))

    def without_fine_keys(self) -> "RefocusNet":
        """This model as ``fine_keys=False`` (a new model, for fine-tuning into the smaller field):
        every weight copied except the 1/2-px key head, which the new field does not have."""
        if not self.config["fine_keys"]:
            return self
        out = RefocusNet.from_config({**self.config, "fine_keys": False})
        state = {}
        for k, v in self.state_dict().items():
            if k.startswith("encoder.keys."):
                i = int(k.split(".")[2])
                if i == 0:
                    continue
                k = k.replace(f"encoder.keys.{i}.", f"encoder.keys.{i - 1}.", 1)
            state[k] = v
        out.load_state_dict(state)
        return out.train(self.training)

    # ------------------------------------------------------------------ geometry
    def default_bins(self, focus_um: torch.Tensor) -> torch.Tensor:
        """(B, D) bin z (µm): D bins every ``bin_step_um`` centred on the middle of the planes."""
        b = focus_um.shape[0]
        flat = focus_um.reshape(b, -1)
        centre = (flat.amin(1) + flat.amax(1)) / 2
        d = self.config["depth"]
        steps = (torch.arange(d, dtype=torch.float32) - (d - 1) / 2) * self.config["bin_step_um"]
        return centre[:, None] + steps[None]

    # ------------------------------------------------------------------ the two halves
    def encode(self, stack: torch.Tensor, focus_maps: torch.Tensor, z_bins: torch.Tensor | None = None) -> Radiance:
        if stack.ndim != 5 or stack.shape[2] != 3:
            raise ValueError(f"stack must be (B, N, 3, H, W), got {tuple(stack.shape)}")
        b, n, _, h, w = stack.shape
        if not 1 <= n <= MAX_PLANES:
            raise ValueError(f"the model takes 1..{MAX_PLANES} planes, got {n}")
        focus = torch.as_tensor(focus_maps).float()
        if focus.ndim == 2 and focus.shape == (b, n):
            focus = focus[:, :, None, None].expand(b, n, h, w)
        if focus.shape != (b, n, h, w):
            raise ValueError(f"focus maps must be (B, N) or (B, N, H, W) = {(b, n, h, w)}, got {tuple(focus.shape)}")
        z = self.default_bins(focus) if z_bins is None else z_bins.float()
        ph, pw = (-h) % 8, (-w) % 8
        x, f = stack.float(), focus
        if ph or pw:
            x = F.pad(x.reshape(b * n, 3, h, w), (0, pw, 0, ph), mode="replicate").view(b, n, 3, h + ph, w + pw)
            f = F.pad(f, (0, pw, 0, ph), mode="replicate")
        rad = self.encoder(x, f, z)
        out = Radiance(rad.latents, rad.keys, rad.z_um, (h, w), rad.images, rad.focus_um)
        if not torch.is_grad_enabled() and focus_maps.ndim == 2:
            for sigma in DETAIL_SIGMAS_PX:   # nominal-z planes: the decoder's blurs are per plane,
                out.blurred_images(sigma)    # so compute them with the field, not on the first decode
        return out

    def decode(self, radiance: Radiance, target_map) -> torch.Tensor:
        """Refocused (B, 3, H, W) in [0, 1]; target_map: float µm, (B,) or (B, H, W) µm."""
        h, w = radiance.size
        b = radiance.batch
        t = torch.as_tensor(target_map, dtype=torch.float32)
        if t.ndim == 0:
            t = t.expand(b)
        if t.ndim == 1:
            t = t[:, None, None].expand(b, h, w)
        if t.shape != (b, h, w):
            raise ValueError(f"target map must be (B, H, W) = {(b, h, w)}, got {tuple(t.shape)}")
        ph, pw = (-h) % 8, (-w) % 8
        if ph or pw:
            t = F.pad(t[:, None], (0, pw, 0, ph), mode="replicate")[:, 0]
        return self.decoder(radiance, t)[:, :, :h, :w]

    def forward(self, stack, focus_maps, target_map, z_bins=None):
        return self.decode(self.encode(stack, focus_maps, z_bins), target_map)

    # ------------------------------------------------------------------ numpy convenience
    @torch.no_grad()
    def refocus_arrays(self, planes: np.ndarray, focus_um, target_um) -> np.ndarray:
        """uint8 (N, H, W, 3) planes, focus (N,) or (N, H, W) µm, target float or (H, W) µm ->
        uint8 (H, W, 3)."""
        x = torch.from_numpy(np.ascontiguousarray(planes)).float().permute(0, 3, 1, 2)[None] / 255.0
        f = torch.as_tensor(np.asarray(focus_um, np.float32))[None]
        t = torch.as_tensor(np.asarray(target_um, np.float32))[None]
        out = self.decode(self.encode(x, f), t if t.ndim == 3 else t.reshape(1))
        return (out[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
