"""scipion-em-flexplugin: heterogeneous cryo-EM reconstruction as a Scipion plugin."""
import os
import re

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    with open(os.path.join(HERE, "flexplugin", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _readme():
    with open(os.path.join(HERE, "README.md")) as f:
        return f.read()


setup(
    name="scipion-em-flexplugin",
    version=_version(),
    description="Heterogeneous cryo-EM reconstruction (cryoDRGN, HetACUMN, cryoSPHERE, HetSIREN) for Scipion",
    long_description=_readme(),
    long_description_content_type="text/markdown",
    license="GPLv3+",
    python_requires=">=3.9",
    packages=[
        "flexplugin",
        "flexplugin.engine",
        "flexplugin.engine.io",
        "flexplugin.engine.geometry",
        "flexplugin.engine.methods",
        "flexplugin.engine.analysis",
        "flexplugin.protocols",
        "flexplugin.viewers",
    ],
    # protocols/ and viewers/ live at the top of the repository (design card) and are
    # discovered by Scipion as flexplugin.protocols / flexplugin.viewers.
    package_dir={
        "flexplugin": "flexplugin",
        "flexplugin.protocols": "protocols",
        "flexplugin.viewers": "viewers",
    },
    package_data={"flexplugin": ["protocols.conf", "templates/*.json.template"]},
    install_requires=["numpy>=1.21", "mrcfile>=1.4", "pyqtgraph>=0.13"],   # pyqtgraph: the Qt viewers
    extras_require={
        # The engine runs in its own environment; torch is installed first and pinned by the
        # installer (Makefile / Plugin.defineBinaries), any 2.x satisfies this range.
        "engine": ["torch>=2.0", "scipy>=1.7", "scikit-learn>=1.0", "tqdm", "gemmi>=0.6",
                   "umap-learn>=0.5", "matplotlib>=3.5"],
        "gui": ["PyQt5", "pyqtgraph>=0.13", "matplotlib>=3.5"],
        "test": ["pytest", "hypothesis"],
        "scipion": ["scipion-pyworkflow>=3.11", "scipion-em>=3.11", "scipion-em-relion"],
    },
    entry_points={
        "pyworkflow.plugin": ["flexplugin = flexplugin"],
        "console_scripts": ["flexplugin = flexplugin.engine.cli:main"],
    },
    classifiers=["Programming Language :: Python :: 3", "Topic :: Scientific/Engineering"],
)
