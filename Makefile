# i2i — set up, demo, lint, test, bench. Each target creates/refreshes the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
I2I := $(VENV)/bin/i2i
# CPU build of torch where there is no NVIDIA GPU: the PyTorch CPU index serves "+cpu" wheels,
# which pip prefers over PyPI's CUDA build of the same version.
TORCH := torch==2.13.0
TORCH_INDEX := $(if $(shell command -v nvidia-smi 2>/dev/null),,--extra-index-url https://download.pytorch.org/whl/cpu)
DEMO := demo_out

.PHONY: setup demo lint test test-triton36 bench gpu-check gpu-data clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --retries 1 --timeout 30 $(TORCH_INDEX) "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,ray,openvino]"
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

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The Ray tests start a 3-node loopback cluster of their own: run alone, after the rest, so no
# xdist worker shares the machine's ports and cores with it.
RAY_TESTS := tests/runtime/test_ray_generate.py
test: setup
	$(PY) -m pytest -n 2 --durations=15 --ignore=$(RAY_TESTS) tests
	$(PY) -m pytest --durations=5 $(RAY_TESTS)
	$(MAKE) test-triton36

# The kernels under Triton 3.6 too (what GPU machines with torch 2.11 carry): its interpreter runs
# the kernel tests, and its compiler the ahead-of-time report for sm_90. Only triton (and NumPy
# 2.3: Triton 3.6's interpreter calls int() on 1-element arrays, an error since NumPy 2.4) is
# added, in its own folder that shadows the venv's through PYTHONPATH.
TRITON36 := .triton36
$(TRITON36)/.installed: Makefile
	$(PY) -m pip install -q --retries 1 --timeout 30 --no-deps --target $(TRITON36) "triton==3.6.0" "numpy==2.3.*"
	touch $@

test-triton36: setup $(TRITON36)/.installed
	PYTHONPATH=$(TRITON36) TRITON_INTERPRET=1 $(PY) -m pytest -n 2 -q -p no:cacheprovider \
		tests/kernels/test_instance_norm.py tests/kernels/test_conv.py
	PYTHONPATH=$(TRITON36) $(PY) -m i2i.kernels.aot --archs 90 --out $(TRITON36)/aot_report

# GPU acceptance on a bare GPU machine (torch + Triton preinstalled, no network): runs i2i from
# this checkout through PYTHONPATH (nothing to install; WHEELS=folder installs carried wheels
# first) and every check, or ONLY=step,step, into GPU_OUT.
GPU_OUT ?= benchmarks/results/gpu_check
DATA ?= ../shared/data
gpu-check:
	$(if $(WHEELS),$(PYTHON) -m pip install -q --no-index --no-deps $(WHEELS)/*.whl &&) \
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m i2i.benchmarks.gpu_check --out $(GPU_OUT) \
		--data $(DATA) $(if $(ONLY),--only $(ONLY))

# The real data gpu-check reads (20 photos and a clip), copied into .gpu-data to carry to a GPU machine.
gpu-data:
	mkdir -p .gpu-data/photo2monet/testA .gpu-data/video
	cp $$(ls $(DATA)/photo2monet/testA/*.jpg | head -20) .gpu-data/photo2monet/testA/
	cp $(DATA)/video/cup.mp4 .gpu-data/video/

clean:
	rm -rf $(VENV) $(DEMO) runs .pytest_cache $(TRITON36) .gpu-data
