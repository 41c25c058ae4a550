#!/usr/bin/env bash
# AMI meeting corpus with the AMI-diarization-setup (Landini et al. 2022; pyannote's
# benchmark): adapt on the train meetings, test on the test meetings, Mix-Headset and the
# single distant microphone Array1-01.
#
#   bash recipes/ami/run.sh --amicorpus /corpora/amicorpus --setup /src/AMI-diarization-setup \
#       [--wavlm /models/wavlm-base-plus]
#
#   stage 0  prepare data/ami/{train,dev,test}_{headset,array1} (only_words references)
#   stage 1  statistics of each partition
#   stage 2  evaluate the bundled model on the test sets (condition ami)
#   stage 3  adaptation config and speaker encoder from the bundled model
#   stage 4  adapt it on train_headset + train_array1 (diarize train --init; resumes)
#   stage 5  average the last checkpoints, put the speaker encoder back
#   stage 6  evaluate the adapted model
#   stage 7  WavLM frontend (with --wavlm and a GPU): frozen, then fine-tuned, on the train set
#   stage 8  score every system under each condition; Markdown table in $exp/results.md
#
# Runs from the repository root; every stage can be rerun alone (--stage N --stop-stage N).
# Conditions (README "Benchmarks"): ami = no collar, overlap scored (pyannote; VBx "Full"),
# ami-fair = 0.25 s collar with overlap, ami-forgiving = 0.25 s collar without overlap.
set -euo pipefail

stage=0
stop_stage=100
amicorpus=""                          # required for stage 0: amicorpus/<meeting>/audio/*.wav
setup=""                              # required for stage 0: AMI-diarization-setup clone
reference=only_words                  # or word_and_vocalsounds
data=data/ami
exp=exp/ami
bundled=diarize/assets/default.pt     # the model evaluated, then adapted
adapt_base=configs/eend_eda_adapt.yaml  # train section of the adaptation
adapt_data="$data/train_headset,$data/train_array1"  # both microphones (comma-separated)
dev_set=dev_headset
test_sets="test_headset test_array1"
all_sets="train_headset dev_headset test_headset train_array1 dev_array1 test_array1"
conditions="ami ami-fair ami-forgiving"
primary=ami                           # condition of diarize evaluate's own table
adapt_epochs=20
average_last=5
wavlm=""                              # WavLM Base+ (Hugging Face dir or WavLM-Base+.pt) for stage 7
wavlm_epochs=20
device=""                             # torch device for evaluation (default: cuda if present)

while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --amicorpus) amicorpus=$2; shift 2 ;;
        --setup) setup=$2; shift 2 ;;
        --reference) reference=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        --wavlm) wavlm=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
say() { echo "=== $(date '+%F %T') stage $*"; }

if step 0; then
    say "0: prepare $amicorpus with $setup ($reference) -> $data"
    [ -n "$amicorpus" ] && [ -n "$setup" ] || {
        echo "run.sh: stage 0 needs --amicorpus DIR --setup DIR" >&2; exit 2; }
    diarize prepare ami "$amicorpus" "$data" --setup "$setup" --reference "$reference"
fi

if step 1; then
    for set in $all_sets; do
        say "1: statistics of $set"
        diarize stats "$data/$set" --json "$exp/stats/$set.json"
    done
fi

. "$(dirname "${BASH_SOURCE[0]}")/../benchmark_stages.sh"  # stages 2-8
