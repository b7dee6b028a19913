#!/bin/sh
# The refocus ablations of the README (thesis Tables 5.7-5.8 and Eq. 5.13), run from the repository root:
#
#   sh tools/refocus_ablations.sh pooling [STEPS]   # FSCA vs max vs mean pooling vs no consistency loss:
#                                                   # four runs from scratch, same data and schedule
#                                                   # (--steps 6000) stopped at STEPS (default 1800),
#                                                   # then `refocus eval --seed 2 --fs 1 3` of the
#                                                   # step-STEPS snapshots
#   sh tools/refocus_ablations.sh loss [STEPS]      # L1+SSIM vs WSI-DISTS vs WSI-DISTS+LSGAN: STEPS
#                                                   # (default 300) fine-tuning steps each from the
#                                                   # shipped weights, then the same evaluation
#
# Data: the first 4 training slides (`finefocus refocus data --slides 4`, into checkpoints/refocus/).
# Runs go to checkpoints/abl-<name>/ and resume after an interruption (run the same line again).
# Results: checkpoints/eval/ablation-<kind>-<STEPS>.json. About 25 min (pooling, 1800 steps, two
# runs at a time on 2 cores) or 15 min (loss, 300 steps) plus 6 min per evaluation.
set -e
kind=${1:?usage: tools/refocus_ablations.sh pooling|loss [STEPS]}
case $kind in pooling|loss) ;; *) echo "usage: tools/refocus_ablations.sh pooling|loss [STEPS]" >&2; exit 2;; esac
PY=.venv/bin/python
$PY -m engine refocus data --slides 4
# the 4 training slides and the validation slide of the seed policy (engine/phantom/seeds.py)
train_seeds=$($PY -c 'from engine.phantom.seeds import training_seeds; print(*training_seeds(4))')
val_seed=$($PY -c 'from engine.refocus.train import VAL_SEED; print(VAL_SEED)')
mkdir -p checkpoints/eval

prepare() {   # a run folder whose data are exactly the 4 slides (hard links: no re-rendering)
  d=checkpoints/abl-$1
  mkdir -p $d/data $d/val
  for s in $train_seeds; do ln -f checkpoints/refocus/data/$s.npz $d/data/; done
  ln -f checkpoints/refocus/val/$val_seed.npz $d/val/
}

snapshot() { printf 'checkpoints/abl-%s/snapshots/step-%06d.pt' "$1" "$2"; }

case $kind in
pooling)
  steps=${2:-1800}
  # a run continues its own last.pt; a fresh run starts from random weights (never the shipped ones)
  run() { name=$1; shift; prepare $name
    if [ -f checkpoints/abl-$name/last.pt ]; then resume=--resume; else resume=; fi
    nice -n 10 $PY -m engine refocus train --out checkpoints/abl-$name/best.pt --checkpoints checkpoints/abl-$name \
      $resume --steps 6000 --until $steps --val-every 300 --slides 4 "$@" >> checkpoints/abl-$name/train.log 2>&1; }
  run fsca & run max --pool max & wait
  run mean --pool mean & run nocons --no-consistency & wait
  nice -n 10 $PY -m engine refocus eval --seed 2 --stacks 4 --fs 1 3 --weights "$(snapshot fsca $steps)" \
    --ablation "max-pool=$(snapshot max $steps)" "mean-pool=$(snapshot mean $steps)" \
               "no-consistency=$(snapshot nocons $steps)" --json > checkpoints/eval/ablation-pooling-$steps.json
  ;;
loss)
  steps=${2:-300}
  [ -f checkpoints/abl-loss-init.pt ] || cp resources/weights/refocus.pt checkpoints/abl-loss-init.pt
  for name in l1ssim dists dists-gan; do
    case $name in l1ssim) extra="--recon l1-ssim";; dists) extra="--recon wsi-dists";; dists-gan) extra="--recon wsi-dists --gan";; esac
    prepare $name
    nice -n 10 $PY -m engine refocus train --out checkpoints/abl-$name/best.pt --checkpoints checkpoints/abl-$name \
      --init checkpoints/abl-loss-init.pt --resume --steps $steps --val-every 100 --lr 3e-4 --slides 4 $extra \
      >> checkpoints/abl-$name/train.log 2>&1
  done
  nice -n 10 $PY -m engine refocus eval --seed 2 --stacks 4 --fs 1 3 --weights "$(snapshot l1ssim $steps)" \
    --ablation "wsi-dists=$(snapshot dists $steps)" "wsi-dists+gan=$(snapshot dists-gan $steps)" \
    --json > checkpoints/eval/ablation-loss-$steps.json
  ;;
esac

