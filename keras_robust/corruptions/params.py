"""Severity tables: the published parameter of every corruption at severities 1..5.

Two tables, chosen by image size (:func:`geometry`):

* ``"cifar"`` for small images (``min(H, W) <= 64``): the CIFAR-10-C values
  (Hendrycks & Dietterich, ICLR 2019; ``make_cifar_c.py`` in
  ``hendrycks/robustness``), tuned on 32x32 images.
* ``"imagenet"`` for larger images: the ImageNet-C values
  (``make_imagenet_c.py``), tuned on 224x224 images.

Quantities measured in pixels (blur sigmas and radii, motion-blur length,
glass-blur shuffle distance, frost texture scale, spatter blur) are scaled by
``min(H, W) / reference_side`` (32 or 224), so a 28x28 or 64x64 image gets the
CIFAR-10-C look and a 96x96 or 512x512 image the ImageNet-C look. Relative
quantities (noise levels, contrast factors, zoom factors, JPEG quality,
pixelation factor) are used as published.

The four M-TLAT corruptions (Laugros et al., section 4.1) have ranges given on
224-pixel images; severities 1..5 are spread linearly over each range and the
pixel quantities are kept as fractions of the image side, so they apply to any
size. ``rain`` has no published table; its imgaug ``RainLayer`` parameters are
our own, increasing in density, streak length and number of layers.

Example:

>>> geo = geometry(32, 32)
>>> geo.table, geo.scale
('cifar', 1.0)
>>> value("gaussian_noise", 5, geo)
0.1
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: Largest ``min(H, W)`` that still uses the CIFAR-10-C table.
SMALL_IMAGE_MAX_SIDE = 64
#: Side length the CIFAR-10-C parameters were tuned on.
CIFAR_SIDE = 32
#: Side length the ImageNet-C parameters were tuned on.
IMAGENET_SIDE = 224


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Image size and the severity table that applies to it.

    Attributes:
        height: Image height in pixels.
        width: Image width in pixels.
        table: ``"cifar"`` or ``"imagenet"``.
        scale: ``min(height, width)`` divided by the table's reference side
            (32 or 224); multiply pixel-sized parameters by it.

    The property ``side`` is ``min(height, width)``. Build one with
    :func:`geometry`, which picks the table and the scale.

    Example:

    >>> geo = geometry(28, 40)
    >>> geo
    Geometry(height=28, width=40, table='cifar', scale=0.875)
    >>> geo.side
    28
    """

    height: int
    width: int
    table: str
    scale: float

    @property
    def side(self) -> int:
        """``min(height, width)``."""
        return min(self.height, self.width)


def geometry(height: int, width: int) -> Geometry:
    """Returns the :class:`Geometry` (table and scale) for an image size.

    Args:
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        A :class:`Geometry`; ``table`` is ``"cifar"`` when
        ``min(height, width) <= 64``, else ``"imagenet"``.

    Example:

    >>> geometry(224, 224).table
    'imagenet'
    """
    side = min(int(height), int(width))
    if side <= SMALL_IMAGE_MAX_SIDE:
        return Geometry(int(height), int(width), "cifar", side / CIFAR_SIDE)
    return Geometry(int(height), int(width), "imagenet", side / IMAGENET_SIDE)


def _linspace5(low: float, high: float) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(low, high, 5))


