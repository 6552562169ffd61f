#!/usr/bin/env bash
# The training runs behind the MT-BioNER figures in BENCHMARKS.md, one after another (2 CPU cores:
# parallel runs would only slow each other down): the multi-task model, then one single-task model
# per dataset with the same settings and epochs. /usr/bin/time -v logs its wall time and peak memory.
# Runs that completed (test scores in metrics.json) are skipped, so the script resumes after a stop.
#   bash benchmarks/bioner_runs.sh && python benchmarks/bioner.py --logs runs --output benchmarks/results/bioner.json
set -euo pipefail
cd "$(dirname "$0")/.."
NER=${NER:-.venv/bin/ner}
mkdir -p runs
for run in multi bc2gm bc5cdr_chem bc5cdr_disease ncbi_disease; do
  if [ "$run" = multi ]; then select=(); out=runs/bioner; else select=(--task "$run"); out=runs/bioner_$run; fi
  if grep -q '"test"' "$out/metrics.json" 2>/dev/null; then echo "$out is complete; skipped"; continue; fi
  /usr/bin/time -v "$NER" train pipelines/bioner.toml --output "$out" "${select[@]}" \
    --set training.threads=2 --quiet > "runs/log_$run.txt" 2>&1
done
