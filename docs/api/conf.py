"""Sphinx configuration of the API reference, built from the docstrings.

``python -m sphinx -W -b html docs/api docs/api/_build`` (CI builds it with warnings as errors).
"""

project = "neurokit-sim"
author = "The neurokit-sim developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_typehints = "none"
napoleon_numpy_docstring = True
napoleon_google_docstring = True
suppress_warnings = ["ref.python"]  # "more than one target" for short names that several packages define
exclude_patterns = ["_build"]
html_theme = "alabaster"
