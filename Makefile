# edgec — the two set-up commands are `make demo` and `make test`.
# Both install what is missing (apt packages as root, then the virtualenv) first.

SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm stm32flash build-essential
PYTHON ?= python3
JOBS  ?= 2

.PHONY: setup apt venv test demo examples bench clean

setup: apt venv

# Idempotent: only calls apt-get when a package is missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: apt packages missing ($$missing) and not root"; exit 2; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]' --config-settings editable_mode=compat
	@touch $@

venv: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q -rs tests

demo: setup
	$(PY) -m edgec.demo

# Re-export the example models (needs torch; the exported .onnx files are committed).
examples: setup
	$(PIP) install -q -e '.[examples]'
	cd examples && for s in make_*.py; do ../$(PY) $$s || exit 1; done

bench: setup
	$(PY) bench/compile_time.py

clean:
	rm -rf build .pytest_cache