# Per corruption: {"cifar": five values, "imagenet": five values}; a value is a
# number or a tuple of numbers (documented next to each entry).
TABLES: dict[str, dict[str, tuple[Any, ...]]] = {
    # standard deviation of additive noise on the [0, 1] scale
    "gaussian_noise": {
        "cifar": (0.04, 0.06, 0.08, 0.09, 0.10),
        "imagenet": (0.08, 0.12, 0.18, 0.26, 0.38),
    },
    # Poisson rate: out = Poisson(x * lam) / lam, x in [0, 1]
    "shot_noise": {
        "cifar": (500, 250, 100, 75, 50),
        "imagenet": (60, 25, 12, 5, 3),
    },
    # fraction of values replaced by 0 or 255 (salt and pepper, per channel)
    "impulse_noise": {
        "cifar": (0.01, 0.02, 0.03, 0.05, 0.07),
        "imagenet": (0.03, 0.06, 0.09, 0.17, 0.27),
    },
    # standard deviation of multiplicative noise: out = x * (1 + N(0, c))
    "speckle_noise": {
        "cifar": (0.06, 0.1, 0.12, 0.16, 0.2),
        "imagenet": (0.15, 0.2, 0.35, 0.45, 0.6),
    },
    # Gaussian sigma in pixels at the reference side
    "gaussian_blur": {
        "cifar": (0.4, 0.6, 0.7, 0.8, 1.0),
        "imagenet": (1, 2, 3, 4, 6),
    },
    # (blur sigma in px, max shuffle distance in px, iterations)
    "glass_blur": {
        "cifar": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
        "imagenet": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    },
    # (disk radius in px, anti-alias Gaussian sigma in px)
    "defocus_blur": {
        "cifar": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
        "imagenet": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    },
    # ImageMagick MotionBlurImage (radius in px, sigma in px); angle ~ U(-45, 45)
    "motion_blur": {
        "cifar": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
        "imagenet": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    },
    # zoom factors np.arange(start, stop, step), averaged with the image
    "zoom_blur": {
        "cifar": ((1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)),
        "imagenet": ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)),
    },
    # (layer mean, layer std, layer zoom, threshold, motion radius px,
    #  motion sigma px, image blend weight)
    "snow": {
        "cifar": (
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ),
        "imagenet": (
            (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
            (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
            (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
            (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
            (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
        ),
    },
    # (image weight, frost texture weight)
    "frost": {
        "cifar": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
        "imagenet": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    },
    # (fog strength, plasma-fractal wibble decay)
    "fog": {
        "cifar": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
        "imagenet": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    },
    # amount added to the HSV value channel, [0, 1] scale
    "brightness": {
        "cifar": (0.05, 0.1, 0.15, 0.2, 0.3),
        "imagenet": (0.1, 0.2, 0.3, 0.4, 0.5),
    },
    # factor on the distance to the per-channel image mean
    "contrast": {
        "cifar": (0.75, 0.5, 0.4, 0.3, 0.15),
        "imagenet": (0.4, 0.3, 0.2, 0.1, 0.05),
    },
    # HSV saturation: s * a + b, (a, b)
    "saturate": {
        "cifar": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
        "imagenet": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    },
    # (alpha, sigma, affine jitter), as fractions of the image side. ImageNet-C
    # multiplies by 244 on 224-pixel images ("244 should have been 224"), so
    # its fractions carry the factor 244/224.
    "elastic_transform": {
        "cifar": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
        "imagenet": tuple(
            tuple(v * 244 / 224 for v in row)
            for row in ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))
        ),
    },
    # side of the low-resolution image as a fraction of the original
    "pixelate": {
        "cifar": (0.95, 0.9, 0.85, 0.75, 0.65),
        "imagenet": (0.6, 0.5, 0.4, 0.3, 0.25),
    },
    # JPEG quality (PIL scale)
    "jpeg_compression": {
        "cifar": (80, 65, 58, 50, 40),
        "imagenet": (25, 18, 15, 10, 7),
    },
    # (layer mean, layer std, layer blur sigma px, threshold, intensity or
    #  mud blur sigma px, mode 0 = water / 1 = mud)
    "spatter": {
        "cifar": (
            (0.62, 0.1, 0.7, 0.7, 0.5, 0),
            (0.65, 0.1, 0.8, 0.7, 0.5, 0),
            (0.65, 0.3, 1, 0.69, 0.5, 0),
            (0.65, 0.1, 0.7, 0.69, 0.6, 1),
            (0.65, 0.1, 0.5, 0.68, 0.6, 1),
        ),
        "imagenet": (
            (0.65, 0.3, 4, 0.69, 0.6, 0),
            (0.65, 0.3, 3, 0.68, 0.6, 0),
            (0.65, 0.3, 2, 0.68, 0.5, 0),
            (0.65, 0.3, 1, 0.65, 1.5, 1),
            (0.67, 0.4, 1, 0.65, 1.5, 1),
        ),
    },
}

# M-TLAT (section 4.1): ranges on 224-pixel images, spread over severities 1..5.
_MTLAT = {
    # degrees, sign drawn at random
    "rotation": _linspace5(8, 40),
    # square side as a fraction of min(H, W): 60..127 px of 224
    "occlusion": _linspace5(60 / 224, 127 / 224),
    # shift distance as a fraction of min(H, W): 15..62 px of 224
    "translation": _linspace5(15 / 224, 62 / 224),
    # constant added to one RGB channel, fraction of 255
    "color_distortion": _linspace5(0.08, 0.30),
}
for _name, _values in _MTLAT.items():
    TABLES[_name] = {"cifar": _values, "imagenet": _values}

# Rain (imgaug RainLayer): (number of layers, density, drop size, speed).
# Our own choice, no published table: denser drops, longer streaks and more
# layers as severity grows. imgaug's streak length is int(speed * side), so
# the small-image speeds start at 0.10 (3-pixel streaks on 32x32; below that
# imgaug draws dots, not rain); the large-image values span imgaug's defaults.
TABLES["rain"] = {
    "cifar": (
        (1, 0.03, 0.02, 0.10),
        (1, 0.05, 0.02, 0.13),
        (2, 0.06, 0.03, 0.16),
        (2, 0.09, 0.03, 0.19),
        (3, 0.11, 0.04, 0.22),
    ),
    "imagenet": (
        (1, 0.04, 0.01, 0.05),
        (1, 0.07, 0.015, 0.08),
        (2, 0.07, 0.015, 0.12),
        (2, 0.10, 0.02, 0.16),
        (3, 0.13, 0.02, 0.20),
    ),
}


def value(name: str, severity: int, geo: Geometry) -> Any:
    """Returns the published parameter of ``name`` at ``severity`` for ``geo``.

    The value is returned as tabulated (pixel quantities at the reference side
    of the table, not yet multiplied by ``geo.scale``).

    Args:
        name: A corruption name with a table (see :data:`TABLES`).
        severity: Integer 1..5.
        geo: The :class:`Geometry` of the images.

    Returns:
        A number or a tuple of numbers, as documented in :data:`TABLES`.

    Example:

    >>> value("jpeg_compression", 1, geometry(224, 224))
    25
    """
    return TABLES[name][geo.table][severity - 1]


__all__ = [
    "CIFAR_SIDE",
    "IMAGENET_SIDE",
    "SMALL_IMAGE_MAX_SIDE",
    "TABLES",
    "Geometry",
    "geometry",
    "value",
]
