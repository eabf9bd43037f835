"""torchvision_native's pure-Python modules from the source tree, without its native part.

The packaging tools and tests/packaging use the recommender's names and rules
(python/torchvision_native/select.py) where no build exists: the package is registered
under a private name with its folder as search path, and its __init__ (which loads _C)
never runs.
"""
import importlib
import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "python" / "torchvision_native"
_NAME = "_torchvision_native_source"


def load(module="select"):
    if _NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_NAME, PACKAGE_DIR / "__init__.py",
                                                      submodule_search_locations=[str(PACKAGE_DIR)])
        sys.modules[_NAME] = importlib.util.module_from_spec(spec)  # registered, never executed
    return importlib.import_module(f"{_NAME}.{module}")
