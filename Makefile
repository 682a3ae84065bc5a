# One command to test, one to run: each target creates .venv and installs the project when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The pin sits in the same pip command as the project, so pip cannot pick another torch for the open range in
# pyproject.toml. From PyPI, torch==2.13.0 is the default build: on Linux the CUDA one (several GB with its NVIDIA
# libraries), right for GPU machines. For the small CPU-only build, install torch from PyTorch's CPU index first:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_PIN ?= torch==2.13.0
TORCH_INDEX ?=
# glibc re-maps large tensors on every allocation without these (a 4x256 step: 3.9 s -> 2.4 s on 2 cores).
export MALLOC_MMAP_THRESHOLD_ ?= 17179869184
export MALLOC_TRIM_THRESHOLD_ ?= 17179869184

.DEFAULT_GOAL := help
.PHONY: help install quickstart test test-fast bench readme-bench readme-demo clean demo demo-avx2 demo-analysis simcot-cpu tensorboard train-prosqa train-prontoqa train-gsm8k table-prosqa table-prontoqa table-gsm8k report gpu-check screenshots
GPUS   ?= 1
METHOD ?= coconut
SEEDS  ?= 0,1,2
# More than one GPU means DDP; the experiment files default to 4 GPUs with DDP.
TRAIN_ARGS = trainer.devices=$(GPUS) $(if $(filter 1,$(GPUS)),trainer.strategy=auto,trainer.strategy=ddp)

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# The distribution is coconut-latent (PyPI's `coconut` is another project); an install made before the rename,
# under the name coconut, is removed first so that two distributions do not claim the package and the command.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if $(PY) -m pip show coconut 2>/dev/null | grep -q '^Summary: Train language models'; then \
		$(PY) -m pip uninstall --quiet --yes coconut; fi
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet '$(TORCH_PIN)' --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e '.[dev]' '$(TORCH_PIN)'
	touch $@

install: $(VENV)/.installed  ## create .venv, install coconut-latent (editable) and torch 2.13.0; then: .venv/bin/coconut

# The first run to try: refused when runs/quickstart/quickstart holds one, unless OVERWRITE=true.
quickstart: $(VENV)/.installed  ## a first COCONUT run on a CPU in about 2 minutes, then where to look [OVERWRITE=true]
	$(VENV)/bin/coconut quickstart $(if $(OVERWRITE),overwrite=$(OVERWRITE),)

test: $(VENV)/.installed  ## run the whole test suite
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed  ## run the tests not marked slow
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed  ## benchmark the latent engine against a plain model (prints a table)
	$(VENV)/bin/coconut bench

clean:  ## remove build outputs and caches (keeps .venv and runs/)
	rm -rf build dist *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

readme-bench: $(VENV)/.installed  ## re-measure the benchmark tables in docs/bench.md (about 5 minutes)
	$(PY) tools/update_readme.py bench default --jacobi-iterations 6 --fsdp-ranks 2
	$(PY) tools/update_readme.py bench vocab64 --vocab 64
	$(PY) tools/update_readme.py bench vocab512 --vocab 512

readme-demo: $(VENV)/.installed  ## copy the last make demo's table, plot and thought reading into README.md
	$(PY) tools/update_readme.py demo

# The command's own three seeds unless SEEDS is given on the command line (SEEDS=0: one seed, a third of the time).
demo: $(VENV)/.installed  ## the whole idea on a CPU: CoT, COCONUT, No-CoT at equal steps, 3 seeds; runs/demo/results.md ([SEEDS=0] [OVERWRITE=true])
	$(VENV)/bin/coconut demo $(if $(OVERWRITE),overwrite=$(OVERWRITE),) \
		$(if $(filter command line environment,$(origin SEEDS)),seeds=$(SEEDS),)

