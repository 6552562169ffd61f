#!/usr/bin/env bash
# "One encoder for everything?" (issue 4): the CoNLL04 SpERT head and biomedical tagging heads
# trained on multilingual-e5-small (word embeddings frozen, as on CPU) with the configs and settings
# of their MiniLM runs, to compare F1 beside MiniLM's. /usr/bin/time -v logs wall time and peak
# memory; completed runs (test scores in metrics.json) are skipped, so the script resumes.
#   bash benchmarks/one_encoder_runs.sh [RUN...]      # RUN: conll04 conll04_6l bc5cdr_chem ncbi_disease ...
# conll04_6l keeps only e5's bottom 6 layers (encoder.num_layers = 6), MiniLM-L6's depth.
# then compact each CoNLL04 run with `ner compact RUN RUN_int8 --dtype int8` and compare them with
# benchmarks/conll04.py --pipeline ... (BENCHMARKS.md gives the whole sequence)
set -euo pipefail
cd "$(dirname "$0")/.."
NER=${NER:-.venv/bin/ner}
THREADS=${THREADS:-1}   # two runs side by side on 2 cores
E5=(--set encoder.name=multilingual-e5-small --set encoder.freeze_word_embeddings=true
    --set training.threads="$THREADS" --quiet)
mkdir -p runs
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(conll04 conll04_6l bc5cdr_chem ncbi_disease)
for name in "${runs[@]}"; do
  if [ "$name" = conll04 ]; then   # all 12 layers (pipelines/conll04.toml itself keeps 6)
    out=runs/conll04_e5
    args=(pipelines/conll04.toml --set encoder.num_layers=12 --set export.pipeline_name=conll04_spert_e5)
  elif [ "$name" = conll04_6l ]; then   # the shipped default's config
    out=runs/conll04_e5_6l
    args=(pipelines/conll04.toml --set encoder.num_layers=6 --set export.pipeline_name=conll04_spert_e5_6l)
  else
    out=runs/bioner_e5_$name
    args=(pipelines/bioner.toml --task "$name")
  fi
  if grep -q '"test"' "$out/metrics.json" 2>/dev/null; then echo "$out is complete; skipped"; continue; fi
  /usr/bin/time -v "$NER" train "${args[@]}" --output "$out" "${E5[@]}" > "runs/log_${out#runs/}.txt" 2>&1
done
