# One-command setup: every target creates or reuses .venv.
# On a machine without an NVIDIA GPU the CPU build of torch is pinned (2.13.0, no CUDA packages);
# where `nvidia-smi` finds a GPU the ordinary CUDA build is installed instead.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.vidiff-installed
APP_STAMP := $(VENV)/.vidiff-app-installed
TORCH_CPU ?= torch==2.13.0
TORCH_GPU ?= torch

.PHONY: setup setup-app demo serve test test-all lint format clean default-model trajectory-model camera-model keyframe-model gallery vae dit-model image-model models lineage vqvae leaderboard

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(PY) -m pip install -q "$(TORCH_GPU)"; \
	else \
	  $(PY) -m pip install -q "$(TORCH_CPU)"; \
	fi
	$(PY) -m pip install -q -e '.[dev,hf,camera,lora]'
	touch $(STAMP)

# The web app's extra (gradio), kept out of `setup` so that `make demo` stays light.
setup-app: $(APP_STAMP)

$(APP_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[app]'
	touch $(APP_STAMP)

demo: setup
	$(VENV)/bin/vidiff demo

serve: setup-app
	$(VENV)/bin/vidiff serve

test: setup setup-app
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

test-all: setup setup-app
	$(VENV)/bin/pytest -q -n 2 --dist loadfile -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The model shipped in vidiff/assets/default-model: train (resumable: rerun after a crash), export
# the teacher at float16 with 16 DPM++ steps at CFG 2, distil it to DEFAULT_STEPS DDIM steps with
# the CFG baked in (progressive rounds of 700 steps at a low learning rate with a long EMA;
# resumable), export the student at float16, refine its low-noise steps on data
# (configs/shapes-refine.yaml: squares square, triangles pointed; its steps and baked guidance
# kept), export that sampling from starting noise with 10% of its variance shared by all frames
# (less flicker), measure it with `vidiff eval --record` on 256 prompts per split (eval.json travels
# with the model and `vidiff demo` shows it), install. OMP_NUM_THREADS=1 for training suits 2
# shared cores. Figures: docs/default-model.md.
DEFAULT_RUN   ?= runs/default-model
DEFAULT_STEPS ?= 8
default-model: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/shapes-unet-tiny.yaml \
	  train.out_dir=$(DEFAULT_RUN) --resume
	$(VENV)/bin/vidiff export $(DEFAULT_RUN) -o $(DEFAULT_RUN)/teacher --dtype float16 --steps 16 --cfg 2
	$(VENV)/bin/vidiff distill $(DEFAULT_RUN)/teacher --config configs/shapes-unet-tiny.yaml \
	  --from-steps 16 --to-steps $(DEFAULT_STEPS) --steps-per-round 700 --lr 5e-5 --ema-decay 0.9995 \
	  --out $(DEFAULT_RUN)/distill --resume
	$(VENV)/bin/vidiff export $(DEFAULT_RUN)/distill/student-$(DEFAULT_STEPS) -o $(DEFAULT_RUN)/student \
	  --dtype float16
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/shapes-refine.yaml \
	  model.init=$(DEFAULT_RUN)/student train.out_dir=$(DEFAULT_RUN)/refine --resume
	$(VENV)/bin/vidiff export $(DEFAULT_RUN)/refine -o $(DEFAULT_RUN)/model --dtype float16 \
	  --noise-correlation 0.1
	$(VENV)/bin/vidiff eval --model $(DEFAULT_RUN)/model --num-videos 256 --record \
	  --out $(DEFAULT_RUN)/eval
	rm -rf vidiff/assets/default-model
	cp -r $(DEFAULT_RUN)/model vidiff/assets/default-model

# The shipped causal video VAE `vae-shapes` that the latent recipes name (`model.vae: vae-shapes` in
# configs/shapes-dit-tiny.yaml): train (resumable, ~1 h on one core), export, measure its latent
# scale, record its figures (eval.json), install it in vidiff/assets/vae-shapes. docs/latent-dit.md.
VAE_RUN ?= runs/vae-shapes
vae: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/vae-shapes.yaml train.out_dir=$(VAE_RUN) \
	  --resume
	$(VENV)/bin/vidiff export $(VAE_RUN) -o $(VAE_RUN)/model --dtype float16
	$(VENV)/bin/vidiff vae calibrate $(VAE_RUN)/model
	$(VENV)/bin/vidiff vae eval $(VAE_RUN)/model --seams --record
	rm -rf vidiff/assets/vae-shapes
	cp -r $(VAE_RUN)/model vidiff/assets/vae-shapes

# The shipped latent DiT `shapes-dit` (docs/latent-dit.md): configs/shapes-dit-tiny.yaml on 16x32x32
# clips at a constant learning rate (DIT_BASE_STEPS; resumable), exported, then
# configs/shapes-dit-sizes.yaml from it on five clip shapes while the rate cools to 0, exported at
# float16 sampling 8 Euler steps (no distillation: it holds its quality there), measured with
# `vidiff eval --record` on 256 prompts per split and per clip shape (benchmarks/native_sizes.py),
# installed. About 37 + 15 min of training on 2 cores, then 10 of measuring.
DIT_RUN        ?= runs/shapes-dit
DIT_BASE_STEPS ?= 6000
DIT_SHAPES     ?= 16x32x32 8x32x32 24x32x32 16x32x48 16x48x32 32x32x32 24x32x48 12x40x40 16x32x64
dit-model: setup
	OMP_NUM_THREADS=2 $(VENV)/bin/vidiff train configs/shapes-dit-tiny.yaml train.out_dir=$(DIT_RUN) \
	  train.steps=$(DIT_BASE_STEPS) train.ckpt_every=500 train.sample_every=0 --resume
	$(VENV)/bin/vidiff export $(DIT_RUN) -o $(DIT_RUN)/base
	OMP_NUM_THREADS=2 $(VENV)/bin/vidiff train configs/shapes-dit-sizes.yaml \
	  model.init=$(DIT_RUN)/base train.out_dir=$(DIT_RUN)/sizes --resume
	$(VENV)/bin/vidiff export $(DIT_RUN)/sizes -o $(DIT_RUN)/model --dtype float16 --steps 8
	$(VENV)/bin/vidiff eval --model $(DIT_RUN)/model --num-videos 256 --record --out $(DIT_RUN)/eval
	$(PY) benchmarks/native_sizes.py $(DIT_RUN)/model --shapes $(DIT_SHAPES) --num-videos 32 \
	  --json $(DIT_RUN)/sizes.json
	rm -rf vidiff/assets/shapes-dit
	cp -r $(DIT_RUN)/model vidiff/assets/shapes-dit

# The inflated image model that configs/shapes-unet-tiny-inflated.yaml starts from (`model.init:
# shapes-image-video`): configs/shapes-image-unet-tiny.yaml (unet-tiny on single frames; resumable),
# exported, inflated to 16 frames with identity temporal layers, installed as `shapes-image-video`.
IMAGE_RUN ?= runs/shapes-image
image-model: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/shapes-image-unet-tiny.yaml \
	  train.out_dir=$(IMAGE_RUN) --resume
	$(VENV)/bin/vidiff export $(IMAGE_RUN) -o $(IMAGE_RUN)/model --dtype float16
	rm -rf vidiff/assets/shapes-image-video
	$(VENV)/bin/vidiff inflate $(IMAGE_RUN)/model -o vidiff/assets/shapes-image-video --num-frames 16

# $(call grow,CONFIG,RUN): train configs/CONFIG.yaml into RUN (resumable) and export it at float16.
define grow
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/$(1).yaml train.out_dir=$(2) --resume
	$(VENV)/bin/vidiff export $(2) -o $(2)/model --dtype float16
endef

# The shipped control models (docs/control.md), each trained, exported, scored by its probe with the
# figures recorded in eval.json, and installed by name: `shapes-trajectory` (the default model grown
# by the trajectory conditioning; picked by `vidiff generate --trajectory`) and `textures-camera`
# (camera moves over photos: the recipe's 1,200 steps, then resumed to 2,400 -- the shipped run).
TRAJ_RUN   ?= runs/shapes-trajectory
CAMERA_RUN ?= runs/textures-camera
trajectory-model: setup
	$(call grow,shapes-trajectory,$(TRAJ_RUN))
	$(PY) benchmarks/control_probe.py trajectory --model $(TRAJ_RUN)/model --n 64 --seed 1 --record
	rm -rf vidiff/assets/shapes-trajectory
	cp -r $(TRAJ_RUN)/model vidiff/assets/shapes-trajectory

camera-model: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/textures-camera.yaml train.out_dir=$(CAMERA_RUN) --resume
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/textures-camera.yaml train.out_dir=$(CAMERA_RUN) train.steps=2400 --resume
	$(VENV)/bin/vidiff export $(CAMERA_RUN) -o $(CAMERA_RUN)/model --dtype float16
	$(PY) benchmarks/control_probe.py camera --model $(CAMERA_RUN)/model --n 60 --record
	rm -rf vidiff/assets/textures-camera
	cp -r $(CAMERA_RUN)/model vidiff/assets/textures-camera

# The shipped keyframe model for `vidiff generate --num-frames N --long keyframes` (docs/long-video.md):
# the default model grown by the stride conditioning and fine-tuned on bouncing clips at strides 1-4,
# measured by the long-video benchmark (its keyframe rows recorded in eval.json) and installed.
KEYFRAME_RUN ?= runs/shapes-keyframes
keyframe-model: setup
	$(call grow,shapes-keyframes,$(KEYFRAME_RUN))
	$(PY) benchmarks/long_video.py --frames 64 128 256 --prompts 4 \
	  --modes keyframes:$(KEYFRAME_RUN)/model --record $(KEYFRAME_RUN)/model
	rm -rf vidiff/assets/shapes-keyframes
	cp -r $(KEYFRAME_RUN)/model vidiff/assets/shapes-keyframes

# The shipped models: name, kind, frames x H x W, steps, size, recorded figures.
models: setup
	$(VENV)/bin/vidiff models

# The README's gallery: small GIFs (16 frames of 32x32) from the shipped model, two of them from
# held-out colour-shape pairs, and one image-to-video from a MovingShapes frame.
GALLERY ?= docs/gallery
gallery: setup
	$(VENV)/bin/vidiff generate "a red circle moving right" --seed 3 --out $(GALLERY)/red-circle-right.gif
	$(VENV)/bin/vidiff generate "a green square moving up" --seed 0 --out $(GALLERY)/green-square-up.gif
	$(VENV)/bin/vidiff generate "a blue circle moving down" --seed 0 --out $(GALLERY)/blue-circle-down.gif
	$(VENV)/bin/vidiff generate "a yellow triangle moving right" --seed 0 --out $(GALLERY)/yellow-triangle-right.gif
	$(VENV)/bin/vidiff data export shapes --n 1 --num-frames 1 --fmt png --out $(GALLERY)/first-frame
	$(VENV)/bin/vidiff generate "a magenta square moving up" --seed 0 \
	  --first-frame $(GALLERY)/first-frame/00000.png --out $(GALLERY)/magenta-square-from-image.gif

# The field's lineage beside diffusion (docs/leaderboard.md): train and export the video GAN and
# VideoGPT's two stages (each resumable), then `make leaderboard` scores them beside the shipped
# diffusion model with `vidiff eval` (N = 64 per split) and writes docs/leaderboard.md.
lineage: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/shapes-gan.yaml --resume
	$(VENV)/bin/vidiff export runs/shapes-gan -o runs/shapes-gan/model
	$(MAKE) vqvae
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/shapes-videogpt.yaml --resume
	$(VENV)/bin/vidiff export runs/shapes-videogpt -o runs/shapes-videogpt/model

# The VideoGPT's first stage, installed by name (configs/shapes-videogpt.yaml: model.vae shapes-vqvae).
vqvae: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/vidiff train configs/shapes-vqvae.yaml --resume
	$(VENV)/bin/vidiff export runs/shapes-vqvae -o vidiff/assets/shapes-vqvae

leaderboard: setup
	$(PY) benchmarks/leaderboard.py --num-videos 64

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
