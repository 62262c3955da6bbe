"""Imports upstream imgaug 0.4.0 on NumPy 2 / OpenCV 5 without patching numpy.

imgaug 0.4.0 (the last release) has three incompatibilities with the stack
this library runs on, all measured here:

1. ``imgaug/imgaug.py`` reads ``np.sctypes`` at import time; NumPy 2 removed
   it, so ``import imgaug`` raises ``AttributeError``.
2. ``imgaug/parameters.py`` uses ``np.complex`` (removed in NumPy 1.24) when
   sampling frequency noise, so ``Clouds``, ``Fog`` and
   ``BlendAlphaFrequencyNoise`` fail at call time.
3. ``ElasticTransformation._map_coordinates`` hands float64 maps to
   ``cv2.convertMaps``, which OpenCV >= 4.14 (and 5) reject.

The fixes are scoped so that the user's ``numpy`` module is left exactly as it
was:

1. ``np.sctypes`` is added only for the duration of ``import imgaug`` (under a
   lock) and deleted again afterwards if it was absent before.
2. ``imgaug.parameters`` (the only module using ``np.complex``) gets its own
   module object :class:`_NumpyWithComplex` as its ``np`` global: it forwards
   every attribute to the real numpy and adds ``complex``. Nothing else sees
   it.
3. :class:`ElasticTransformation` subclasses imgaug's augmenter and casts the
   shift maps to float32 before calling the original implementation.

Everything else in this package imports imgaug through this module
(``from keras_robust.corruptions._imgaug import iaa``).
"""
from __future__ import annotations

import threading
import types
import warnings
from typing import Any

import numpy as np

_IMPORT_LOCK = threading.Lock()

# What ``np.sctypes`` held on NumPy 1.x, rebuilt from NumPy 2's scalar types.
_SCTYPES = {
    "int": [np.int8, np.int16, np.int32, np.int64],
    "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
    "float": [np.float16, np.float32, np.float64, np.longdouble],
    "complex": [np.complex64, np.complex128, np.clongdouble],
    "others": [bool, object, bytes, str, np.void],
}


class _NumpyWithComplex(types.ModuleType):
    """A stand-in for ``numpy`` in one module's globals, adding ``complex``.

    Attribute reads fall through to the real numpy module (and are cached on
    first use), so the module that holds this object behaves exactly as
    before except that ``np.complex`` (the builtin ``complex``, as in
    NumPy < 1.24) resolves.
    """

    complex = complex

    def __init__(self) -> None:
        super().__init__("numpy", "numpy with the NumPy<1.24 alias `complex`")

    def __getattr__(self, attr: str) -> Any:
        value = getattr(np, attr)
        setattr(self, attr, value)
        return value


def _import_imgaug() -> types.ModuleType:
    with _IMPORT_LOCK:
        added = not hasattr(np, "sctypes")
        if added:
            np.sctypes = _SCTYPES  # type: ignore[attr-defined]
        try:
            import imgaug  # noqa: F401  (the import is the point)
            import imgaug.augmenters  # noqa: F401
            import imgaug.parameters as parameters
        finally:
            if added and hasattr(np, "sctypes"):
                del np.sctypes
        if not hasattr(parameters.np, "complex"):
            parameters.np = _NumpyWithComplex()
    return imgaug


ia = _import_imgaug()
iaa = ia.augmenters
iap = ia.parameters
Augmenter = iaa.meta.Augmenter

# imgaug's JpegCompression reads its result back through imageio's v2 API,
# which warns twice per image on imageio >= 2.28. Silence exactly those two
# messages (the first only when raised from imgaug's code).
warnings.filterwarnings(
    "ignore", message="Starting with ImageIO v3", category=DeprecationWarning, module=r"imgaug\."
)
warnings.filterwarnings("ignore", message="`pilmode` is deprecated", category=DeprecationWarning)


class ElasticTransformation(iaa.ElasticTransformation):
    """imgaug's ``ElasticTransformation`` with float32 shift maps.

    Identical to ``imgaug.augmenters.ElasticTransformation`` (same arguments,
    same random draws) except that the displacement maps are cast to float32
    before remapping, which ``cv2.convertMaps`` requires in OpenCV >= 4.14.

    Example:

    >>> aug = ElasticTransformation(alpha=3.0, sigma=1.0, mode="reflect")
    >>> aug(images=np.zeros((2, 32, 32, 3), np.uint8)).shape
    (2, 32, 32, 3)
    """

    @classmethod
    def _map_coordinates(cls, image, dx, dy, order=1, cval=0, mode="constant"):
        return super()._map_coordinates(
            image,
            np.asarray(dx, dtype=np.float32),
            np.asarray(dy, dtype=np.float32),
            order=order,
            cval=cval,
            mode=mode,
        )


__all__ = ["ia", "iaa", "iap", "Augmenter", "ElasticTransformation"]
