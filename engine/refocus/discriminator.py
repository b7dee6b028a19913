"""Conditional patch discriminator D(x | f_t) and the LSGAN losses of thesis Eq. 5.12.

``FocusDiscriminator`` sees an image x (B, 3, H, W) in [0, 1] and its target focus map f_t
(B, H, W) µm given relative to the middle of the input planes (so it is in the frame of the
stack, as the decoder's condition is): the map enters as its Fourier depth code and its scaled
value (``layers.depth_features``, 9 channels) concatenated to the image. Four strided convs
(LeakyReLU, ~76 k parameters) give one realness score per patch of ~26 px
(PatchGAN). LSGAN (Mao et al. 2017)::

    L_D = ½ E[(D(x_t | f_t) − 1)²] + ½ E[D(x̂_t | f_t)²]
    L_G = ½ E[(D(x̂_t | f_t) − 1)²]
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import depth_features

__all__ = ["FocusDiscriminator", "relative_target", "lsgan_d_loss", "lsgan_g_loss"]


def relative_target(target_um: torch.Tensor, focus_um: torch.Tensor) -> torch.Tensor:
    """The target map (B, H, W) µm relative to the middle of the input planes' focus (B, N[, H, W])."""
    flat = focus_um.reshape(focus_um.shape[0], -1)
    centre = (flat.amin(1) + flat.amax(1)) / 2
    return target_um - centre[:, None, None]


class FocusDiscriminator(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        c_in = 3 + depth_features(torch.zeros(1, 1, 1)).shape[1] + 1
        self.net = nn.Sequential(
            nn.Conv2d(c_in, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1))

    def forward(self, image: torch.Tensor, rel_target_um: torch.Tensor) -> torch.Tensor:
        """Patch scores (B, 1, H/4, W/4) of ``image`` (B, 3, H, W) at ``rel_target_um`` (B, H, W)."""
        t = rel_target_um.float()
        cond = torch.cat([depth_features(t, 1), (t / 4.0)[:, None]], 1)
        return self.net(torch.cat([image * 2 - 1, cond], 1))


def lsgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (d_real - 1).pow(2).mean() + 0.5 * d_fake.pow(2).mean()


def lsgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (d_fake - 1).pow(2).mean()
