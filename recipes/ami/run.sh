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
evaluate() {  # evaluate MODEL SYSTEM: each test set, hypotheses and der.json in $exp/SYSTEM/SET
    for set in $test_sets; do
        diarize evaluate "$data/$set" --model "$1" --condition "$primary" \
            -o "$exp/$2/$set" ${device:+--device "$device"}
    done
}
have_gpu() { python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; }

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
    say "4: adapt on $adapt_data"
    diarize train --config "$exp/adapt/config.yaml" --init "$bundled" \
        --train-data "$adapt_data" --dev-data "$data/$dev_set" --out-dir "$exp/adapt" --resume
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
        say "7: WavLM frontend, frozen then fine-tuned, on $adapt_data"
        common=(--train-data "$adapt_data" --dev-data "$data/$dev_set"
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
    say "8: score each system under $conditions"
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
    python tools/results_table.py "$exp"/scores/*/*/*.json -o "$exp/results.md"
fi
