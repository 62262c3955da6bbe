"""Installs keras_robust: robust training and honest robustness evaluation for Keras 3."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version() -> str:
    with open(os.path.join(HERE, "keras_robust", "version.py")) as f:
        namespace: dict = {}
        exec(f.read(), namespace)
        return namespace["__version__"]


PLOTS = ["matplotlib>=3.8"]
FROST = ["imagecorruptions==1.1.2"]

setup(
    name="keras_robust",
    version=_version(),
    description=(
        "Adversarial and corruption robustness for Keras 3: BAT, M-TLAT, BPFC, AFS, "
        "data-centric enhancement, tf.function attacks and an honest robustness report."
    ),
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_robust", "keras_robust.*"]),
    python_requires=">=3.10",
    install_requires=[
        # The stack this library is built and measured on (see BUILD_NOTES.md).
        "tensorflow>=2.18,<3",
        "keras>=3.15,<4",
        "tensorflow-datasets>=4.9,<5",
        # imgaug 0.4.0 is the corruption engine; keras_robust/corruptions/_imgaug.py
        # makes exactly this release run on NumPy 2 and OpenCV 5 (see BUILD_NOTES.md).
        "imgaug==0.4.0",
        # NumPy 2 brings back np.bool, which imgaug's weather augmenters need.
        "numpy>=2.0,<3",
        "scipy>=1.11",
        "opencv-python>=4.10",
        "Pillow>=10",
        "absl-py>=2.0",
        # tensorflow-datasets imports it to download but does not declare it.
        "importlib_resources>=6.0",
    ],
    extras_require={
        # keras_robust.evaluate.plots and the AFS plots (imported only when a plot is asked for).
        "plots": PLOTS,
        # Only its frost photographs are used (the ImageNet-C / CIFAR-10-C frost corruption);
        # it pulls in scikit-image.
        "frost": FROST,
        "all": PLOTS + FROST,
        # The suite runs everything, plots and frost included; pytest-xdist runs it on two
        # processes (the README's command: `-n 2 --dist loadfile`).
        "test": ["pytest>=8", "pytest-xdist>=3.5", *PLOTS, *FROST],
        # This documentation site: `mkdocs serve`, `mkdocs build --strict` (see mkdocs.yml).
        "docs": ["mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10", "mkdocstrings[python]>=1.0,<2"],
        # Only for bench/attacks.py and bench/autoattack.py, which compare against other
        # toolkits (ART 1.20.1 measured; its AutoAttack imports multiprocess, undeclared).
        "bench": ["adversarial-robustness-toolbox>=1.17", "multiprocess>=0.70", "cleverhans>=4.0"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
