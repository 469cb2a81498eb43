# Two commands on a fresh machine: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.13.0's CPU wheel is on this machine's disk; elsewhere pip picks a build for your platform.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint install install-test clean train-fast train-adain ship-adain demo-cyclegan demo-transfer

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/impasto demo -o demo_output

lint: install-test
	$(BIN)/ruff check src tests $(wildcard benchmarks)

test: install-test lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo_output .pytest_cache

# The shipped fast-style model: 4 public-domain paintings, content = scikit-image photos (random crops),
# a width-8 network (3x fewer operations than width 16). Shipped: 900 steps, trained on a lent H100 in
# 330 s; the same command runs on a CPU (about 1.5 s/step here). Resumable: run it again and it
# continues from the newest checkpoint in build/fast_run.
FAST_STYLES := picabia_udnie matisse_woman_with_hat kandinsky_in_grey leger_contrast_of_forms
FAST_STEPS ?= 900
train-fast: install-test
	$(BIN)/python -c "from impasto.train.data import export_skimage_photos as e; e('build/skimage_photos')"
	mkdir -p build
	$(BIN)/impasto train fast-style $(foreach s,$(FAST_STYLES),-s src/impasto/assets/styles/$(s).jpg) \
	  --content-dir build/skimage_photos --val-dir src/impasto/assets/photos --size 256 --style-size 512 \
	  --width 8 --batch 8 --steps $(FAST_STEPS) --save-every 100 --lr 2e-3 --workers 2 \
	  --out build/fast.safetensors --run-dir build/fast_run $$( [ -d build/fast_run/checkpoints ] && echo --resume )
	cp build/fast.safetensors src/impasto/assets/models/fast4.safetensors

# The shipped AdaIN decoder: a skip decoder (AdaIN'd relu3_1/relu2_1 skips) trained on the corpus' 'train'
# rows (../shared/corpus: photos x paintings; validation on its 'val' rows), 128 px crops, batch 8.
# Resumable: run it again and it continues from build/adain_corpus_run. The decoder that is best on 'val'
# is written to build/adain_corpus_best.safetensors; `make ship-adain` copies it into the package once
# benchmarks/arbitrary_quality.py says it is better than the shipped one.
CORPUS ?= ../shared/corpus
ADAIN_STEPS ?= 20000
train-adain: install-test
	mkdir -p build
	$(BIN)/impasto train adain --content-dir $(CORPUS)/photos --style-dir $(CORPUS)/paintings \
	  --split-file $(CORPUS)/split.tsv --arch skip --skips relu3_1,relu2_1 --skip-scale 0.1 --slim 2 \
	  --strength-range 0.5,1 --style-weight 3 --size 128 --batch 8 --lr 2e-4 --steps $(ADAIN_STEPS) \
	  --save-every 50 --keep 3 --out build/adain_corpus.safetensors --run-dir build/adain_corpus_run \
	  --best-out build/adain_corpus_best.safetensors $$( [ -d build/adain_corpus_run/checkpoints ] && echo --resume )

ship-adain:
	cp build/adain_corpus_best.safetensors src/impasto/assets/models/adain.safetensors

# CycleGAN learns photo -> sepia print from two unpaired folders built offline; scored against the
# held-out ground truth. Resumable like the trainers above.
CYCLEGAN_STEPS ?= 1500
demo-cyclegan: install-test
	[ -d build/cyclegan_demo/A ] || $(BIN)/impasto data cyclegan-demo build/cyclegan_demo
	$(BIN)/impasto train cyclegan --a-dir build/cyclegan_demo/A --b-dir build/cyclegan_demo/B --size 128 \
	  --ngf 24 --blocks 4 --batch 2 --steps $(CYCLEGAN_STEPS) --save-every 250 --names photo,sepia \
	  --out build/cyclegan_run $$( [ -d build/cyclegan_run/checkpoints ] && echo --resume )
	$(BIN)/python benchmarks/cyclegan_demo.py --data build/cyclegan_demo --model build/cyclegan_run

# Fine-tuning a pretrained DCGAN / VAE vs training from scratch on a small new folder (LFW faces).
demo-transfer: install-test
	$(BIN)/python benchmarks/transfer_demo.py --work build/transfer
