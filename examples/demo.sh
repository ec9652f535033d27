#!/usr/bin/env bash
# `make demo`: train a credit-scoring model on the German Credit data in this folder (CC BY 4.0),
# then evaluate, predict, explain, promote — the tour of the README, end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHIPML_HOME="$PWD/.shipml-demo"      # keep the demo's registry inside the repo
export OMP_WAIT_POLICY=PASSIVE
BIN=.venv/bin
DATA=examples/german_credit.csv
mkdir -p "$SHIPML_HOME"

# A holdout the model never sees: the last 200 rows.
$BIN/python - <<'PY'
import pandas as pd
df = pd.read_csv("examples/german_credit.csv")
df.iloc[:800].to_csv(".shipml-demo/train.csv", index=False)
df.iloc[800:].to_csv(".shipml-demo/holdout.csv", index=False)
df.iloc[800:805].drop(columns="credit_risk").to_csv(".shipml-demo/new_applicants.csv", index=False)
PY

echo "== shipml train (30 s budget)"
$BIN/shipml train .shipml-demo/train.csv --target credit_risk --name credit --time-budget 30
echo "== shipml evaluate on the 200-row holdout"
$BIN/shipml evaluate credit --data .shipml-demo/holdout.csv -o .shipml-demo/evaluation.html
echo "== shipml predict"
$BIN/shipml predict credit .shipml-demo/new_applicants.csv -o .shipml-demo/scored.csv
head -3 .shipml-demo/scored.csv | cut -c1-160
echo "== shipml explain (2 rows)"
$BIN/shipml explain credit --data .shipml-demo/new_applicants.csv --rows 2 --top 4
echo "== shipml models promote / list"
$BIN/shipml models promote credit --alias production
$BIN/shipml models list
echo
echo "Training report:   $($BIN/shipml report credit@production)"
echo "Evaluation report: $PWD/.shipml-demo/evaluation.html"
