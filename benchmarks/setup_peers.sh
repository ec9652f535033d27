#!/usr/bin/env bash
# The benchmark peers' own environment (FLAML, AutoGluon with its PyTorch neural networks),
# kept apart from the project's .venv so that neither can change the other's packages.
#
#   bash benchmarks/setup_peers.sh [VENV]      # default: ../bench-venv beside the repository
#
# torch is installed first and alone, as the CPU wheel torch==2.13.0 (the only torch this
# project allows); every later install is dry-run first and refused if it would bring another
# torch or any nvidia-* package. Choices, each forced by a dry run (see benchmarks/RESULTS.md):
# - FLAML without its [automl] extra, whose xgboost<3 pulls nvidia-nccl-cu12 on Linux: the same
#   extras are listed one by one, with xgboost-cpu (the same `xgboost` module, no CUDA);
# - AutoGluon's extras lightgbm, catboost, xgboost (xgboost-cpu), fastai and ray (bagged folds in
#   parallel, memory-safe sub-fits: without ray best_quality fits folds one by one), so that
#   best_quality has the model families it expects, NN_TORCH and FASTAI included;
# - torchvision (a dependency of fastai, unused by tabular models) is removed again: PyPI's
#   Linux wheel is built against CUDA torch and fails to import beside the CPU wheel
#   ("operator torchvision::nms does not exist"), while fastai.tabular imports without it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
VENV="${1:-${SHIPML_BENCH_VENV:-$(dirname "$REPO")/bench-venv}}"
PYTHON="${PYTHON:-python3.11}"  # the CPU torch wheel on this machine is cp311
export OMP_WAIT_POLICY=PASSIVE

TORCH="torch==2.13.0"
PEERS=(
  "flaml==2.8.0"
  "autogluon.tabular[lightgbm,catboost,xgboost,fastai,ray]==1.6.3"
  "xgboost-cpu==2.1.4"
  "lightgbm==4.7.0"
  "scikit-learn==1.9.1"
  "scipy"
  "pandas"
)

refuse_foreign_torch() {  # $@: pip install arguments; exits if the plan has another torch/nvidia
  local plan
  plan="$("$VENV/bin/pip" install --dry-run "$@" 2>&1 | grep '^Would install' || true)"
  echo "plan: ${plan:-nothing new}"
  # Anything named nvidia-*, or a torch other than the CPU wheel, stops the script.
  if echo "$plan" | tr ' ' '\n' | grep -Ei '^(nvidia-|torch-[0-9])' | grep -vxF 'torch-2.13.0+cpu'; then
    echo "refused: the plan above brings another torch or nvidia-* packages" >&2
    exit 1
  fi
}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

refuse_foreign_torch "$TORCH"
"$VENV/bin/pip" install --quiet "$TORCH"
"$VENV/bin/python" -c "import torch; assert torch.__version__ == '2.13.0+cpu', torch.__version__"

# The versions of the last recorded setup (pip freeze, torch and torchvision aside).
PINS=(-c "$HERE/peers-constraints.txt")
refuse_foreign_torch "${PINS[@]}" "${PEERS[@]}"
"$VENV/bin/pip" install --quiet "${PINS[@]}" "${PEERS[@]}"
"$VENV/bin/pip" uninstall --quiet --yes torchvision 2>/dev/null || true

"$VENV/bin/python" - <<'EOF'
import torch
assert torch.__version__ == "2.13.0+cpu", torch.__version__
import flaml, lightgbm, sklearn, xgboost, catboost  # noqa: F401
from fastai.tabular.all import TabularModel  # noqa: F401  (AutoGluon's FASTAI model)
from autogluon.tabular import TabularPredictor  # noqa: F401
from autogluon.tabular.models import NNFastAiTabularModel, TabularNeuralNetTorchModel  # noqa: F401
from importlib import metadata
names = ("torch", "autogluon.tabular", "flaml", "lightgbm", "xgboost-cpu", "catboost", "fastai",
         "scikit-learn", "pandas", "numpy")
print("peers ready: " + ", ".join(f"{n} {metadata.version(n)}" for n in names))
EOF
echo "venv: $VENV (use it with: benchmarks/tabular.py --peer-venv $VENV)"
