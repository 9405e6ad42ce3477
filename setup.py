"""Maps the repository folders onto installed names.

The folders keep the product-card names (`protocol/`, `backend/`); installed they
live under the `avatarforge` namespace so they never clash with other
site-packages. pyproject.toml cannot express a computed package list, hence this.
"""
from setuptools import find_packages, setup

ROOTS = ("protocol", "backend")
packages = [f"avatarforge.{p}" for p in find_packages(include=[f"{r}{s}" for r in ROOTS for s in ("", ".*")])]
setup(packages=packages, package_dir={f"avatarforge.{r}": r for r in ROOTS})
