# glimpse_ros developer commands. `make setup` is idempotent; every other target depends on it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export OMP_NUM_THREADS ?= 2

.PHONY: setup test test-fast lint demo demo-model bench bench-node reliability stats clean \
	gpu-check

setup: $(STAMP)

$(STAMP): requirements-cpu.txt requirements-dev.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-cpu.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Three pytest processes. The training tests fork (DataLoader workers), and a fork() after
# OpenVINO/NNCF (runtime precision tests) or rclpy (ROS tests) had started their threads in the
# same process ended in a segmentation fault of the worker or of pytest itself; separate
# processes keep those libraries out of the forking one.
ROS_TESTS := test/test_ros_*.py test/test_reliability_*.py
TRAINING_TESTS := test/test_training_*.py

test: setup
	$(PY) -m pytest -q -ra --durations=10 \
		$(foreach t,$(ROS_TESTS) $(TRAINING_TESTS),--ignore-glob='$(t)')
	$(PY) -m pytest -q -ra --durations=10 $(TRAINING_TESTS)
	$(PY) -m pytest -q -ra --durations=10 $(ROS_TESTS)

# On a CUDA machine (CUDA build of torch + tensorrt, docs/training.md "GPU setup"); writes gpu_check.json.
gpu-check: setup
	GPU_CHECK_STRICT=1 $(PY) -m pytest -q -ra -m gpu test/test_gpu_check.py

test-fast: setup
	$(PY) -m pytest -q -ra -m "not slow"

lint: setup
	$(PY) -m flake8 glimpse_ros training launch test setup.py

demo: setup
	$(PY) -m glimpse_ros.demo

bench: setup
	$(PY) -m glimpse_ros.bench --out bench.json

bench-node: setup
	$(PY) -m glimpse_ros.bench.node --out bench_node.json

reliability: setup
	$(PY) -m glimpse_ros.tools.reliability --out reliability.json

# Re-train the shipped (causal) demo model and the symmetric one on the same budget on CPU
# (~35 min on 2 cores); see models/demo/manifest.json.
demo-model: setup
	$(PY) -m training.demo --videos 1800 --seed 0 --epochs-global 5 --epochs-full 16 --compare-padding \
		--lr-continue 0.0002 --head-lr 0.001 --head-warmup 4 --grad-clip 5.0

stats: setup
	$(PY) -m glimpse_ros.model.stats

clean:
	rm -rf $(VENV) .venv-runtime build *.egg-info demo_out .pytest_cache
