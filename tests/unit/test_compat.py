"""robustbench 1.1.1 imports through filterlens.models.compat with the registry's packages."""

import sys


def test_robustbench_imports_with_autoattack_aliased_to_pyautoattack():
    from filterlens.models.compat import import_robustbench

    robustbench = import_robustbench()
    import robustbench.eval  # the module that does `from autoattack import AutoAttack`

    assert sys.modules["autoattack"].__name__ == "pyautoattack"
    assert robustbench.eval.AutoAttack is sys.modules["pyautoattack"].AutoAttack
    from robustbench.utils import load_model  # noqa: F401  (the loader the paper zoo uses)


def test_setuptools_still_provides_pkg_resources():
    import pkg_resources  # noqa: F401
