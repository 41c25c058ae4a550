#!/usr/bin/env bash
# Offline recipe: the default diarize model, from speech that Debian packages provide.
#
#   stage 0  single-speaker corpus (flite, festival, espeak-ng, asterisk, codec2 voices)
#   stage 1  simulated training conversations (1-4 speakers, mean pause 2 s, noise, reverb)
#   stage 2  simulated dev conversations of held-out persons (2, 3 and 4 speakers)
#   stage 3  train EEND-EDA (resumes from its last checkpoint)
#   stage 4  average the last checkpoints
#   stage 5  tune the activity threshold on a separate tuning set of held-out persons, then
#            evaluate on the dev sets (collar 0 and 0.25 per side)
#   stage 6  train the speaker encoder (linking), export the model (with the tuned threshold
#            and the encoder) into $exp/model.pt: the previous bundled model (TTS voices); the
#            bundled one now comes from recipes/real_voices/run.sh
#   stage 7  an example recording (held-out persons) as $exp/example.flac
#
# Every stage resumes where it stopped; run it in the background and rerun it after a kill:
#   nohup bash recipes/offline_sim/run.sh > exp/offline_sim.log 2>&1 &
#   bash recipes/offline_sim/run.sh --stage 3 --stop-stage 5
# Runs from the repository root. Needs: apt-get install flite festival festvox-kallpc16k
# festvox-kdlpc16k festvox-us-slt-hts espeak-ng asterisk-core-sounds-en-wav codec2-examples
# (stage 0 says which are missing and builds from the rest).
set -euo pipefail

stage=0
stop_stage=100
corpus=data/corpus              # stage 0 output: single-speaker source corpus
data=data                       # simulated sets go under here
exp=exp/offline_sim             # training directory
config=configs/eend_eda_sim.yaml
workers=2
train_mixtures=2000             # 1-4 speakers, about 60 hours
dev_mixtures=100                # per speaker count
average_last=3

while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --exp) exp=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
say() { echo "=== $(date '+%F %T') stage $*"; }

if step 0; then
    say "0: source corpus -> $corpus"
    python tools/build_corpus.py "$corpus" --workers "$workers"
fi

if step 1; then
    say "1: training mixtures (1-4 speakers) of the training persons"
    diarize simulate "$corpus" "$data/sim_train" --num-mixtures "$train_mixtures" --speakers 1 2 3 4 \
        --beta 2 --snr 5 10 15 20 --rir-prob 0.5 --speaker-list "$corpus/persons_train" \
        --prefix train --seed 0 --workers "$workers"
fi

if step 2; then
    for n in 2 3 4; do
        say "2: dev mixtures of held-out persons, $n speakers"
        diarize simulate "$corpus" "$data/sim_dev$n" --num-mixtures "$dev_mixtures" --speakers "$n" \
            --beta 2 --snr 5 10 15 20 --rir-prob 0.5 --speaker-list "$corpus/persons_dev" \
            --prefix "dev${n}spk" --seed "10$n" --workers "$workers"
    done
    say "2: tuning mixtures of held-out persons (2 speakers, another seed)"
    diarize simulate "$corpus" "$data/sim_tune2" --num-mixtures 30 --speakers 2 \
        --beta 2 --snr 5 10 15 20 --rir-prob 0.5 --speaker-list "$corpus/persons_dev" \
        --prefix tune2spk --seed 202 --workers "$workers"
fi

if step 3; then
    say "3: train $config -> $exp"
    diarize train --config "$config" --train-data "$data/sim_train" --dev-data "$data/sim_dev2" \
        --out-dir "$exp" --resume
fi

if step 4; then
    say "4: average the last $average_last checkpoints"
    diarize average --exp-dir "$exp" --last "$average_last" -o "$exp/avg.pt"
fi

if step 5; then
    for th in 0.4 0.5 0.6 0.7; do
        say "5: tuning set, threshold $th"
        diarize evaluate "$data/sim_tune2" --model "$exp/avg.pt" --threshold "$th" \
            -o "$exp/tune/th$th" | grep TOTAL
    done
    threshold=$(python - "$exp/tune" <<'PY'
import json, sys
from pathlib import Path
scores = {p.name[2:]: json.loads((p / "der.json").read_text())["total"]["der"] for p in Path(sys.argv[1]).glob("th*")}
print(min(scores, key=scores.get))
PY
)
    echo "$threshold" > "$exp/threshold"
    for n in 2 3 4; do
        for collar in 0 0.25; do
            say "5: evaluate dev$n, collar $collar, threshold $threshold"
            diarize evaluate "$data/sim_dev$n" --model "$exp/avg.pt" --threshold "$threshold" \
                --collar "$collar" -o "$exp/eval/dev${n}_collar$collar" | grep -A1 TOTAL
        done
    done
fi

if step 6; then
    if [ ! -f "$exp/speaker.pt" ]; then
        say "6: train the speaker encoder on the training persons (for linking)"
        python tools/train_speaker_encoder.py "$corpus" "$exp/speaker.pt" \
            --persons "$corpus/persons_train" --steps 1500
    fi
    say "6: export the default model with its speaker encoder"
    # link_threshold: chosen on bench/long_audio.py --seed 1-7 (README, "Long recordings")
    python tools/export_model.py "$exp/avg.pt" "$exp/model.pt" --speaker "$exp/speaker.pt" \
        --infer "threshold=$(cat "$exp/threshold")" link_threshold=0.55
fi

if step 7; then
    say "7: bundled example (2 held-out persons)"
    diarize simulate "$corpus" "$data/example" --num-mixtures 1 --speakers 2 --min-utts 12 --max-utts 14 \
        --beta 2 --snr 15 --rir-prob 0 --speaker-list "$corpus/persons_dev" --prefix meeting --seed 11
    python tools/export_example.py "$data/example" "$exp/example"
fi
say "done"
