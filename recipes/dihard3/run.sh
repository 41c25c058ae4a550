#!/usr/bin/env bash
# DIHARD III (Ryant et al. 2020): adapt on the development release (LDC2020E12), test on the
# evaluation release (LDC2021E02), core and full sets, scored as the challenge scored them
# (no collar, overlap included, the releases' scoring UEMs; DER and JER), per domain too.
#
#   bash recipes/dihard3/run.sh --dev /corpora/LDC2020E12 --eval /corpora/LDC2021E02 \
#       [--wavlm /models/wavlm-base-plus]
#
#   stage 0  prepare data/dihard3/{dev,eval}_{full,core} (+ reco2domain, domains/*.list)
#   stage 1  statistics of each partition
#   stage 2  evaluate the bundled model on eval_core and eval_full (condition dihard3)
#   stage 3  adaptation config and speaker encoder from the bundled model
#   stage 4  adapt it on dev_full (diarize train --init; resumes)
#   stage 5  average the last checkpoints, put the speaker encoder back
#   stage 6  evaluate the adapted model
#   stage 7  WavLM frontend (with --wavlm and a GPU): frozen, then fine-tuned, on dev_full
#   stage 8  score every system, in total and per domain; Markdown table in $exp/results.md
#
# Runs from the repository root; every stage can be rerun alone (--stage N --stop-stage N).
# DIHARD III has no training set: its dev release is the adaptation data, as in the
# challenge; no validation set is used (the last checkpoints are averaged).
set -euo pipefail

stage=0
stop_stage=100
dev_release=""                        # required for stage 0: LDC2020E12 (development)
eval_release=""                       # required for stage 0: LDC2021E02 (evaluation)
data=data/dihard3
exp=exp/dihard3
bundled=diarize/assets/default.pt     # the model evaluated, then adapted
adapt_base=configs/eend_eda_adapt.yaml  # train section of the adaptation
adapt_data="$data/dev_full"           # comma-separated directories
dev_set=""                            # none (see above)
test_sets="eval_core eval_full"
all_sets="dev_full dev_core eval_full eval_core"
conditions="dihard3"
primary=dihard3                       # condition of diarize evaluate's own table
adapt_epochs=50
average_last=5
wavlm=""                              # WavLM Base+ (Hugging Face dir or WavLM-Base+.pt) for stage 7
wavlm_epochs=30
device=""                             # torch device for evaluation (default: cuda if present)

while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --dev) dev_release=$2; shift 2 ;;
        --eval) eval_release=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        --wavlm) wavlm=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
say() { echo "=== $(date '+%F %T') stage $*"; }
keep() {  # keep COLUMN LIST FILE: the lines of FILE whose COLUMN is a recording of LIST
    awk -v col="$1" 'NR == FNR { keep[$1] = 1; next } ($col in keep)' "$2" "$3"
}
extra_scores() {  # stage 8 (benchmark_stages.sh): each system per domain, condition dihard3
    say "8: score each system per domain"
    for system_dir in "$exp"/bundled "$exp"/adapted "$exp"/wavlm_frozen "$exp"/wavlm_finetune; do
        [ -d "$system_dir" ] || continue
        for set in $test_sets; do
            for list in "$data/$set"/domains/*.list; do
                domain=$(basename "$list" .list)
                sub="$exp/domains/$set.$domain"
                mkdir -p "$sub"
                keep 2 "$list" "$data/$set/rttm" > "$sub/ref.rttm"
                keep 1 "$list" "$data/$set/uem" > "$sub/uem"
                keep 2 "$list" "$system_dir/$set/all.rttm" > "$sub/$(basename "$system_dir").rttm"
                diarize score --ref "$sub/ref.rttm" --hyp "$sub/$(basename "$system_dir").rttm" \
                    --uem "$sub/uem" --condition dihard3 \
                    --json "$exp/scores/$(basename "$system_dir")/$set.$domain/dihard3.json" > /dev/null
            done
        done
    done
}

if step 0; then
    say "0: prepare $dev_release and $eval_release -> $data"
    [ -n "$dev_release" ] && [ -n "$eval_release" ] || {
        echo "run.sh: stage 0 needs --dev LDC2020E12 --eval LDC2021E02" >&2; exit 2; }
    diarize prepare dihard3 "$dev_release" "$data" --name dev
    diarize prepare dihard3 "$eval_release" "$data" --name eval
fi

if step 1; then
    for set in $all_sets; do
        say "1: statistics of $set"
        diarize stats "$data/$set" --json "$exp/stats/$set.json"
    done
fi

. "$(dirname "${BASH_SOURCE[0]}")/../benchmark_stages.sh"  # stages 2-8
