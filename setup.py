"""Package layout for setuptools: the distro definitions in repos/ ship as assembler.repos.

repos/ stays at the top of the checkout (people edit definitions and catalogs there);
a wheel carries it as package data, so an installed `assemble` finds its distros.
"""

from pathlib import Path

from setuptools import find_packages, setup

# Every folder of repos/ is a data-only package, so setuptools copies its files.
DATA = ["assembler.repos" + "".join("." + p for p in d.relative_to("repos").parts)
        for d in sorted([Path("repos"), *Path("repos").rglob("*")]) if d.is_dir()]

setup(
    packages=[*find_packages(include=["assembler*"]), *DATA],
    package_dir={"assembler.repos": "repos"},
    package_data={name: ["*"] for name in DATA},
)
