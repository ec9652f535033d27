#!/usr/bin/env bash
# The recommendation benchmark's peers (cornac, implicit, LightFM) in their own venv, apart from
# the project's .venv and from the tabular peers' bench-venv (AutoGluon's pins stay untouched).
#
#   bash benchmarks/setup_rec_peers.sh [VENV]     # default: the nearest ../rec-venv, else a new one beside the repository
#
# - LightFM comes from `rectools-lightfm` (it installs the `lightfm` module): the `lightfm`
#   package itself fails to build here;
# - the install is dry-run first and refused if it would bring torch or any nvidia-* package
#   (none of these peers needs them: cornac's EASE, implicit's CPU models, LightFM are NumPy/C).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
default_venv() {  # an existing rec-venv beside the repository or one of its parents (worktrees)
  local dir="$REPO"
  while [ "$dir" != "/" ]; do
    dir="$(dirname "$dir")"
    if [ -x "$dir/rec-venv/bin/python" ]; then echo "$dir/rec-venv"; return; fi
  done
  echo "$(dirname "$REPO")/rec-venv"
}
VENV="${1:-${SHIPML_REC_VENV:-$(default_venv)}}"
PYTHON="${PYTHON:-python3.11}"
export OMP_WAIT_POLICY=PASSIVE

PEERS=("cornac==3.0.1" "implicit==0.7.3" "rectools-lightfm==1.17.3" "numpy" "scipy" "pandas")

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

plan="$("$VENV/bin/pip" install --dry-run "${PEERS[@]}" 2>&1 | grep '^Would install' || true)"
echo "plan: ${plan:-nothing new}"
if echo "$plan" | tr ' ' '\n' | grep -Ei '^(nvidia-|torch-[0-9])'; then
  echo "refused: the plan above brings torch or nvidia-* packages" >&2
  exit 1
fi
"$VENV/bin/pip" install --quiet "${PEERS[@]}"

"$VENV/bin/python" - <<'PY'
import cornac, implicit, lightfm  # noqa: F401
from implicit.cpu.als import AlternatingLeastSquares  # noqa: F401
from importlib import metadata
names = ("cornac", "implicit", "rectools-lightfm", "numpy", "scipy", "pandas")
print("peers ready: " + ", ".join(f"{n} {metadata.version(n)}" for n in names))
PY
echo "venv: $VENV (benchmarks/recommend.py finds ../rec-venv, or pass --peer-venv $VENV)"
