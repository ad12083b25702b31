# The README's commands. Each does its own set-up: missing Debian packages are installed
# (as root) or named with the exact apt-get line.
PYTHON ?= /usr/bin/python3
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps deps-test build test test-unit test-sanitize run bench clean

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

# Every test: C++ (unit, statistical, integration), Python and notebooks. Tests run in parallel,
# so OpenMP threads wait passively instead of spinning on cores another test needs.
test: deps-test $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)
	@scripts/install-python.sh $(BUILD_DIR) $(PYTHON)
	cd $(BUILD_DIR) && OMP_WAIT_POLICY=passive ctest --output-on-failure -j $(JOBS)
	OMP_WAIT_POLICY=passive scripts/run-python-tests.sh $(BUILD_DIR) $(PYTHON)

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

# The C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer (any report fails the test).
# No Python module: the interpreter is not instrumented.
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
test-sanitize: deps-test
	cmake -S . -B $(BUILD_DIR)-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPCMSIM_BUILD_PYTHON=OFF \
	  -DPython3_EXECUTABLE=$(PYTHON) \
	  -DPCMSIM_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$(SANITIZE_FLAGS)" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
	cmake --build $(BUILD_DIR)-sanitize -j $(JOBS)
	cd $(BUILD_DIR)-sanitize && OMP_WAIT_POLICY=passive ASAN_OPTIONS=detect_leaks=0 \
	  ctest --output-on-failure -j $(JOBS)

# The main job: the hardware-aware ResNet of the zoo on the 10,000 Fashion-MNIST test images, PCM
# on 256x256 tiles, 8-bit converters, 1 s .. 1 year, GDC, 5 trials (pcmsim run's defaults), the
# 9-row stem held 16 times on its tile's idle rows (docs/mapping.md).
run: build
	@mkdir -p out
	$(BUILD_DIR)/bin/pcmsim run --layer-replicas stem:16 --out out/run.h5

bench: build
	@echo "== the speed table (docs/performance.md)"; bench/table.sh $(BUILD_DIR)
	@for b in $(BUILD_DIR)/bin/bench_*; do echo "== $$b"; $$b; done

clean:
	rm -rf $(BUILD_DIR)
