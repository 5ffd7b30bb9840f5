"""Build the API reference from the docstrings (pdoc), into docs/api/ (not committed): `make docs`.

Every public module of the package is rendered (not the command line's, `__main__`, nor private ones);
`neuralscale` itself documents what `import neuralscale as ns` offers. A warning of pdoc's (a reference it
cannot resolve, a module that fails to import) fails the build: tests/test_readme.py builds it that way.

    python docs/api.py [--out DIR]
"""

from __future__ import annotations

import argparse
import pkgutil
import sys
import warnings
from pathlib import Path


def modules() -> list[str]:
    import neuralscale
    names = ["neuralscale"]
    for m in pkgutil.iter_modules(neuralscale.__path__, "neuralscale."):  # pdoc walks subpackages itself
        leaf = m.name.rsplit(".", 1)[-1]
        if not leaf.startswith("_") and m.name not in ("neuralscale.cli",):
            names.append(m.name)
    return names


def build(out: Path, source: bool = True) -> Path:
    """Render every module into `out` (with each function's source unless not `source`); returns its index."""
    import pdoc
    import pdoc.render
    pdoc.render.configure(docformat="google", footer_text="neuralscale API reference (built by `make docs`)",
                          search=True, show_source=source)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning is a broken reference: fail the build instead
        # ... except that the package's page adds the submodules named in its __all__ (space, train) itself
        warnings.filterwarnings("ignore", message="The module specification .* adds a module named")
        pdoc.pdoc(*modules(), output_directory=out)
    return out / "index.html"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "api")
    args = p.parse_args(argv)
    index = build(args.out)
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
