#!/usr/bin/env bash
# Mutation testing of the pure domain: mutmut mutates rollout/ and runs tests/domain against each
# mutant, in a scratch copy (nothing in the work tree changes). Prints killed/total per module.
#
#   bench/mutation.sh            the work tree as it is
#   bench/mutation.sh REV        a committed revision (git archive REV), e.g. to compare before/after
#
# Needs the project's venv (./dev creates it) with mutmut at the version requirements-dev.txt pins
# (the script checks it: which mutants exist depends on mutmut's version); all of rollout/ took
# 9-16 minutes on the 2 shared cores on 2026-11-30 (two runs, the same counts; 2 and 3 timeouts).
# MUTMUT_ONLY="capacity autoscale" mutates only those modules of rollout/ (a short run while working);
# MUTMUT_KEEP=DIR runs in DIR and keeps it (then `cd DIR && mutmut show NAME` shows a mutant);
# MUTMUT_SURVIVORS=FILE writes the surviving mutants' names to FILE.
#
# Reproducible: a fresh scratch copy every run (no cached results), PYTHONHASHSEED fixed, and a
# generous timeout (a mutant is "timeout", counted as killed, only after 20x its tests' measured time
# + 2 s; mutmut 3.8.1's default is 15x + 1 s) so that a loaded machine does not turn survivors
# into timeouts; the timeout count is printed. A mutant that loops forever (record.to_dict has two)
# costs that long each, which is why the bound is not higher.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py="$root/.venv/bin/python"
pinned=$(sed -n 's/^mutmut==\([^ ]*\).*/\1/p' requirements-dev.txt)
have=$("$py" -c 'import importlib.metadata as m; print(m.version("mutmut"))')
if [ "$have" != "$pinned" ]; then echo "mutation.sh: mutmut $have in .venv, requirements-dev.txt pins $pinned (run ./dev test once)" >&2; exit 1; fi
export PYTHONHASHSEED=0
if [ -n "${MUTMUT_KEEP:-}" ]; then
  work=$MUTMUT_KEEP && rm -rf "$work" && mkdir -p "$work"
else
  work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
fi
if [ $# -gt 0 ]; then
  git archive "$1" rollout tests/domain tests/fixtures | tar -x -C "$work"
  # the judge's tests draw noisy counts with the emulator's seeded sampler (pure, stdlib only)
  if git cat-file -e "$1:emulator/noise.py" 2>/dev/null; then
    mkdir -p "$work/emulator" && git show "$1:emulator/noise.py" > "$work/emulator/noise.py" && touch "$work/emulator/__init__.py"
  fi
else
  mkdir -p "$work/tests" "$work/emulator" && cp -r rollout "$work/" && cp -r tests/domain tests/fixtures "$work/tests/"
  cp emulator/noise.py "$work/emulator/" && touch "$work/emulator/__init__.py"
fi
cat > "$work/pyproject.toml" <<'TOML'
[tool.mutmut]
source_paths = ["rollout/"]
also_copy = ["emulator/"]
pytest_add_cli_args_test_selection = ["tests/domain/"]
timeout_multiplier = 20.0
timeout_constant = 2.0
TOML
if [ -n "${MUTMUT_ONLY:-}" ]; then
  printf 'only_mutate = [%s]\n' "$(printf '"rollout/%s.py",' $MUTMUT_ONLY)" >>"$work/pyproject.toml"
fi
cat >>"$work/pyproject.toml" <<'TOML'
[tool.pytest.ini_options]
addopts = "-q -p no:cacheprovider --import-mode=importlib"
pythonpath = ["."]
filterwarnings = ["ignore::DeprecationWarning"]
TOML
cd "$work"
"$py" -m mutmut run --max-children "${MUTMUT_CHILDREN:-2}" >"$work/run.log" 2>&1 || { tail -30 "$work/run.log"; exit 1; }
"$py" -m mutmut results --all true >"$work/results.txt" 2>&1
"$py" "$root/bench/mutation_scores.py" "$work/results.txt"
echo "timeouts (counted as killed): $(grep -c ': timeout$' "$work/results.txt" || true)"
if [ -n "${MUTMUT_SURVIVORS:-}" ]; then grep -E ": (survived|no tests)" "$work/results.txt" >"$MUTMUT_SURVIVORS" || true; fi
