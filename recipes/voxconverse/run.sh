#!/usr/bin/env bash
# VoxConverse (Chung et al. 2020): adapt on dev, test on test, scored as VoxSRC scores it
# (0.25 s collar, overlap included) and as pyannote's benchmark does (no collar).
#
#   bash recipes/voxconverse/run.sh --voxconverse /corpora/voxconverse [--wavlm /models/wavlm-base-plus]
#
#   stage 0  prepare data/voxconverse/{dev,test}
#   stage 1  statistics of each partition
#   stage 2  evaluate the bundled model on test (condition voxconverse)
#   stage 3  adaptation config and speaker encoder from the bundled model
#   stage 4  adapt it on dev (diarize train --init; resumes)
#   stage 5  average the last checkpoints, put the speaker encoder back
#   stage 6  evaluate the adapted model
#   stage 7  WavLM frontend (with --wavlm and a GPU): frozen, then fine-tuned, on dev
#   stage 8  score every system under each condition; Markdown table in $exp/results.md
#
# Runs from the repository root; every stage can be rerun alone (--stage N --stop-stage N).
# $voxconverse holds the annotations (dev/*.rttm, test/*.rttm: github.com/joonson/voxconverse)
# with voxconverse_dev_wav.zip and voxconverse_test_wav.zip unpacked in it (audio/,
# voxconverse_test_wav/). No validation set is used (the last checkpoints are averaged).
set -euo pipefail

stage=0
stop_stage=100
voxconverse=""                        # required for stage 0 (see above)
data=data/voxconverse
exp=exp/voxconverse
bundled=diarize/assets/default.pt     # the model evaluated, then adapted
adapt_base=configs/eend_eda_adapt.yaml  # train section of the adaptation
adapt_data="$data/dev"                # comma-separated directories
dev_set=""                            # none (see above)
test_sets="test"
all_sets="dev test"
conditions="voxconverse voxconverse-full"
primary=voxconverse                   # condition of diarize evaluate's own table
adapt_epochs=50
average_last=5
wavlm=""                              # WavLM Base+ (Hugging Face dir or WavLM-Base+.pt) for stage 7
wavlm_epochs=30
device=""                             # torch device for evaluation (default: cuda if present)

while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --voxconverse) voxconverse=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        --wavlm) wavlm=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
say() { echo "=== $(date '+%F %T') stage $*"; }

if step 0; then
    say "0: prepare $voxconverse -> $data"
    [ -n "$voxconverse" ] || { echo "run.sh: stage 0 needs --voxconverse DIR" >&2; exit 2; }
    diarize prepare voxconverse "$voxconverse" "$data"
fi

if step 1; then
    for set in $all_sets; do
        say "1: statistics of $set"
        diarize stats "$data/$set" --json "$exp/stats/$set.json"
    done
fi

. "$(dirname "${BASH_SOURCE[0]}")/../benchmark_stages.sh"  # stages 2-8
