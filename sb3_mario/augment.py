"""Random-shift image augmentation of replayed observations (DrQ: Kostrikov, Yarats and Fergus, 2021).

DrQ pads each image by ``pad`` pixels, repeating the border, and crops it back to its size at a random offset: a
shift of up to ``pad`` pixels in each direction, one per sample and the same for all frames of a stack. On Atari
100k it is the lever behind DrQ(epsilon) and its successors (Agarwal et al., 2021). SB3 and sb3-contrib have no
augmentation, so it is written here; it works by index arithmetic (a clamped index is a repeated border), on any
dtype, so uint8 frames are shifted before they are ever converted to floats.
"""

from __future__ import annotations

import numpy as np
import torch as th


def draw_shifts(batch_size: int, pad: int) -> np.ndarray:
    """Random crop offsets for :func:`random_shift`, from NumPy's global generator (the replay buffer's, so a
    seeded model draws the same shifts with the same batches).

    :param batch_size: samples in the batch
    :param pad: the largest shift in pixels
    :return: ``(batch_size, 2)`` integers in ``[0, 2 * pad]``: the row and column offsets into the padded image
    """
    return np.random.randint(0, 2 * pad + 1, size=(batch_size, 2))


def random_shift(images: th.Tensor, shifts: np.ndarray | th.Tensor, pad: int) -> th.Tensor:
    """Shift each image of a batch, filling with its border: ``out[b, c, i, j] = images[b, c, clamp(i + dy - pad),
    clamp(j + dx - pad)]`` with ``(dy, dx) = shifts[b]``, i.e. pad by ``pad`` pixels (edge mode), crop at ``(dy, dx)``.

    :param images: ``(batch, channels, height, width)``, any dtype
    :param shifts: ``(batch, 2)`` offsets in ``[0, 2 * pad]`` (:func:`draw_shifts`)
    :param pad: the padding in pixels; 0 returns ``images``
    :return: the shifted images, same shape and dtype
    """
    if pad == 0:
        return images
    batch, _, height, width = images.shape
    offsets = th.as_tensor(shifts, device=images.device).long() - pad
    rows = (th.arange(height, device=images.device) + offsets[:, :1]).clamp_(0, height - 1)  # (batch, height)
    cols = (th.arange(width, device=images.device) + offsets[:, 1:]).clamp_(0, width - 1)  # (batch, width)
    index = th.arange(batch, device=images.device)[:, None, None]
    # the advanced indices broadcast to (batch, height, width); the channel slice goes last
    # contiguous: the same memory layout (and so the same convolution kernels) as an unshifted batch
    return images[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
