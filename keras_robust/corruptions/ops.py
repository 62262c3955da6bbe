"""Whole-batch NumPy/OpenCV kernels for the corruptions imgaug lacks.

Every function takes a batch ``(N, H, W, C)`` (uint8 unless stated) and, when
random, a ``numpy.random.Generator``; none loops over pixels in Python. Where
OpenCV works on one image at a time (``filter2D``, ``warpAffine``, ``Canny``),
the loop is over images and the work inside is C++ that releases the GIL.

These are the building blocks of the custom imgaug augmenters in
:mod:`keras_robust.corruptions.augmenters`; they follow the published
descriptions of the ImageNet-C / CIFAR-10-C corruptions (Hendrycks &
Dietterich, 2019) and are written from those descriptions, not copied.

Example:

>>> rng = np.random.default_rng(0)
>>> x = np.full((2, 32, 32, 3), 128, np.uint8)
>>> shot_noise(x, 100, rng).shape
(2, 32, 32, 3)
"""
from __future__ import annotations

import functools
import importlib.util
import os
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

# --------------------------------------------------------------------------
# conversions


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 ``[0, 255]`` -> float32 ``[0, 1]``.

    Multiplies by ``float32(1 / 255)``, elementwise, so any shape works; the
    inverse of :func:`from_unit` (up to its rounding).

    Args:
        images: uint8 pixel levels 0..255, any shape (e.g. ``(N, H, W, C)``).

    Returns:
        A float32 array of the same shape, in ``[0, 1]``.

    Example:

    >>> to_unit(np.array([0, 51, 255], np.uint8))
    array([0.        , 0.20000002, 1.        ], dtype=float32)
    """
    return images.astype(np.float32) * np.float32(1.0 / 255.0)


def from_unit(x: np.ndarray) -> np.ndarray:
    """float ``[0, 1]`` (clipped) -> uint8 ``[0, 255]``, rounded to nearest.

    Computes ``rint(clip(x, 0, 1) * 255)``: values outside ``[0, 1]`` are
    clipped first, and halves round to even (``np.rint``).

    Args:
        x: float array on the ``[0, 1]`` scale, any shape.

    Returns:
        A uint8 array of the same shape.

    Example:

    >>> from_unit(np.array([-0.5, 0.2, 0.5, 1.5]))
    array([  0,  51, 128, 255], dtype=uint8)
    """
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def luminance(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of RGB images, same dtype kind, keeps a channel axis.

    ``Y = 0.299 R + 0.587 G + 0.114 B`` over the last axis, computed in
    float32. uint8 input gives uint8 output (rounded and clipped to 0..255);
    any other input gives float32 (in the input's scale, e.g. ``[0, 1]``).

    Args:
        images: RGB array whose last axis has 3 channels, e.g.
            ``(N, H, W, 3)``; uint8 0..255 or float.

    Returns:
        The luma with a channel axis of 1, e.g. ``(N, H, W, 1)``: uint8 for
        uint8 input, else float32.

    Raises:
        ValueError: the last axis does not have 3 channels.

    Example:

    >>> red = np.zeros((2, 8, 8, 3), np.uint8)
    >>> red[..., 0] = 255
    >>> grey = luminance(red)
    >>> grey.shape, grey.dtype, int(grey[0, 0, 0, 0])
    ((2, 8, 8, 1), dtype('uint8'), 76)
    """
    weights = np.asarray([0.299, 0.587, 0.114], np.float32)
    grey = images.astype(np.float32) @ weights
    if images.dtype == np.uint8:
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return grey[..., None]


# --------------------------------------------------------------------------
# noise and contrast


