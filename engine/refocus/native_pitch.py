"""Refocusing a slide whose pixels are finer than the model's 0.25 µm/px, without losing them.

The model runs at 0.25 µm/px (`refocused_slide.model_scale`). A slide scanned finer (e.g. a
60×/100× stack at 0.1 µm/px) is resampled down for the model; resampling the model's output
back up would throw away every detail above the model's Nyquist frequency (2 cycles/µm), which
a plain blend of the captured planes keeps. So the model contributes only its *correction* of
the blend, and the finer detail comes from the blend at the slide's own pitch::

    out_native = blend_native + up(out_model − blend_model)

blend_* is the linear blend of the two captured planes around the target
(`baselines.linear_weights`) at each pitch, ``up`` bicubic resampling. A model that only
returns the blend gives exactly the native blend. For slides coarser than the model (scale > 1,
e.g. 20× at 0.5 µm/px) the output is simply area-averaged back: the model sees every native
pixel there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .baselines import blend, linear_weights

__all__ = ["to_native_pitch"]


def to_native_pitch(out_model: torch.Tensor, planes_model: torch.Tensor, focus_um: torch.Tensor,
                    target_um: torch.Tensor, base_native: torch.Tensor | None, size: tuple[int, int],
                    alpha: float = 1.0) -> torch.Tensor:
    """The model's output (B, 3, h, w) in [0, 1] at the model's pitch as (B, 3, H, W) at the
    slide's, ``size`` = (H, W).

    ``planes_model`` (B, N, 3, ≥h, ≥w): the planes the model was given (cropped to h, w here),
    ``focus_um`` (B, N) µm, ``target_um`` (B,) µm or (B, h, w); ``base_native`` (B, 3, H, W): the
    linear blend at the slide's pitch — needed when the slide is finer than the model (H > h),
    ignored otherwise. ``alpha``: the trust in the model (`trust.loo_trust`): its correction of
    the blend is weighted by it (1: as it is, 0: the blend)."""
    h, w = out_model.shape[-2:]
    same = (h, w) == tuple(size)
    if alpha < 1.0 or (not same and size[0] > h):
        if not same and size[0] > h and base_native is None:
            raise ValueError("a slide finer than the model needs its native blend")
        b, n = planes_model.shape[:2]
        t = torch.as_tensor(target_um, dtype=torch.float32)
        t = t.reshape(b, 1, 1).expand(b, h, w) if t.ndim <= 1 else t
        f = focus_um.float().reshape(b, n, 1, 1).expand(b, n, h, w)
        base_model = blend(planes_model[..., :h, :w].float(), linear_weights(f, t))
        correction = alpha * (out_model - base_model)
        if not same and size[0] > h:
            detail = F.interpolate(correction, size=size, mode="bicubic", align_corners=False)
            return (base_native + detail).clamp(0, 1)
        out_model = (base_model + correction).clamp(0, 1)
    if same:
        return out_model
    return F.interpolate(out_model, size=size, mode="area")      # slide coarser than the model
