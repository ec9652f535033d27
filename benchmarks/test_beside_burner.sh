#!/usr/bin/env bash
# Issue 13, item 13: `make test` N times in a row (default 3) beside a CPU-bound process, in a
# clean clone of this repository's HEAD with CI's environment (PostgreSQL, Chromium). Stops at
# the first failure. Usage: bash benchmarks/test_beside_burner.sh [runs] [workdir]
set -u
runs=${1:-3}
work=${2:-/tmp/burn}
repo=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 2
git clone -q "$repo" main && ln -s "$repo/../shared" shared && cd main || exit 2
git log --oneline -1
export OMP_WAIT_POLICY=PASSIVE
if [ "$(id -u)" = 0 ]; then
  SHIPML_TEST_POSTGRES_URL=$(bash .ci/postgres.sh | tail -1); export SHIPML_TEST_POSTGRES_URL
  command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  export SHIPML_TEST_BROWSER=1
fi
make .venv/.installed > "$work/install.log" 2>&1 || { echo "install failed: $work/install.log"; exit 1; }
python3 -c "while True: pass" &
burner=$!
trap 'kill $burner 2>/dev/null' EXIT
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  make test > "$work/run$i.log" 2>&1
  rc=$?
  echo "run $i: rc=$rc $(( $(date +%s) - start )) s; $(tail -1 "$work/run$i.log")"
  [ $rc -ne 0 ] && exit $rc
done
