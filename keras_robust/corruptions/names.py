"""Names of the corruptions and the named subsets the papers use.

* :data:`NAMES`: every corruption in the catalogue.
* :data:`MTLAT_19`: the perturbation benchmark of M-TLAT (Laugros et al.,
  section 4.1): the 15 ImageNet-C corruptions plus occlusion, colour
  distortion, translation and rotation, in the column order of its Tables 1-2.
* :data:`DATACENTRIC_14`: the 14 corruptions the data-centric dataset
  enhancement (Zhong, Wu, Liu & Jiang, "Exploiting the Potential of
  Datasets: A Data-Centric Approach for Model Robustness", AAAI 2022) draws
  one of per image.

The data-centric paper names six of its 14 (rain, snow, frost, Gaussian blur,
Gaussian noise, elastic transformation) and, in its introduction, says the
corruptions "stem from geometric variations of cameras caused by rotation and
translation, or some environmental factors like rain, snow, noises": so
rotation and translation are in. The remaining six give every ImageNet-C
family a second member without near-duplicates of the ones already chosen:
impulse noise (a noise unlike Gaussian), motion blur (camera shake, unlike
Gaussian blur), fog (weather), and contrast, brightness and JPEG compression
(the digital distortions a camera pipeline produces). Shot and speckle noise
(close to Gaussian noise), the slow zoom blur and the ImageNet-C-only spatter
are left out.

Example:

>>> len(MTLAT_19), len(DATACENTRIC_14)
(19, 14)
"""
from __future__ import annotations

#: The 15 ImageNet-C / CIFAR-10-C benchmark corruptions, in ImageNet-C order.
IMAGENET_C_15: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)

#: The four held-out ImageNet-C / CIFAR-10-C corruptions.
IMAGENET_C_EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

#: The four corruptions M-TLAT adds to ImageNet-C.
MTLAT_EXTRA: tuple[str, ...] = ("occlusion", "color_distortion", "translation", "rotation")

#: Every corruption kind in the catalogue.
NAMES: tuple[str, ...] = IMAGENET_C_15 + IMAGENET_C_EXTRA + MTLAT_EXTRA + ("rain",)

#: The M-TLAT perturbation benchmark, in the paper's table order (fog before
#: frost there).
MTLAT_19: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "fog",
    "frost",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "occlusion",
    "color_distortion",
    "translation",
    "rotation",
)

#: The 14 corruptions of the data-centric enhancement (choice explained in the
#: module docstring).
DATACENTRIC_14: tuple[str, ...] = (
    "rain",
    "snow",
    "frost",
    "gaussian_blur",
    "gaussian_noise",
    "elastic_transform",
    "rotation",
    "translation",
    "impulse_noise",
    "motion_blur",
    "fog",
    "contrast",
    "brightness",
    "jpeg_compression",
)

__all__ = [
    "DATACENTRIC_14",
    "IMAGENET_C_15",
    "IMAGENET_C_EXTRA",
    "MTLAT_19",
    "MTLAT_EXTRA",
    "NAMES",
]
