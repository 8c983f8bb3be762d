#!/usr/bin/env bash
# Times the README's test command in a fresh clone of this repository at COMMIT, as a newcomer
# would run it: clone, check out, then the command exactly as that commit's README gives it.
# Usage: benchmarks/time_test_command.sh COMMIT [WORKDIR]   (WORKDIR: a new folder, /tmp/... by default)
set -uo pipefail
commit=${1:?usage: benchmarks/time_test_command.sh COMMIT [WORKDIR]}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=${2:-$(mktemp -d)}
git clone -q "$repo" "$work/main"
# The test corpora live beside the repository (../shared), as in a working copy.
[ -e "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
cd "$work/main" && git checkout -q "$commit"
command=$(grep -o 'python3 -m venv .venv && .venv/bin/pip install -q [^|]*\[test\]" && .venv/bin/python -m pytest.*' README.md | head -1)
echo "commit $(git rev-parse --short HEAD): $command"
start=$(date +%s.%N)
bash -c "$command" >"$work/output.txt" 2>&1 </dev/null
code=$?
end=$(date +%s.%N)
tail -1 "$work/output.txt"
python3 -c "import sys; print(f'exit {sys.argv[1]}, {float(sys.argv[3]) - float(sys.argv[2]):.0f} s in all')" "$code" "$start" "$end"