def shot_noise(images: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson (photon) noise: ``Poisson(x * lam) / lam`` on ``x`` in [0, 1].

    The pixels are taken to the ``[0, 1]`` scale (``x = images / 255``); the
    noisy values are clipped to ``[0, 1]`` and rounded back to uint8 levels.

    Args:
        images: uint8 batch ``(N, H, W, C)`` (any shape works).
        lam: Poisson rate (photons at full brightness), > 0; smaller is
            noisier (CIFAR-10-C: 500 down to 50 over severities 1..5).
        rng: Random generator.

    Returns:
        A new uint8 array of the same shape.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = np.full((2, 8, 8, 3), 128, np.uint8)
    >>> y = shot_noise(x, 100, rng)
    >>> y.shape, y.dtype
    ((2, 8, 8, 3), dtype('uint8'))
    """
    x = images.astype(np.float64) * (lam / 255.0)
    return from_unit(rng.poisson(x) / lam)


def mean_contrast(images: np.ndarray, factor: float) -> np.ndarray:
    """Scales each pixel's distance to its image's per-channel mean.

    On the ``[0, 1]`` scale, ``out = (x - mean) * factor + mean`` where
    ``mean`` is taken over each image's height and width, per channel; the
    result is clipped and rounded back to uint8.

    Args:
        images: uint8 batch ``(N, H, W, C)``.
        factor: contrast factor: 1 leaves the images unchanged, values below 1
            lower the contrast (0 gives each image its flat per-channel mean;
            CIFAR-10-C: 0.75 down to 0.15), above 1 raise it.

    Returns:
        A new uint8 array of the same shape.

    Example:

    >>> x = np.zeros((1, 8, 8, 3), np.uint8)
    >>> x[:, :, :4] = 200                        # left half 200, right half 0: mean 100
    >>> mean_contrast(x, 0.5)[0, 0, :, 0]
    array([150, 150, 150, 150,  50,  50,  50,  50], dtype=uint8)
    """
    x = to_unit(images)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return from_unit((x - mean) * np.float32(factor) + mean)


# --------------------------------------------------------------------------
# kernels


def disk_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """Normalised disk of ``radius`` px, anti-aliased by a small Gaussian.

    A ``radius`` below 1 leaves only the centre tap, so the kernel is then the
    anti-alias Gaussian alone (a light blur), as in ImageNet-C.

    Args:
        radius: disk radius in px, >= 0.
        alias_sigma: sigma in px of the anti-alias Gaussian, applied with a
            3x3 kernel (5x5 when ``radius > 8``).

    Returns:
        A float32 square kernel of side ``2 * (ceil(radius) + 2) + 1``,
        centred, summing to 1 (for ``cv2.filter2D`` or ``iaa.Convolve``).

    Raises:
        ValueError: a negative (or NaN) radius.

    Example:

    >>> k = disk_kernel(2.0, 0.5)
    >>> k.shape, k.dtype, round(float(k.sum()), 4)
    ((9, 9), dtype('float32'), 1.0)
    """
    if not radius >= 0:  # also refuses NaN
        raise ValueError(f"disk_kernel needs a radius >= 0 px, got {radius}.")
    half = int(np.ceil(radius)) + 2
    grid = np.arange(-half, half + 1, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    ksize = 3 if radius <= 8 else 5
    return cv2.GaussianBlur(disk, (ksize, ksize), alias_sigma)


def motion_kernel(radius: float, sigma: float, angle: float) -> np.ndarray:
    """One-sided Gaussian-weighted ray, as ImageMagick's ``-motion-blur``.

    Tap ``i`` (``0 <= i <= 2 * ceil(radius)``) sits ``i`` pixels from the
    centre along ``angle`` degrees (0 = +x, 90 = +y, i.e. down) and weighs
    ``exp(-i^2 / (2 sigma^2))``; offsets are rounded to whole pixels, as
    ImageMagick does. Taps below 1e-3 of the first are dropped. Used with
    ``cv2.filter2D`` (a correlation), each output pixel averages the pixels
    along the ray that starts at it.

    Args:
        radius: ImageMagick radius in px; the ray has ``2 * ceil(radius) + 1``
            taps before the small ones are dropped (a radius below 0.5
            counts as 0.5).
        sigma: Gaussian fall-off of the weights along the ray, px.
        angle: Direction of the ray in degrees.

    Returns:
        A float32 square kernel with odd side, centred on tap 0, summing to 1.

    Example:

    >>> k = motion_kernel(2, 1.0, 0)             # 5 taps, the last below 1e-3: dropped
    >>> k.shape, int(np.count_nonzero(k)), int(np.count_nonzero(k[3, 3:])), round(float(k.sum()), 4)
    ((7, 7), 4, 4, 1.0)
    """
    taps = np.arange(2 * int(np.ceil(max(radius, 0.5))) + 1, dtype=np.float64)
    weights = np.exp(-(taps**2) / (2.0 * max(sigma, 1e-3) ** 2))
    keep = weights >= 1e-3 * weights[0]
    taps, weights = taps[keep], weights[keep]
    theta = np.deg2rad(angle)
    dx = np.rint(taps * np.cos(theta)).astype(np.int64)
    dy = np.rint(taps * np.sin(theta)).astype(np.int64)
    half = int(max(np.abs(dx).max(), np.abs(dy).max(), 1))
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    np.add.at(kernel, (half + dy, half + dx), weights)
    return (kernel / kernel.sum()).astype(np.float32)


def filter_each(
    images: np.ndarray, kernels: Sequence[np.ndarray], border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """Correlates image ``i`` with ``kernels[i]`` (``cv2.filter2D``), any dtype.

    The output keeps the input's dtype (``ddepth=-1``): uint8 results are
    rounded and saturated to 0..255. There must be exactly one kernel per
    image.

    Args:
        images: batch ``(N, H, W)`` or ``(N, H, W, C)`` of a dtype
            ``cv2.filter2D`` takes (uint8, float32, ...).
        kernels: one 2-D float kernel per image (``len(images)`` of them),
            e.g. from :func:`motion_kernel`.
        border: OpenCV border mode (default replicated border).

    Returns:
        A new array with the shape and dtype of ``images``.

    Raises:
        ValueError: the number of kernels is not the number of images.

    Example:

    >>> x = np.full((2, 8, 8, 3), 128, np.uint8)
    >>> box = np.ones((3, 3), np.float32) / 9
    >>> y = filter_each(x, [box, box])
    >>> y.shape, int(y.min()), int(y.max())
    ((2, 8, 8, 3), 128, 128)
    """
    if len(kernels) != len(images):
        raise ValueError(f"filter_each needs one kernel per image: {len(images)} images, "
                         f"{len(kernels)} kernels.")
    out = np.empty_like(images)
    for i, (image, kernel) in enumerate(zip(images, kernels)):
        res = cv2.filter2D(image, -1, kernel, borderType=border)
        out[i] = res.reshape(image.shape)
    return out


# --------------------------------------------------------------------------
# geometry


def _clipped_zoom_axis(size: int, factor: float) -> tuple[float, float]:
    """Source coordinate ``a + b * j`` of output pixel ``j`` along one axis.

    ImageNet-C's clipped zoom crops the central ``ceil(size / factor)``
    pixels (offset ``(size - crop) // 2``), resizes them with corner-aligned
    bilinear interpolation to ``round(crop * factor)`` pixels and keeps
    ``size`` of them from offset ``(zoomed - size) // 2``. The integer
    rounding makes small factors act partly as a shift towards the top-left;
    we keep that, since it is part of the published corruption.
    """
    crop = int(np.ceil(size / factor))
    top = (size - crop) // 2
    zoomed = int(round(crop * factor))
    trim = (zoomed - size) // 2
    step = (crop - 1) / (zoomed - 1) if zoomed > 1 else 1.0
    return top + trim * step, step


def clipped_zoom(images: np.ndarray, factor: float) -> np.ndarray:
    """Zooms each image in by ``factor`` about (about) its centre, same size.

    Reproduces the geometry of ImageNet-C's ``clipped_zoom`` (see
    :func:`_clipped_zoom_axis`) as one bilinear ``cv2.warpAffine`` per image;
    works on float32 batches with 1..4 channels. Pixels sampled outside the
    image take the nearest border value.

    Args:
        images: float32 batch ``(N, H, W, C)``, ``C`` 1..4 (any scale; the
            corruptions pass ``[0, 1]`` values).
        factor: zoom factor; 1 is the identity, larger zooms in (zoom blur
            uses 1 to 1.3, snow up to 4.5).

    Returns:
        A new array with the shape and dtype of ``images``.

    Example:

    >>> x = to_unit(np.arange(64, dtype=np.uint8).reshape(1, 8, 8, 1) * 4)
    >>> clipped_zoom(x, 2.0).shape, bool(np.allclose(clipped_zoom(x, 1.0), x))
    ((1, 8, 8, 1), True)
    """
    n, h, w, c = images.shape
    ax, bx = _clipped_zoom_axis(w, factor)
    ay, by = _clipped_zoom_axis(h, factor)
    # warpAffine with WARP_INVERSE_MAP takes the dst -> src matrix directly
    matrix = np.float32([[bx, 0, ax], [0, by, ay]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out = np.empty_like(images)
    for i in range(n):
        res = cv2.warpAffine(images[i], matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        out[i] = res.reshape(h, w, c)
    return out


def zoom_blur(images: np.ndarray, factors: Sequence[float]) -> np.ndarray:
    """Average of the image and its clipped zooms by each of ``factors``.

    ``(x + sum_f clipped_zoom(x, f)) / (len(factors) + 1)`` on the ``[0, 1]``
    scale, rounded back to uint8. A factor of 1 (the catalogue's ranges start
    at 1, as ImageNet-C's) counts the unzoomed image once more.

    Args:
        images: uint8 batch ``(N, H, W, C)``, ``C`` 1..4.
        factors: zoom factors (>= 1), e.g. ``np.arange(1, 1.11, 0.01)``.

    Returns:
        A new uint8 array of the same shape.

    Example:

    >>> x = np.full((2, 8, 8, 3), 128, np.uint8)
    >>> y = zoom_blur(x, [1.1, 1.2])
    >>> y.shape, y.dtype, int(y.min()), int(y.max())
    ((2, 8, 8, 3), dtype('uint8'), 128, 128)
    """
    x = to_unit(images)
    acc = x.copy()
    for factor in factors:
        acc += clipped_zoom(x, float(factor))
    return from_unit(acc / np.float32(len(factors) + 1))


def random_affine_jitter(
    images: np.ndarray, jitter: float, rng: np.random.Generator
) -> np.ndarray:
    """Random affine warp: three anchor points each moved by U(-jitter, jitter) px.

    The anchors sit one third of the side away from the centre (as in the
    ImageNet-C elastic transform); borders reflect. Each image draws its own
    warp, applied with bilinear interpolation.

    Args:
        images: batch ``(N, H, W, C)`` of a dtype ``cv2.warpAffine`` takes
            (uint8 or float32), ``C`` 1..4.
        jitter: largest move of each anchor coordinate, in px (0: identity).
        rng: Random generator.

    Returns:
        A new array with the shape and dtype of ``images``.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    >>> random_affine_jitter(x, 1.5, rng).shape
    (2, 8, 8, 3)
    >>> bool(np.array_equal(random_affine_jitter(x, 0.0, rng), x))
    True
    """
    n, h, w, c = images.shape
    centre = np.float32([w // 2, h // 2])
    d = min(h, w) // 3
    src = np.float32([centre + d, [centre[0] + d, centre[1] - d], centre - d])
    moves = rng.uniform(-jitter, jitter, size=(n, 3, 2)).astype(np.float32)
    out = np.empty_like(images)
    for i in range(n):
        matrix = cv2.getAffineTransform(src, src + moves[i])
        res = cv2.warpAffine(
            images[i], matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        out[i] = res.reshape(h, w, c)
    return out


def local_shuffle(
    images: np.ndarray, tile: int, rounds: int, rng: np.random.Generator
) -> np.ndarray:
    """Permutes pixels inside small square tiles, vectorised over the batch.

    Each round lays a grid of ``tile x tile`` cells at a random offset and
    applies an independent random permutation inside every cell (one
    ``argsort`` over the whole batch). Pixels move at most ``tile - 1`` px per
    round and every pixel value is kept (a true shuffle). Border pixels not
    covered by a whole cell stay in place for that round.

    Args:
        images: batch ``(N, H, W, C)``, any dtype.
        tile: cell side in px; below 2 the images come back unchanged (a copy).
        rounds: number of shuffling rounds.
        rng: Random generator.

    Returns:
        A new array with the shape and dtype of ``images``, each image a
        permutation of its own pixels.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    >>> y = local_shuffle(x, 2, 1, rng)
    >>> y.shape, bool(np.array_equal(np.sort(y, axis=None), np.sort(x, axis=None)))
    ((2, 8, 8, 3), True)
    """
    out = images.copy()
    n, h, w, c = out.shape
    if tile < 2:
        return out
    for _ in range(rounds):
        oy, ox = (int(v) for v in rng.integers(0, tile, size=2))
        ny, nx = (h - oy) // tile, (w - ox) // tile
        if ny == 0 or nx == 0:
            continue
        region = out[:, oy : oy + ny * tile, ox : ox + nx * tile]
        cells = region.reshape(n, ny, tile, nx, tile, c).transpose(0, 1, 3, 2, 4, 5)
        cells = cells.reshape(n, ny, nx, tile * tile, c)
        order = np.argsort(rng.random((n, ny, nx, tile * tile)), axis=-1)
        cells = np.take_along_axis(cells, order[..., None], axis=3)
        cells = cells.reshape(n, ny, nx, tile, tile, c).transpose(0, 1, 3, 2, 4, 5)
        out[:, oy : oy + ny * tile, ox : ox + nx * tile] = cells.reshape(n, ny * tile, nx * tile, c)
    return out


def pixelate(images: np.ndarray, factor: float) -> np.ndarray:
    """Box-filter downscale to ``int(side * factor)`` and box upscale back.

    Uses Pillow's ``BOX`` filter both ways, as CIFAR-10-C / ImageNet-C did;
    OpenCV's area/nearest pair shifts blocks by half a pixel and distorts
    several times more at the same factor. The small side is at least 1 px.

    Args:
        images: uint8 batch ``(N, H, W, C)``, ``C`` 1 or 3 (Pillow images).
        factor: side of the low-resolution image as a fraction of the
            original, in (0, 1] (CIFAR-10-C: 0.95 down to 0.65).

    Returns:
        A new uint8 array of the same shape.

    Example:

    >>> x = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    >>> y = pixelate(x, 0.5)                     # 8 -> 4 -> 8 px: constant 2x2 blocks
    >>> y.shape, bool((y[:, ::2, ::2] == y[:, 1::2, 1::2]).all())
    ((2, 8, 8, 3), True)
    """
    n, h, w, c = images.shape
    small = (max(int(w * factor), 1), max(int(h * factor), 1))
    out = np.empty_like(images)
    for i in range(n):
        image = Image.fromarray(images[i, ..., 0] if c == 1 else images[i])
        image = image.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)
        out[i] = np.asarray(image).reshape(h, w, c)
    return out


def resize_2d(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float32 array to ``size = (height, width)``.

    Args:
        image: 2-D float32 array ``(H, W)`` (``cv2.resize`` also takes
            ``(H, W, C)``).
        size: the output ``(height, width)``; note the order, the reverse of
            OpenCV's ``(width, height)``.

    Returns:
        A float32 array ``(height, width)``.

    Example:

    >>> resize_2d(np.zeros((8, 8), np.float32), (4, 6)).shape
    (4, 6)
    """
    return cv2.resize(image, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------
# weather


def plasma_fractal(
    n: int, size: int, decay: float, rng: np.random.Generator
) -> np.ndarray:
    """``n`` diamond-square height maps, ``(n, size, size)`` in [0, 1].

    ``size`` must be a power of two. Midpoints get the mean of their four
    neighbours (the map wraps around) plus uniform noise whose amplitude
    starts at 100^2 and is divided by ``decay^2`` per octave, the schedule of
    the ImageNet-C fog; larger ``decay`` gives smoother fog. Each map is then
    rescaled to span exactly ``[0, 1]``.

    Args:
        n: number of maps.
        size: side of each map in px, a power of two.
        decay: per-octave decay of the noise amplitude (> 0; the fog table
            uses 1.4 to 3).
        rng: Random generator.

    Returns:
        A float64 array ``(n, size, size)`` in ``[0, 1]``.

    Raises:
        ValueError: ``size`` is not a power of two.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> maps = plasma_fractal(2, 8, 2.0, rng)
    >>> maps.shape, maps.dtype, float(maps.min()), float(maps.max())
    ((2, 8, 8), dtype('float64'), 0.0, 1.0)
    """
    if size & (size - 1):
        raise ValueError(f"size must be a power of two, got {size}")
    hmap = np.zeros((n, size, size), np.float64)
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        amp = wibble * wibble
        corners = hmap[:, ::step, ::step]
        # squares: centre of each cell = mean of its 4 corners + noise
        sums = corners + np.roll(corners, -1, axis=1)
        sums = sums + np.roll(sums, -1, axis=2)
        hmap[:, half::step, half::step] = sums / 4 + rng.uniform(-amp, amp, sums.shape)
        # diamonds: edge midpoints = mean of the 2 corners and 2 centres + noise
        centres = hmap[:, half::step, half::step]
        corners = hmap[:, ::step, ::step]
        horiz = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        hmap[:, ::step, half::step] = horiz / 4 + rng.uniform(-amp, amp, horiz.shape)
        vert = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        hmap[:, half::step, ::step] = vert / 4 + rng.uniform(-amp, amp, vert.shape)
        step = half
        wibble /= decay
    hmap -= hmap.min(axis=(1, 2), keepdims=True)
    hmap /= np.maximum(hmap.max(axis=(1, 2), keepdims=True), 1e-12)
    return hmap


def fog(images: np.ndarray, strength: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Adds ``strength`` x a plasma fractal, then rescales to the image's max.

    On the ``[0, 1]`` scale, ``out = (x + strength * plasma) * peak / (peak +
    strength)`` with ``peak`` the image's largest value before the fog (as
    ImageNet-C), so the foggy image never exceeds the clean one's maximum;
    an all-black image (``peak`` 0) stays black. One map per image, drawn at
    the smallest power of two >= ``max(H, W)`` and cropped; every channel
    gets the same fog.

    Args:
        images: uint8 batch ``(N, H, W, C)``.
        strength: fog amount on the ``[0, 1]`` scale (CIFAR-10-C: 0.2 to 1.5).
        decay: the plasma fractal's decay (see :func:`plasma_fractal`).
        rng: Random generator.

    Returns:
        A new uint8 array of the same shape.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = np.full((2, 8, 8, 3), 128, np.uint8)
    >>> y = fog(x, 1.5, 2.0, rng)
    >>> y.shape, y.dtype, int(y.max()) <= 128
    ((2, 8, 8, 3), dtype('uint8'), True)
    """
    n, h, w, _ = images.shape
    size = 1 << int(np.ceil(np.log2(max(h, w, 2))))
    x = to_unit(images)
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    layer = plasma_fractal(n, size, decay, rng)[:, :h, :w, None].astype(np.float32)
    x = x + np.float32(strength) * layer
    return from_unit(x * peak / (peak + np.float32(strength)))


def snow(
    images: np.ndarray,
    params: Sequence[float],
    scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """ImageNet-C snow on RGB uint8 images.

    A Gaussian layer (mean, std) is zoomed, thresholded, quantised to uint8,
    smeared by a ``motion_kernel`` at a random angle in [-135, -45] degrees
    (falling snow), and added twice (once rotated by 180 degrees) to the image,
    which is first whitened a little towards ``1.5 * grey + 0.5``.

    Args:
        images: RGB uint8 batch.
        params: ``(mean, std, zoom, threshold, radius, sigma, blend)`` from
            the severity table; radius and sigma in px at the reference side.
        scale: Image side / reference side.
        rng: Random generator.

    Returns:
        A new uint8 array of the shape of ``images``.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = np.full((2, 8, 8, 3), 100, np.uint8)
    >>> params = (0.1, 0.2, 1, 0.5, 10, 4, 0.9)   # CIFAR-10-C severity 2
    >>> y = snow(x, params, 8 / 32, rng)
    >>> y.shape, y.dtype, int(y.min()) >= 100
    ((2, 8, 8, 3), dtype('uint8'), True)
    """
    mean, std, zoom, threshold, radius, sigma, blend = params
    n, h, w, _ = images.shape
    layer = rng.normal(mean, std, size=(n, h, w)).astype(np.float32)
    if zoom != 1:
        layer = clipped_zoom(layer[..., None], float(zoom))[..., 0]
    layer[layer < threshold] = 0
    layer8 = from_unit(layer)
    angles = rng.uniform(-135, -45, size=n)
    kernels = [motion_kernel(radius * scale, sigma * scale, a) for a in angles]
    flakes = to_unit(filter_each(layer8[..., None], kernels))
    flakes = flakes.reshape(n, h, w, 1)
    x = to_unit(images)
    grey = x @ np.asarray([0.299, 0.587, 0.114], np.float32)
    x = blend * x + (1 - blend) * np.maximum(x, grey[..., None] * 1.5 + 0.5)
    return from_unit(x + flakes + flakes[:, ::-1, ::-1])


_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


@functools.lru_cache(maxsize=1)
def frost_directory() -> str:
    """Folder of the ImageNet-C frost photographs shipped by ``imagecorruptions``.

    Located with ``importlib.util.find_spec`` (the package's code is never
    imported); cached after the first call.

    Returns:
        The folder's path, holding ``frost1.png`` to ``frost5.jpg``.

    Raises:
        ImportError: ``imagecorruptions`` is not installed.
        FileNotFoundError: a texture file is missing from its folder.

    Example:

    >>> sorted(os.listdir(frost_directory()))[:2]
    ['frost1.png', 'frost2.png']
    """
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The frost corruption needs the frost photographs of the 'imagecorruptions' "
            "package, an optional dependency: pip install \"keras_robust[frost]\"."
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "frost")
    missing = [f for f in _FROST_FILES if not os.path.exists(os.path.join(folder, f))]
    if missing:
        raise FileNotFoundError(f"Frost textures {missing} not found in {folder}.")
    return folder


@functools.lru_cache(maxsize=16)
def frost_textures(scale: float, min_height: int, min_width: int) -> tuple[np.ndarray, ...]:
    """The five frost textures (RGB uint8) resized by ``scale``.

    A texture smaller than ``(min_height, min_width)`` after resizing is
    enlarged just enough to cover it (one pixel more on each side, so that a
    random crop of that size always fits). Cached per argument triple; the
    arrays are read-only.

    Args:
        scale: resize factor of the photographs (see `frost`: the catalogue
            uses 0.2 x the pixel scale on small images, 1 x on large ones).
        min_height: the crop height the textures must cover, px.
        min_width: the crop width the textures must cover, px.

    Returns:
        Five read-only uint8 arrays [h, w, 3], RGB, each with
        ``h > min_height`` and ``w > min_width``.

    Raises:
        OSError: a texture file cannot be read (see also `frost_directory`).

    Example:

    >>> textures = frost_textures(0.2, 32, 32)
    >>> len(textures), all(t.shape[0] > 32 and t.shape[1] > 32 for t in textures)
    (5, True)
    """
    folder = frost_directory()
    out = []
    for name in _FROST_FILES:
        bgr = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"Could not read frost texture {os.path.join(folder, name)}.")
        h, w = bgr.shape[:2]
        s = max(scale, min_height / (h - 1), min_width / (w - 1))
        size = (max(int(round(w * s)), min_width + 1), max(int(round(h * s)), min_height + 1))
        resized = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        rgb = np.ascontiguousarray(resized[..., ::-1])
        rgb.setflags(write=False)
        out.append(rgb)
    return tuple(out)


def frost(
    images: np.ndarray,
    weights: Sequence[float],
    texture_scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Blends each RGB image with a random crop of a random frost texture.

    ``out = weights[0] * image + weights[1] * crop`` in pixel levels (0..255),
    clipped and rounded to uint8. Each image draws one of the five textures
    of :func:`frost_textures` (resized by ``texture_scale``, cached) and a
    random ``H x W`` crop of it.

    Args:
        images: RGB uint8 batch ``(N, H, W, 3)``.
        weights: ``(image weight, frost weight)`` (CIFAR-10-C: ``(1, 0.2)``
            to ``(0.75, 0.45)``).
        texture_scale: resize factor of the frost photographs (the catalogue
            uses 0.2 x the pixel scale on small images, 1 x on large ones).
        rng: Random generator.

    Returns:
        A new uint8 array of the same shape.

    Raises:
        ImportError: the ``imagecorruptions`` package (which ships the
            textures) is not installed.
        FileNotFoundError, OSError: a texture is missing or unreadable.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = np.full((2, 8, 8, 3), 100, np.uint8)
    >>> frost(x, (1.0, 0.3), 0.2, rng).shape
    (2, 8, 8, 3)
    >>> bool(np.array_equal(frost(x, (1.0, 0.0), 0.2, rng), x))
    True
    """
    n, h, w, _ = images.shape
    textures = frost_textures(round(float(texture_scale), 4), h, w)
    picks = rng.integers(0, len(textures), size=n)
    layer = np.empty(images.shape, np.float32)
    for i, k in enumerate(picks):
        tex = textures[k]
        y = int(rng.integers(0, tex.shape[0] - h))
        x = int(rng.integers(0, tex.shape[1] - w))
        layer[i] = tex[y : y + h, x : x + w]
    out = np.float32(weights[0]) * images.astype(np.float32) + np.float32(weights[1]) * layer
    return np.rint(np.clip(out, 0, 255)).astype(np.uint8)


def spatter(
    images: np.ndarray, params: Sequence[float], scale: float, rng: np.random.Generator
) -> np.ndarray:
    """ImageNet-C spatter: water splashes (mode 0) or mud (mode 1), RGB uint8.

    A blurred, thresholded Gaussian "liquid" layer is drawn per image. Water:
    the layer's edges (Canny) give a distance map that is clipped, smoothed,
    equalised and embossed into a glossy intensity, added in pale turquoise.
    Mud: the layer's support is blurred, kept where above 0.8, and replaces
    the image with brown there.

    Args:
        images: RGB uint8 batch.
        params: ``(mean, std, sigma, threshold, intensity_or_sigma, mode)``.
        scale: Image side / reference side (applied to the blur sigmas).
        rng: Random generator.

    Returns:
        A new uint8 array of the shape of ``images``.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = np.full((2, 8, 8, 3), 100, np.uint8)
    >>> params = (0.65, 0.1, 0.7, 0.69, 0.6, 1)   # CIFAR-10-C severity 4 (mud)
    >>> spatter(x, params, 8 / 32, rng).shape
    (2, 8, 8, 3)
    """
    mean, std, sigma, threshold, extra, mode = params
    n, h, w, _ = images.shape
    x = to_unit(images)
    raw = rng.normal(mean, std, size=(n, h, w)).astype(np.float32)
    out = np.empty_like(x)
    emboss = np.float32([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    water = np.float32([175, 238, 238]) / 255
    mud = np.float32([63, 42, 20]) / 255
    for i in range(n):
        liquid = gaussian_2d(raw[i], sigma * scale)
        liquid[liquid < threshold] = 0
        if mode == 0:
            edges = cv2.Canny(np.clip(liquid * 255, 0, 255).astype(np.uint8), 50, 150)
            dist = cv2.distanceTransform(255 - edges, cv2.DIST_L2, 5)
            dist = np.minimum(dist, 20)
            dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
            dist = cv2.filter2D(dist, cv2.CV_8U, emboss)
            dist = cv2.blur(dist, (3, 3)).astype(np.float32)
            gloss = liquid * dist
            gloss = gloss / max(float(gloss.max()), 1e-6) * np.float32(extra)
            out[i] = x[i] + gloss[..., None] * water
        else:
            mask = gaussian_2d((liquid > threshold).astype(np.float32), extra * scale)
            mask[mask < 0.8] = 0
            out[i] = x[i] * (1 - mask[..., None]) + mask[..., None] * mud
    return from_unit(out)


def gaussian_2d(image: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian blur of a 2-D float32 array, replicated border.

    The kernel reaches ``truncate * sigma`` px each side (at least 1); the
    defaults (truncate 4, replicated border) are scikit-image's ``gaussian``,
    which ImageNet-C used.

    Args:
        image: 2-D float32 array ``(H, W)``.
        sigma: Gaussian sigma in px; ``<= 0`` returns an unblurred copy.
        truncate: kernel half-width in sigmas.

    Returns:
        A new float32 array of the same shape.

    Example:

    >>> impulse = np.zeros((9, 9), np.float32)
    >>> impulse[4, 4] = 1
    >>> blurred = gaussian_2d(impulse, 1.0)
    >>> blurred.shape, round(float(blurred.sum()), 4), round(float(blurred[4, 4]), 3)
    ((9, 9), 1.0, 0.159)
    """
    if sigma <= 0:
        return image.copy()
    radius = max(int(np.ceil(truncate * sigma)), 1)
    return cv2.GaussianBlur(
        image, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REPLICATE
    )


__all__ = [
    "clipped_zoom",
    "disk_kernel",
    "filter_each",
    "fog",
    "frost",
    "frost_directory",
    "frost_textures",
    "gaussian_2d",
    "from_unit",
    "local_shuffle",
    "luminance",
    "mean_contrast",
    "motion_kernel",
    "pixelate",
    "plasma_fractal",
    "random_affine_jitter",
    "resize_2d",
    "shot_noise",
    "snow",
    "spatter",
    "to_unit",
    "zoom_blur",
]
