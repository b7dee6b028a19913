"""Training-time variation so a focus model trained on the phantom transfers to real scans.

All functions act on float32 batches (B, 3, H, W) in [0, 1] and take a torch.Generator, so a
training run is reproducible. The variations are those that change a scan's look but not its
focus: stain strength and hue (per-channel optical-density scaling), exposure, sensor noise
(Poisson–Gaussian) and JPEG compression as scanners store tiles.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image


def _u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def stain_jitter(x: torch.Tensor, g: torch.Generator, strength: float = 0.3) -> torch.Tensor:
    """Scale optical density per image (0.6–1.4×) and per channel (±``strength``/2)."""
    b = x.shape[0]
    od = -torch.log(x.clamp(1 / 512, 1))
    scale = _u(g, b, 1 - 1.3 * strength, 1 + 1.3 * strength)[:, None] * _u(g, b * 3, 1 - strength / 2, 1 + strength / 2).view(b, 3)
    return torch.exp(-od * scale[:, :, None, None])


def exposure_jitter(x: torch.Tensor, g: torch.Generator, lo: float = 0.85, hi: float = 1.08) -> torch.Tensor:
    """Multiply intensities by one factor per image (scanner illumination / white balance)."""
    return (x * _u(g, x.shape[0], lo, hi)[:, None, None, None]).clamp(0, 1)


def sensor_noise(x: torch.Tensor, g: torch.Generator, max_gain: float = 2e-4, max_read: float = 0.005) -> torch.Tensor:
    """Poisson–Gaussian noise, Gaussian approximation: var = gain·I + read², per image. At the
    maxima the standard deviation at I = 0.8 is about 0.014 (3.5 grey levels): a noisy scanner;
    good ones show 1–2 levels."""
    b = x.shape[0]
    gain = _u(g, b, 0, max_gain)[:, None, None, None]
    read = _u(g, b, 0, max_read)[:, None, None, None]
    sd = torch.sqrt(gain * x + read * read)
    return (x + sd * torch.randn(x.shape, generator=g)).clamp(0, 1)


def jpeg(x: torch.Tensor, g: torch.Generator, p: float = 0.5, quality: tuple[int, int] = (55, 95)) -> torch.Tensor:
    """Round-trip a fraction ``p`` of the batch through JPEG at a random quality."""
    out = x.clone()
    pick = torch.rand(x.shape[0], generator=g) < p
    for i in torch.nonzero(pick).flatten().tolist():
        q = int(torch.randint(quality[0], quality[1] + 1, (1,), generator=g))
        arr = (x[i].permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=q)
        dec = np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        out[i] = torch.from_numpy(dec).permute(2, 0, 1).float() / 255.0
    return out


def stain_exposure_lut(imgs: np.ndarray, g: torch.Generator, strength: float = 0.3,
                       exposure: tuple[float, float] = (0.85, 1.08)) -> torch.Tensor:
    """`stain_jitter` then `exposure_jitter` of uint8 images (B, H, W, 3), as one 256-entry
    look-up table per image and channel (the same maps, without a log and an exp per pixel):
    float32 (B, 3, H, W) in [0, 1]."""
    b = imgs.shape[0]
    od = -torch.log(torch.clamp(torch.arange(256, dtype=torch.float32) / 255.0, 1 / 512, 1))  # (256,)
    scale = _u(g, b, 1 - 1.3 * strength, 1 + 1.3 * strength)[:, None] * _u(g, b * 3, 1 - strength / 2, 1 + strength / 2).view(b, 3)
    gain = _u(g, b, exposure[0], exposure[1])[:, None, None]
    lut = (torch.exp(-od[None, None, :] * scale[:, :, None]) * gain).clamp(0, 1).numpy()  # (B, 3, 256)
    out = np.empty((b, 3) + imgs.shape[1:3], np.float32)
    for i in range(b):
        for c in range(3):
            np.take(lut[i, c], imgs[i, :, :, c], out=out[i, c])
    return torch.from_numpy(out)


_NOISE_BANK: dict[int, torch.Tensor] = {}


def banked_noise(x: torch.Tensor, g: torch.Generator, max_gain: float = 2e-4, max_read: float = 0.005) -> torch.Tensor:
    """Sensor noise for training batches, cheaper than `sensor_noise`: the unit normal field is
    cut at a random offset out of a fixed bank of normal deviates (seeded once) instead of drawn
    afresh, and each image's standard deviation is that of `sensor_noise` at I = 0.8 (tissue
    brightness), sqrt(gain·0.8 + read²), rather than per pixel. Acts in place on ``x``."""
    b, c, h, w = x.shape
    n = max(h, w) * 2
    bank = _NOISE_BANK.get(n)
    if bank is None:
        bank = torch.randn((3, n, n), generator=torch.Generator().manual_seed(12345))
        _NOISE_BANK[n] = bank
    gain = _u(g, b, 0, max_gain)
    read = _u(g, b, 0, max_read)
    sd = torch.sqrt(gain * 0.8 + read * read).tolist()
    oy = torch.randint(0, n - h + 1, (b,), generator=g).tolist()
    ox = torch.randint(0, n - w + 1, (b,), generator=g).tolist()
    for i in range(b):
        x[i].add_(bank[:, oy[i]:oy[i] + h, ox[i]:ox[i] + w], alpha=sd[i])
    return x.clamp_(0, 1)


def random_orientation(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random rot90 and, half the time, a horizontal flip, for the whole batch (B, 3, H, W)."""
    k = int(torch.randint(0, 4, (1,), generator=g))
    x = torch.rot90(x, k, dims=(2, 3))
    if torch.rand(1, generator=g) < 0.5:
        x = torch.flip(x, dims=(3,))
    return x.contiguous()


def augment_uint8(imgs: np.ndarray, g: torch.Generator, *, noise: bool = True,
                  orient: bool = True) -> torch.Tensor:
    """The full training variation of uint8 patches (B, H, W, 3) → float (B, 3, H, W) in [0, 1]:
    stain, exposure, noise (unless ``noise`` is False: images that already carry a scanner's
    noise), JPEG, and a random flip/rot90 per batch (unless ``orient`` is False)."""
    x = stain_exposure_lut(imgs, g)
    if noise:
        x = banked_noise(x, g)
    x = jpeg(x, g)
    return random_orientation(x, g) if orient else x


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The full training variation: stain, exposure, noise, JPEG, and random flips/rot90."""
    x = stain_jitter(x, g)
    x = exposure_jitter(x, g)
    x = sensor_noise(x, g)
    x = jpeg(x, g)
    return random_orientation(x, g)
