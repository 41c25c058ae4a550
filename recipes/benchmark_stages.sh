# Stages 2-8 of the benchmark recipes (recipes/{ami,callhome,dihard3,voxconverse}/run.sh):
# evaluate the bundled model, adapt it (diarize train --init), evaluate the adapted model,
# the WavLM frontend, and the results table. Sourced at the end of each run.sh, which sets
# before it: stage, stop_stage, step and say (its own stages 0-1 use them), data, exp,
# bundled, adapt_base, adapt_data (comma-separated directories), dev_set ("" for none),
# test_sets, conditions, primary, adapt_epochs, average_last, wavlm, wavlm_epochs, device;
# and, optionally, a function extra_scores that stage 8 runs before the table.

evaluate() {  # evaluate MODEL SYSTEM: each test set, hypotheses and der.json in $exp/SYSTEM/SET
    for set in $test_sets; do
        diarize evaluate "$data/$set" --model "$1" --condition "$primary" \
            -o "$exp/$2/$set" ${device:+--device "$device"}
    done
}
have_gpu() { python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; }

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
        --train-data "$adapt_data" --dev-data "${dev_set:+$data/$dev_set}" --out-dir "$exp/adapt" --resume
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
        common=(--train-data "$adapt_data" --dev-data "${dev_set:+$data/$dev_set}"
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
    if declare -F extra_scores > /dev/null; then extra_scores; fi
    python tools/results_table.py "$exp"/scores/*/*/*.json -o "$exp/results.md"
fi
