"""Recipes derived from swebench's published specifications (protege/env/data/swebench_specs.json)."""

from __future__ import annotations

import json

import pytest

from protege.env.swebench_local import env_script, instance_script
from protege.env.swebench_recipes import (
    REFUSED,
    SPECS_FILE,
    NoRecipe,
    derive_recipe,
    load_specs,
    supported_repos,
)

VERIFIED_REPOS = {"django/django", "sympy/sympy", "sphinx-doc/sphinx", "pytest-dev/pytest", "pylint-dev/pylint",
                  "pylint-dev/astroid", "psf/requests", "pallets/flask", "marshmallow-code/marshmallow",
                  "pydicom/pydicom", "sqlfluff/sqlfluff", "pvlib/pvlib-python", "pydata/xarray", "mwaskom/seaborn"}


def test_specs_file_names_its_source():
    data = json.loads(SPECS_FILE.read_text())
    assert data["source"]["package"] == "swebench" and data["source"]["version"] == "4.1.0"
    assert len(data["source"]["wheel_sha256"]) == 64
    assert set(data["specs"]) >= VERIFIED_REPOS


def test_every_issue_repo_has_recipes_for_every_version():
    assert set(supported_repos()) >= VERIFIED_REPOS
    specs = load_specs()
    for repo in VERIFIED_REPOS:
        for version in specs["specs"][repo]:
            recipe = derive_recipe(repo, version)
            assert recipe.python.count(".") == 1 and recipe.install


def test_translation_of_each_dependency_kind():
    sympy = derive_recipe("sympy/sympy", "1.7")  # conda packages -> pip
    assert (sympy.deps, sympy.packages) == ("packages", ("mpmath", "flake8"))
    assert sympy.pip_packages == ("mpmath==1.3.0", "flake8-comprehensions")
    pylint = derive_recipe("pylint-dev/pylint", "2.15")  # a requirements file read at the env commit
    assert (pylint.deps, pylint.reqs_paths) == ("requirements", ("requirements_test.txt",))
    xarray = derive_recipe("pydata/xarray", "2022.06")
    assert xarray.deps == "environment.yml" and "numpy==1.23.0" in xarray.pip_packages
    sphinx = derive_recipe("sphinx-doc/sphinx", "3.5")  # pre-install lines kept in order
    assert sphinx.pre_install[0] == "sed -i 's/pytest/pytest -rA/' tox.ini" and len(sphinx.pre_install) == 9
    # tox --current-env runs a link to the venv's python, which starts without the venv: PYTHONPATH
    assert sphinx.eval_commands[-1].startswith("export PYTHONPATH=") and not sympy.eval_commands
    django = derive_recipe("django/django", "3.0")  # root-only lines named, not run
    assert django.eval_commands == ("export LANG=en_US.UTF-8", "export LANGUAGE=en_US:en", "export LC_ALL=en_US.UTF-8")
    assert any("locale-gen" in n for n in django.notes)
    pydicom = derive_recipe("pydicom/pydicom", "2.1")  # an override, with its reason
    assert pydicom.pip_packages[-1] == "pytest<8" and any("nose-style" in n for n in pydicom.notes)


def test_scripts_follow_swebench_order():
    recipe = derive_recipe("sympy/sympy", "1.7")
    script = env_script(recipe, "/py/bin/python3.9", requirements="a==1\n")
    order = [script.index(s) for s in ("-m venv", "-r \"$HOME/requirements.txt\"", "install mpmath flake8", "mpmath==1.3.0")]
    assert order == sorted(order)
    assert instance_script(derive_recipe("sphinx-doc/sphinx", "3.5")).index("tox.ini") < \
        instance_script(derive_recipe("sphinx-doc/sphinx", "3.5")).index("pip install -e .[test]")


def test_refused_and_unknown_are_clear():
    for repo, why in REFUSED.items():
        with pytest.raises(NoRecipe, match="not graded locally"):
            derive_recipe(repo, "1.0")
        assert why
    with pytest.raises(NoRecipe, match="no specification.*'pallets/flask', version '0.1'.*2.0"):
        derive_recipe("pallets/flask", "0.1")
    with pytest.raises(NoRecipe, match="not in swebench's Python specs"):
        derive_recipe("someone/else", "1.0")


def test_environment_yml_installs_under_swebench_pins():
    """Pins constrain the environment.yml step only: xarray 0.12's setup_requires (setuptools_scm)
    wants a newer `packaging` than swebench's pin when the repository itself installs."""
    xarray = derive_recipe("pydata/xarray", "2022.09")
    script = env_script(xarray, "/py/bin/python3.10", requirements="dask\n")
    assert "numpy==1.23.0" in script.split('> "$HOME/pins.txt"')[0].splitlines()[-1]
    assert 'pip install -r "$HOME/requirements.txt" -c "$HOME/pins.txt"' in script
    assert "pins.txt" not in instance_script(xarray) and xarray.constraints == ("numpy<2",)
