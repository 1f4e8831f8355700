VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench las-mini las-wide clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: setup
	$(PY) scripts/demo.py

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/map_scene.py
	$(PY) benchmarks/las_build.py

las-mini: setup
	$(PY) scripts/fetch_las_mini_sources.py
	$(VENV)/bin/landseg las build manifests/las-mini.yaml -o build/las-mini
	$(VENV)/bin/landseg las info build/las-mini --markdown docs/las-mini.md --png docs/las-mini-locations.png > /dev/null

las-wide: setup
	$(PY) scripts/fetch_las_wide_sources.py
	$(VENV)/bin/landseg las build manifests/las-wide.yaml -o build/las-wide
	$(VENV)/bin/landseg las info build/las-wide --markdown docs/las-wide.md --png docs/las-wide-locations.png > /dev/null

clean:
	rm -rf $(VENV) .cache demo-output
