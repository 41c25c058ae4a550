#!/usr/bin/env bash
# CALLHOME (NIST SRE 2000 disk 8, LDC2001S97) as the EEND / EEND-EDA recipes hold it:
# adapt on callhome1, test on callhome2 (all speaker counts, and the 2-speaker subset).
#
#   bash recipes/callhome/run.sh --callhome /corpora/LDC2001S97 --key /corpora/sre2000-key \
#       [--split-lists /src/CALLHOME_sublists] [--wavlm /models/wavlm-base-plus]
#
#   stage 0  prepare data/callhome/{callhome,callhome1,callhome2,callhome1_spk2,callhome2_spk2}
#            (shorten-coded .sph decoded once by sph2pipe into $wav: training reads files)
#   stage 1  statistics of each partition
#   stage 2  evaluate the bundled model on the test sets (condition callhome)
#   stage 3  adaptation config and speaker encoder from the bundled model
#   stage 4  adapt it on callhome1 (diarize train --init; resumes)
#   stage 5  average the last checkpoints, put the speaker encoder back
#   stage 6  evaluate the adapted model
#   stage 7  WavLM frontend (with --wavlm and a GPU): frozen, then fine-tuned, on callhome1
#   stage 8  score every system under each condition; Markdown table in $exp/results.md
#
# Runs from the repository root; every stage can be rerun alone (--stage N --stop-stage N).
# Conditions (README "Benchmarks"): callhome = md-eval -c 0.25 with overlap (EEND),
# callhome-kaldi = md-eval -1 -c 0.25 (Kaldi x-vector recipe). callhome2 is also the
# validation set, as in EEND's recipe: it is only logged, no checkpoint is chosen by it
# (the last ones are averaged).
set -euo pipefail

stage=0
stop_stage=100
callhome=""                           # required for stage 0: the LDC2001S97 release
key=""                                # sre2000-key (fullref.rttm, reco2num); default $callhome/sre2000-key
split_lists=""                        # BUTSpeechFIT/CALLHOME_sublists clone (published halves); default Kaldi's shuffle
sph2pipe=sph2pipe                     # for shorten-coded SPHERE files
data=data/callhome                    # prepared partitions
wav=data/callhome/wav                 # decoded audio of the files libsndfile cannot read
exp=exp/callhome
bundled=diarize/assets/default.pt     # the model evaluated, then adapted
adapt_base=configs/eend_eda_adapt.yaml  # train section of the adaptation (EEND-EDA: Adam 1e-5)
adapt_data="$data/callhome1"          # comma-separated directories
dev_set=callhome2
test_sets="callhome2 callhome2_spk2"
conditions="callhome callhome-kaldi"
primary=callhome                      # condition of diarize evaluate's own table
adapt_epochs=100
average_last=10
wavlm=""                              # WavLM Base+ (Hugging Face dir or WavLM-Base+.pt) for stage 7
wavlm_epochs=50
device=""                             # torch device for evaluation (default: cuda if present)

while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --callhome) callhome=$2; shift 2 ;;
        --key) key=$2; shift 2 ;;
        --split-lists) split_lists=$2; shift 2 ;;
        --sph2pipe) sph2pipe=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        --wavlm) wavlm=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
say() { echo "=== $(date '+%F %T') stage $*"; }

if step 0; then
    say "0: prepare $callhome -> $data"
    [ -n "$callhome" ] || { echo "run.sh: stage 0 needs --callhome /path/to/LDC2001S97" >&2; exit 2; }
    diarize prepare callhome "$callhome" "$data" --sph2pipe "$sph2pipe" --decode-to "$wav" \
        ${key:+--key "$key"} ${split_lists:+--split-lists "$split_lists"}
fi

if step 1; then
    for set in callhome callhome1 callhome2 callhome1_spk2 callhome2_spk2; do
        say "1: statistics of $set"
        diarize stats "$data/$set" --json "$exp/stats/$set.json"
    done
fi

. "$(dirname "${BASH_SOURCE[0]}")/../benchmark_stages.sh"  # stages 2-8
