#!/usr/bin/env bash
# LibriSpeech recipe (Fujita et al. 2019 simulation), for users who have LibriSpeech on disk:
#
#   bash recipes/librispeech_sim/run.sh --librispeech /path/to/LibriSpeech
#
#   stage 0  source corpus from train-clean-100 (train) and dev-clean (held-out speakers)
#   stage 1  simulated training conversations (0-4 speakers, turn-taking, noise, reverb, channels)
#   stage 2  simulated dev conversations of dev-clean speakers (2, 3 and 4 speakers, turn-taking)
#   stage 3  train EEND-EDA (full size; resumes from its last checkpoint; GPU advised)
#   stage 4  average the last checkpoints
#   stage 5  evaluate on the dev sets (collar 0 and 0.25 per side)
#
# Noise and RIRs: pass MUSAN noise / RIR directories with --noise and --rir to use real ones
# (synthetic coloured noise and synthetic RIRs otherwise). Several GPUs:
#   launcher="torchrun --nproc_per_node 4 -m diarize" bash recipes/librispeech_sim/run.sh ...
set -euo pipefail

stage=0
stop_stage=100
librispeech=""                   # required: directory holding train-clean-100/ and dev-clean/
corpus=data/librispeech          # stage 0 output
data=data/librispeech_sim
exp=exp/librispeech_sim
config=configs/eend_eda_librispeech.yaml
workers=8
train_mixtures=100000            # Fujita et al. use 100k mixtures per speaker count set
dev_mixtures=500
noise=synthetic
rir=""
launcher=${launcher:-diarize}

while [ $# -gt 0 ]; do
    case "$1" in
        --librispeech) librispeech=$2; shift 2 ;;
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --train-mixtures) train_mixtures=$2; shift 2 ;;
        --noise) noise=$2; shift 2 ;;
        --rir) rir=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
say() { echo "=== $(date '+%F %T') stage $*"; }
rir_opts=()
[ -n "$rir" ] && rir_opts=(--rir "$rir")

if step 0; then
    [ -n "$librispeech" ] || { echo "run.sh: give --librispeech /path/to/LibriSpeech" >&2; exit 2; }
    say "0: source corpus from $librispeech"
    python tools/prepare_librispeech.py "$librispeech" "$corpus" --train train-clean-100 --dev dev-clean
fi

if step 1; then
    # conversations (turn-taking, 14-26 % overlap) trained a better model than Fujita mixtures
    # on held-out real voices (README, "Results"); --mode mixture --beta 2 gives the EEND ones.
    # --speakers 0: noise-only recordings, so that noise is not speech.
    say "1: $train_mixtures training conversations"
    diarize simulate "$corpus" "$data/train" --num-mixtures "$train_mixtures" --speakers 0 1 2 3 4 \
        --mode conversation --noise "$noise" --snr 0 5 10 15 20 "${rir_opts[@]}" --rir-prob 0.5 \
        --gain-db 4 --channel-prob 0.5 \
        --speaker-list "$corpus/persons_train" --prefix tr --seed 1 --workers "$workers"
fi

if step 2; then
    for n in 2 3 4; do
        say "2: dev conversations, $n speakers"
        diarize simulate "$corpus" "$data/dev$n" --num-mixtures "$dev_mixtures" --speakers "$n" \
            --mode conversation --noise "$noise" --snr 10 15 20 "${rir_opts[@]}" --rir-prob 0.3 \
            --speaker-list "$corpus/persons_dev" --prefix "dev$n" --seed $((100 + n)) --workers "$workers"
    done
fi

if step 3; then
    say "3: train $config -> $exp"
    $launcher train --config "$config" --train-data "$data/train" --dev-data "$data/dev2" --out-dir "$exp" --resume
fi

if step 4; then
    say "4: average"
    diarize average --exp-dir "$exp" --last 10 -o "$exp/avg.pt"
fi

if step 5; then
    for n in 2 3 4; do
        for collar in 0 0.25; do
            say "5: evaluate dev$n, collar $collar"
            diarize evaluate "$data/dev$n" --model "$exp/avg.pt" --collar "$collar" -o "$exp/eval/dev${n}_collar$collar" | grep -A1 TOTAL
        done
    done
fi
say "done"
