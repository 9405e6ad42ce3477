# Two commands do all the set-up (README): `make demo` and `make test`.
# Each environment is created on first use and reused afterwards, installed with
# the pins in requirements/ (`pip install -c`): the versions the suite passed with.
# `make lock` refreshes them (README, "Refreshing the pins").
#   .venv/                the backend (torch, models)         Python 3.11+    requirements/constraints.txt
#   .venv-blender/        Blender as a module, newest line    bpy 5.0         requirements/blender.txt
#   .venv-blender-4.2/    Blender 4.2 LTS, for the tests      bpy 4.2         requirements/blender.txt

PYTHON ?= python3.11
BPY_VERSION ?= 5.0.1
BPY42_VERSION ?= 4.2.23

VENV := .venv
BVENV := .venv-blender
BVENV42 := .venv-blender-4.2
PIP_QUIET := --quiet --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
BLENDER_IN := requirements/blender.in
BLENDER_CONSTRAINTS := requirements/blender.txt

.PHONY: demo test test-backend test-blender backend-env blender-env blender42-env lock bench bench-import bench-keyframes bench-video-render bench-video addon vendor clean

backend-env: $(VENV)/.installed
blender-env: $(BVENV)/.installed
blender42-env: $(BVENV42)/.installed

$(VENV)/.installed: pyproject.toml setup.py $(CONSTRAINTS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) -e ".[backend,test]" -c $(CONSTRAINTS)
	touch $@

# A real Blender keeps its own Python: the add-on side gets only bpy, pyzmq, msgpack
# (and numpy<2, pytest: requirements/blender.in).
$(BVENV)/.installed: $(BLENDER_IN) $(BLENDER_CONSTRAINTS)
	test -x $(BVENV)/bin/python || $(PYTHON) -m venv $(BVENV)
	$(BVENV)/bin/pip install $(PIP_QUIET) "bpy==$(BPY_VERSION)" -r $(BLENDER_IN) -c $(BLENDER_CONSTRAINTS)
	touch $@

$(BVENV42)/.installed: $(BLENDER_IN) $(BLENDER_CONSTRAINTS)
	test -x $(BVENV42)/bin/python || $(PYTHON) -m venv $(BVENV42)
	$(BVENV42)/bin/pip install $(PIP_QUIET) "bpy==$(BPY42_VERSION)" -r $(BLENDER_IN) -c $(BLENDER_CONSTRAINTS)
	touch $@

# Resolve every environment afresh (throw-away venvs, today's releases) and rewrite
# the pins; then `make test` on a fresh clone before committing them (README).
lock:
	$(PYTHON) requirements/lock.py --python $(PYTHON) --bpy $(BPY_VERSION) --bpy $(BPY42_VERSION)

# Each pytest session alone makes its own cache folder (tests/conftest.py).
test-backend: backend-env
	$(VENV)/bin/python -m pytest tests --ignore=tests/blender -q

# The add-on in real Blender, on both lines: installed from a freshly built zip,
# against a real backend subprocess (tests/blender/conftest.py).
test-blender: backend-env blender-env blender42-env
	$(BVENV)/bin/python -m pytest tests/blender -q
	$(BVENV42)/bin/python -m pytest tests/blender -q

# The whole suite with one empty cache folder shared by its three sessions (Anny's
# cache is built once per run, not three times), removed afterwards: nothing comes
# from a previous run or from HOME.
test: backend-env blender-env blender42-env
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/avatarforge-test-XXXXXX") && trap 'rm -rf "$$dir"' EXIT && \
	echo "test caches: $$dir (AVATARFORGE_TEST_CACHE)" && \
	AVATARFORGE_TEST_CACHE="$$dir" $(MAKE) --no-print-directory test-backend test-blender

# bench/text_sets.py runs every text prompt set, dev and hold-out (README, Benchmarks);
# it comes last because it fails while a hold-out set is missing or not held out.
bench: backend-env
	$(VENV)/bin/python bench/protocol.py
	$(VENV)/bin/python bench/body.py
	$(VENV)/bin/python bench/text_avatar.py
	$(VENV)/bin/python bench/motion_import.py
	$(VENV)/bin/python bench/text_sets.py

# The add-on's installable zips (dist/), one per Blender line.
addon: blender-env
	$(BVENV)/bin/python build_addon.py

# The add-on's copy of protocol/, for running it from the source tree.
vendor: blender-env
	$(BVENV)/bin/python build_addon.py --vendor

# The whole main job headless: start a backend (free port, store in out/store),
# generate the default avatar in Blender (bpy wheel), save out/demo.blend,
# render out/demo.png with Cycles on the CPU, stop the backend.
demo: backend-env blender-env vendor
	mkdir -p out
	$(BVENV)/bin/python blender_addon/scripts/render_demo.py --backend-python $(VENV)/bin/python \
		--store out/store --blend out/demo.blend --png out/demo.png

bench-import: backend-env blender-env vendor
	$(BVENV)/bin/python bench/import_speed.py --backend-python $(VENV)/bin/python

# A 1,000-frame motion keyed onto the Anny rig (bulk F-curves); target < 1 s.
bench-keyframes: backend-env blender-env vendor
	$(BVENV)/bin/python bench/keyframe_import.py --backend-python $(VENV)/bin/python

# Video -> motion on Cycles renders of Anny (bench/render_clips.py renders each clip set once,
# ~20-40 min on 2 cores, cached by spec under VIDEO_CLIPS), then bench/video_to_motion.py scores
# them: MPJPE, PA-MPJPE, foot skate, jitter, fps. `--set holdout` scores the hold-out set once.
VIDEO_CLIPS ?= .cache/video-clips
bench-video-render: backend-env blender-env vendor
	nice -n 10 $(BVENV)/bin/python bench/render_clips.py --backend-python $(VENV)/bin/python \
		--spec bench/data/video/dev.json --out $(VIDEO_CLIPS)/dev

bench-video: backend-env
	$(VENV)/bin/python bench/video_to_motion.py --set dev --clips $(VIDEO_CLIPS)/dev

clean:
	rm -rf dist out build *.egg-info blender_addon/protocol
