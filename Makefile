# Two commands: `make demo` (the main job, end to end, offline) and `make test`.
# Each creates .venv and installs what it needs on a fresh machine.
# tools/install_venv.py: pip (upgraded) resolves once, then unpacks the wheels (PyTorch's CUDA build: 2.9 GB of
# them) in parallel pip processes: 35 s against 46 s for one `pip install -e .[test]` here
# (benchmarks/setup_speed.py), falling back to that one where it cannot.
# --no-compile: pip would byte-compile every installed module (torch's and Ray's thousands: about 30 s of a
# fresh setup here); Python compiles the few each process imports on first use instead (the import check below
# does torch's and torch._dynamo's (torchvision and torch.optim import it; the tests use both), before the
# tests' processes start).

# Python writes the bytecode of what it imports (into .venv and the ignored __pycache__ folders), whatever the
# shell says: with PYTHONDONTWRITEBYTECODE set (as on some of this project's hosts), every one of the suite's
# interpreters compiled torch from source again, about 5 CPU-s each (benchmarks/RESULTS.md, nineteenth session).
unexport PYTHONDONTWRITEBYTECODE

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test venv data bench docs clean

# PyTorch's build with CUDA (the one pip installs here; torchvision needs it) takes about 5.6 GiB in .venv: on a
# fuller disk pip stops halfway with a traceback of its own, so a new .venv checks the disk it goes on first
# and says so in one line
SETUP_GIB ?= 6.5
DISK_SHORT := make: setting up $(VENV) needs about $(SETUP_GIB) GiB free for PyTorch and its CUDA libraries
$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -c "import shutil, sys; from pathlib import Path; v = Path('$(VENV)').absolute(); \
	  free = shutil.disk_usage(next(p for p in (v, *v.parents) if p.exists())).free / 2**30; \
	  sys.exit(0 if free >= $(SETUP_GIB) else '$(DISK_SHORT); %.1f GiB free here' % free)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install_venv.py --extras test
	$(BIN)/python -c "import neuralscale, torch, torchvision, torch._dynamo"
	touch $(STAMP)

venv: $(STAMP)

# Fashion-MNIST from Debian's package when it is not there yet (root or sudo);
# otherwise neuralscale looks in the data dir or downloads the upstream files.
data:
	@if [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  ($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
	    || echo "note: could not install Debian's dataset-fashion-mnist; neuralscale will try the data dir or a download"; \
	fi

# Descent + sweep (uniform, MorphNet, NeuralScale x 2 budgets x 2 seeds) + report on real
# Fashion-MNIST; see examples/demo.toml.  The last line printed is the report's path.
demo: venv data
	$(BIN)/neuralscale experiment examples/demo.toml

# two test processes (the tests train on one thread each, and this project's machines have two cores);
# worksteal: a process that runs out of tests takes some of the other's, so neither idles at the end
test: venv
	$(BIN)/python -m pytest -n 2 --dist worksteal

# the API reference, from the docstrings (pdoc), into docs/api/: open docs/api/index.html
docs: venv
	$(BIN)/python docs/api.py

bench: venv
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache docs/api
