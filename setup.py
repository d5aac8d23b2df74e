"""Packages of the wheel: every package under qnas/, plus the top-level search_spaces/ as qnas.search_spaces.

pyproject.toml holds everything else. Its `packages.find` cannot add a package that lives
outside qnas/, and a fixed list would miss the next subpackage; here discovery stays
automatic and the design spaces stay at the top of the repository, where users look for
them, while qnas/space.py finds them inside an installed wheel.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["qnas", "qnas.*"]), "qnas.search_spaces"],
    package_dir={"qnas.search_spaces": "search_spaces"},
)
