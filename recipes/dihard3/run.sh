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
adapt_set=dev_full
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
evaluate() {  # evaluate MODEL SYSTEM: each test set, hypotheses and der.json in $exp/SYSTEM/SET
    for set in $test_sets; do
        diarize evaluate "$data/$set" --model "$1" --condition "$primary" \
            -o "$exp/$2/$set" ${device:+--device "$device"}
    done
}
have_gpu() { python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; }
keep() {  # keep COLUMN LIST FILE: the lines of FILE whose COLUMN is a recording of LIST
    awk -v col="$1" 'NR == FNR { keep[$1] = 1; next } ($col in keep)' "$2" "$3"
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

if step 2; then
    say "2: evaluate the bundled model"
    evaluate "$bundled" bundled
fi

if step 3; then
    say "3: adaptation config and speaker encoder from $bundled"
    mkdir -p "$exp/adapt"
    python tools/adapt_from.py "$bundled" --base "$adapt_base" \
        --config-out "$exp/adapt/config.yaml" --speaker-out "$exp/adapt/speaker.pt" \
        --set train.epochs="$adapt_epochs"
fi

if step 4; then
    say "4: adapt on $adapt_set"
    diarize train --config "$exp/adapt/config.yaml" --init "$bundled" \
        --train-data "$data/$adapt_set" --dev-data "${dev_set:+$data/$dev_set}" --out-dir "$exp/adapt" --resume
fi

if step 5; then
    say "5: average the last $average_last checkpoints, with the bundled speaker encoder"
    diarize average --exp-dir "$exp/adapt" --last "$average_last" -o "$exp/adapt/avg.pt"
    speaker=()
    [ -f "$exp/adapt/speaker.pt" ] && speaker=(--speaker "$exp/adapt/speaker.pt")
    python tools/export_model.py "$exp/adapt/avg.pt" "$exp/adapt/model.pt" "${speaker[@]}"
fi

if step 6; then
    say "6: evaluate the adapted model"
    evaluate "$exp/adapt/model.pt" adapted
fi

if step 7; then
    if [ -z "$wavlm" ] || ! have_gpu; then
        say "7: skipped (needs --wavlm and a CUDA GPU)"
    else
        say "7: WavLM frontend, frozen then fine-tuned, on $adapt_set"
        common=(--train-data "$data/$adapt_set" --dev-data "${dev_set:+$data/$dev_set}"
                --epochs "$wavlm_epochs" --set features.wavlm.checkpoint="$wavlm")
        diarize train --config configs/wavlm_base_plus_eend_eda_frozen.yaml "${common[@]}" \
            --set train.feature_cache="$exp/wavlm_cache" --out-dir "$exp/wavlm_frozen" --resume
        diarize average --exp-dir "$exp/wavlm_frozen" --last 5 -o "$exp/wavlm_frozen/avg.pt"
        diarize train --config configs/wavlm_base_plus_eend_eda_finetune.yaml "${common[@]}" \
            --init "$exp/wavlm_frozen/avg.pt" --out-dir "$exp/wavlm_finetune" --resume
        diarize average --exp-dir "$exp/wavlm_finetune" --last 5 -o "$exp/wavlm_finetune/avg.pt"
        evaluate "$exp/wavlm_frozen/avg.pt" wavlm_frozen
        evaluate "$exp/wavlm_finetune/avg.pt" wavlm_finetune
    fi
fi

if step 8; then
    say "8: score each system under $conditions, in total and per domain"
    for system_dir in "$exp"/bundled "$exp"/adapted "$exp"/wavlm_frozen "$exp"/wavlm_finetune; do
        [ -d "$system_dir" ] || continue
        for set in $test_sets; do
            for condition in $conditions; do
                diarize score --ref "$data/$set/rttm" --hyp "$system_dir/$set/all.rttm" \
                    --uem "$data/$set/uem" --condition "$condition" \
                    --json "$exp/scores/$(basename "$system_dir")/$set/$condition.json" > /dev/null
            done
        done
    done
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
    python tools/results_table.py "$exp"/scores/*/*/*.json -o "$exp/results.md"
fi