# The demo with an AVX2-only processor's arithmetic (torch, MKL and oneDNN kernels) on this machine, beside
# runs/demo on the same data: whether the table's order survives another processor (docs/demo.md).
demo-avx2: $(VENV)/.installed  ## make demo again with an AVX2-only processor's kernels: runs/demo_avx2/results.md ([SEEDS=0,1,2])
	ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 \
		$(VENV)/bin/coconut demo output_dir=runs/demo_avx2 data.data_dir=runs/demo/data_phrase \
		$(if $(filter command line environment,$(origin SEEDS)),seeds=$(SEEDS),)

tensorboard: $(VENV)/.installed  ## TensorBoard over runs/ (curriculum stages, losses, accuracy, samples)
	$(VENV)/bin/tensorboard --logdir runs --bind_all

train-prosqa: $(VENV)/.installed  ## paper reproduction on GPUs: make train-prosqa [METHOD=coconut] [GPUS=4]
	$(VENV)/bin/coconut train prosqa_$(METHOD) $(TRAIN_ARGS)

train-prontoqa: $(VENV)/.installed  ## paper reproduction on GPUs: make train-prontoqa [METHOD=...] [GPUS=4]
	$(VENV)/bin/coconut train prontoqa_$(METHOD) $(TRAIN_ARGS)

train-gsm8k: $(VENV)/.installed  ## paper reproduction on GPUs (needs data/gsm8k/*.txt): make train-gsm8k [GPUS=4]
	$(VENV)/bin/coconut train gsm8k_$(METHOD) $(TRAIN_ARGS)

table-prosqa: $(VENV)/.installed  ## every Table 1 row on ProsQA for each seed, then the report: make table-prosqa [SEEDS=0,1,2] [GPUS=4]
	$(VENV)/bin/coconut table prosqa $(TRAIN_ARGS) --seeds $(SEEDS)

table-prontoqa: $(VENV)/.installed  ## the same for ProntoQA
	$(VENV)/bin/coconut table prontoqa $(TRAIN_ARGS) --seeds $(SEEDS)

table-gsm8k: $(VENV)/.installed  ## the same for GSM8k (COCONUT starts from the same seed's CoT run)
	$(VENV)/bin/coconut table gsm8k $(TRAIN_ARGS) --seeds $(SEEDS)

report: $(VENV)/.installed  ## Table 1 from every finished run under runs/ (runs/report/results_table.*)
	$(VENV)/bin/coconut report runs

simcot-cpu: $(VENV)/.installed  ## step supervision (SIM-CoT) on a CPU: COCONUT with and without it, 3 seeds (docs/simcot.md) [SEEDS=0,1,2] [C=3]
	$(PY) tools/simcot_cpu.py --seeds $(SEEDS) --c $(or $(C),3)

demo-analysis: $(VENV)/.installed  ## look inside the demo's thoughts: train demo_analysis (p=0.3 stage mixing) and analyse it (~10 min)
	test -f runs/demo/demo_analysis/results.json || $(VENV)/bin/coconut train demo_analysis \
		$(if $(wildcard runs/demo/demo_analysis/checkpoints/last.ckpt),resume=runs/demo/demo_analysis/checkpoints/last.ckpt,)
	$(VENV)/bin/coconut analyze demo_analysis ckpt=runs/demo/demo_analysis/checkpoints/stage3.ckpt

gpu-check: $(VENV)/.installed  ## on a CUDA machine: GPT-2-small bf16 bench, Jacobi vs sequential, bf16 and FSDP training (runs/gpu_check)
	$(PY) tools/gpu_check.py --out runs/gpu_check

# Needs a Chromium on the PATH (Debian: apt-get install chromium); Playwright drives it, installed on first use.
SHOT_RUN ?= runs/quickstart
screenshots: $(VENV)/.installed  ## TensorBoard views of a run as PNGs in docs/images (headless Chromium): make screenshots [SHOT_RUN=runs/quickstart]
	$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install --quiet playwright
	$(PY) tools/screenshots.py $(SHOT_RUN) docs/images
