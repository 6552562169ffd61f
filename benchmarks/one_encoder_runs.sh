#!/usr/bin/env bash
# "One encoder for everything?" (issue 4): the CoNLL04 SpERT head and biomedical tagging heads
# trained on multilingual-e5-small (word embeddings frozen, as on CPU) with the configs and settings
# of their MiniLM runs, to compare F1 beside MiniLM's. /usr/bin/time -v logs wall time and peak
# memory; completed runs (test scores in metrics.json) are skipped, so the script resumes.
#   bash benchmarks/one_encoder_runs.sh [RUN...]      # RUN: conll04 conll04_6l bc5cdr_chem ncbi_disease ...
# conll04_6l keeps only e5's bottom 6 layers (encoder.num_layers = 6), MiniLM-L6's depth.
#   python benchmarks/conll04.py --pipeline ner/pretrained/conll04_spert --pipeline runs/conll04_e5
set -euo pipefail
cd "$(dirname "$0")/.."
NER=${NER:-.venv/bin/ner}
THREADS=${THREADS:-1}   # two runs side by side on 2 cores
E5=(--set encoder.name=multilingual-e5-small --set encoder.freeze_word_embeddings=true
    --set training.threads="$THREADS" --quiet)
mkdir -p runs
for run in "${@:-conll04 bc5cdr_chem ncbi_disease}"; do
  for name in $run; do
    if [ "$name" = conll04 ]; then
      out=runs/conll04_e5
      args=(pipelines/conll04.toml --set export.storage=delta --set export.pipeline_name=conll04_spert_e5)
    elif [ "$name" = conll04_6l ]; then
      out=runs/conll04_e5_6l
      args=(pipelines/conll04.toml --set export.storage=delta --set export.pipeline_name=conll04_spert_e5_6l
            --set encoder.num_layers=6)
    else
      out=runs/bioner_e5_$name
      args=(pipelines/bioner.toml --task "$name")
    fi
    if grep -q '"test"' "$out/metrics.json" 2>/dev/null; then echo "$out is complete; skipped"; continue; fi
    /usr/bin/time -v "$NER" train "${args[@]}" --output "$out" "${E5[@]}" > "runs/log_${out#runs/}.txt" 2>&1
  done
done
