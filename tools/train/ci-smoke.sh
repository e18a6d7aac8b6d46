#!/bin/sh
# Whole digits-model pipeline on a tiny corpus (synthesis, 3 training steps, HF export,
# reload, evaluation), so the scripts cannot rot. About a minute on one core. Used by .ci/run.
# Usage: tools/train/ci-smoke.sh [WORKDIR]   (default: a fresh temporary directory, removed after)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if [ $# -ge 1 ]; then w=$1; keep=1; else w=$(mktemp -d /tmp/mp-train-smoke.XXXXXX); keep=0; fi
cleanup() { [ "$keep" = 1 ] || rm -rf "$w"; }
trap cleanup EXIT
export MP_TRAIN_DIR="$w"
# The Asterisk prompt packages (~230 MB) are downloaded once per machine, not per run.
export MP_REAL_DEBS="${MP_REAL_DEBS:-/var/tmp/modelpool-debs}"
$py "$here/synth.py" --split train --n 20 --jobs 1 --shard-size 10 --out "$w/train"
$py "$here/synth.py" --split eval --n 3 --jobs 1 --shard-size 3 --out "$w/dev"
$py "$here/train.py" --data "$w/train" --dev "$w/dev" --ckpt-dir "$w/ckpt" --export "$w/model" \
    --steps 3 --warmup 2 --batch-seconds 15 --threads 1
# Resume path: one more step from the checkpoint must continue at step 3.
$py "$here/train.py" --data "$w/train" --dev "$w/dev" --ckpt-dir "$w/ckpt" --export "$w/model" \
    --steps 4 --warmup 2 --batch-seconds 15 --threads 1 > "$w/resume.log"
grep -q "resumed at step 3" "$w/resume.log" || { echo "ci-smoke: no resume" >&2; exit 1; }
# Warm restart: LR cycle 1 starts at the resumed step 4 and runs 2 more steps (to step 6).
$py "$here/train.py" --data "$w/train" --dev "$w/dev" --ckpt-dir "$w/ckpt" --export "$w/model" \
    --cycle 1 --steps 2 --warmup 1 --batch-seconds 15 --threads 1 > "$w/cycle.log"
grep -q "LR cycle 1 starts at step 4" "$w/cycle.log" && grep -q "done: step 6" "$w/cycle.log" \
    || { echo "ci-smoke: no warm restart" >&2; cat "$w/cycle.log" >&2; exit 1; }
for f in config.json preprocessor_config.json vocab.json tokenizer_config.json special_tokens_map.json \
         model.safetensors lexicon.txt; do
    test -s "$w/model/$f" || { echo "ci-smoke: missing $f" >&2; exit 1; }
done
$py "$here/export_hf.py" "$w/ckpt/best.pt" "$w/model2"
# Real voices (Debian's Asterisk prompts, a few per speaker), carrier phrases, and fine-tuning a mixture of
# corpora from an exported model; then the held-out real speaker's CER for two models.
$py "$here/real_voices.py" --limit 4 --copies 1 --jobs 1 --out "$w/real" --heldout-out "$w/real-heldout"
test "$(wc -l < "$w/real-heldout/index.jsonl")" = 4 || { echo "ci-smoke: held-out list" >&2; exit 1; }
grep -q '"engine": "real"' "$w/real/index.jsonl" || { echo "ci-smoke: no real clips" >&2; exit 1; }
grep -q 'es_MX_f_Allison' "$w/real/index.jsonl" && { echo "ci-smoke: held-out speaker in training" >&2; exit 1; }
$py "$here/synth.py" --split eval --n 2 --jobs 1 --shard-size 2 --kinds carrier --out "$w/carrier"
$py "$here/train.py" --data "$w/train" --data "$w/real:2" --dev "$w/dev" --ckpt-dir "$w/ckpt-ft" \
    --init "$w/model2" --export "$w/model3" --steps 2 --warmup 1 --batch-seconds 15 --threads 1 > "$w/ft.log"
grep -q "initialised from $w/model2" "$w/ft.log" || { echo "ci-smoke: no --init" >&2; cat "$w/ft.log" >&2; exit 1; }
# The --init weights are scored first and are the best model until a step beats them on dev.
grep -q -- "--init weights: dev greedy WER" "$w/ft.log" && grep -q '"init"' "$w/ckpt-ft/dev.jsonl" \
    && test -s "$w/model3/model.safetensors" || { echo "ci-smoke: --init not scored" >&2; cat "$w/ft.log" >&2; exit 1; }
$py "$here/real_cer.py" "$w/model2" "$w/model3" --heldout "$w/real-heldout/index.jsonl" --json "$w/cer.json" --show 0
$py -c "import json,sys; r=json.load(open(sys.argv[1])); assert len(r)==2 and all(0<=x['cer'] for x in r), r" "$w/cer.json"
# With the C engine built (MP_CLI, default build/modelpool), evaluate.py scores it too and carrier_eval.py
# runs: both go through common.engine_transcripts (corpus rows -> WAVs -> `modelpool transcribe`).
cli=${MP_CLI:-$here/../../build/modelpool}
if [ -x "$cli" ]; then with_cli="--cli $cli --beam 4"; else with_cli=""; echo "ci-smoke: no $cli, engine not scored"; fi
# shellcheck disable=SC2086
$py "$here/evaluate.py" "$w/model2" --eval "$w/dev" --limit 2 --threads 1 --json "$w/eval.json" $with_cli
$py -c "
import json, sys
r = json.load(open(sys.argv[1]))
conds = {'clean16k', 'none', 'gsm', 'ulaw', 'alaw', 'amr'}
assert set(r) - {'engine_beam'} == conds, r
assert not sys.argv[2] or (set(r['engine_beam']) == conds and all(x >= 0 for x in r['engine_beam'].values())), r
" "$w/eval.json" "$with_cli"
if [ -x "$cli" ]; then
  $py "$here/carrier_eval.py" "$w/model2" --cli "$cli" --eval "$w/carrier" --json "$w/carrier.json" -- --beam 0
  $py -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['utterances'] == 2 and r['ref_digits'] > 0 and r['options'] == ['--beam', '0'], r
" "$w/carrier.json"
fi
echo "ci-smoke: OK"
