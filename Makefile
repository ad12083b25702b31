# The README's commands. Each does its own set-up: missing Debian packages are installed
# (as root) or named with the exact apt-get line.
PYTHON ?= /usr/bin/python3
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps deps-test build test test-unit run bench clean

all: build

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(PYTHON) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)
	@scripts/install-python.sh $(BUILD_DIR) $(PYTHON)

# Every test: C++ (unit, statistical, integration), Python and notebooks.
test: deps-test $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)
	@scripts/install-python.sh $(BUILD_DIR) $(PYTHON)
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)
	scripts/run-python-tests.sh $(BUILD_DIR) $(PYTHON)

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

# The main job with its built-in defaults.
run: build
	$(BUILD_DIR)/bin/pcmsim device

bench: build
	@for b in $(BUILD_DIR)/bin/bench_*; do echo "== $$b"; $$b; done

clean:
	rm -rf $(BUILD_DIR)
