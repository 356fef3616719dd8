# i2i — set up, demo, test, bench. Each target creates/refreshes the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
I2I := $(VENV)/bin/i2i
# CPU build of torch where there is no NVIDIA GPU: the PyTorch CPU index serves "+cpu" wheels,
# which pip prefers over PyPI's CUDA build of the same version.
TORCH := torch==2.13.0
TORCH_INDEX := $(if $(shell command -v nvidia-smi 2>/dev/null),,--extra-index-url https://download.pytorch.org/whl/cpu)
DEMO := demo_out

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --retries 1 --timeout 30 $(TORCH_INDEX) "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,openvino]"
	touch $@

demo: setup
	rm -rf $(DEMO)/run $(DEMO)/translated $(DEMO)/digits
	$(PY) demo/digits.py prepare $(DEMO)/digits
	$(I2I) train $(DEMO)/digits --out $(DEMO)/run --channels 1 --size 32 --load-size 32 --no-flip \
		--netG resnet_6blocks --ngf 16 --ndf 16 --batch-size 4 --steps 1500 \
		--save-every 500 --sample-every 250 --log-every 25 --workers 1
	$(I2I) generate $(DEMO)/run $(DEMO)/digits/testA $(DEMO)/translated
	$(PY) demo/digits.py grid $(DEMO)/digits/testA $(DEMO)/translated $(DEMO)/digits/testB $(DEMO)/demo_grid.png
	@echo "demo: see $(DEMO)/demo_grid.png, $(DEMO)/run/loss_curves.png and $(DEMO)/run/samples/"

test: setup
	$(PY) -m pytest -n 2 --durations=15 tests

clean:
	rm -rf $(VENV) $(DEMO) runs .pytest_cache
