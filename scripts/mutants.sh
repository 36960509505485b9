#!/usr/bin/env bash
# Mutation testing of the protocol core, the store and the engine with cargo-mutants:
# every mutant (a changed operator, a function body replaced by a default...) must make
# some test fail. Prints caught / missed / timeout / unviable per file, and the missed ones.
#
# Usage: scripts/mutants.sh [--full] [--shard K/N] [FILE...]
#   FILE     default: src/proto/*.rs src/store.rs src/engine/*.rs
#   --full   run the whole suite against each mutant (the end-to-end tests too; about
#            ten times slower). By default only the in-memory suites run: the library's
#            unit tests and tests/{security,login,sim,engine,sessions,session_mutants}.rs.
#   --shard  run every N-th mutant only (round robin), e.g. 1/4 for a quick sample.
# Environment: MUTANTS_OUT (default target/mutants), MUTANTS_IN_PLACE=1 mutates this
# checkout in place and reuses its target dir (much faster; the tree must be clean).
# Not in CI: on 2 cores a mutant costs 20-60 s, so all 1,300 take most of a day.
# Missed mutants that cannot be killed are listed with their reason in docs/MUTANTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

full=0
shard=()
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --full) full=1 ;;
    --shard) shard=(--shard "$2" --sharding round-robin); shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) files+=("$1") ;;
  esac
  shift
done
[ ${#files[@]} -gt 0 ] || files=(src/proto/*.rs src/store.rs src/engine/*.rs)

if ! command -v cargo-mutants >/dev/null 2>&1; then
  echo "cargo-mutants is missing: cargo install cargo-mutants --locked" >&2
  exit 1
fi

args=(--timeout 180 --profile mutants --output "${MUTANTS_OUT:-target/mutants}")
for f in "${files[@]}"; do args+=(--file "$f"); done
if [ "${MUTANTS_IN_PLACE:-0}" = 1 ]; then
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "MUTANTS_IN_PLACE=1 needs a clean tree (cargo-mutants edits files in place)" >&2
    exit 1
  fi
  args+=(--in-place)
fi
# mold links the test binaries several times faster; each mutant relinks all of them.
if command -v mold >/dev/null 2>&1; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
fi

tests=()
if [ "$full" = 0 ]; then
  # Given to the build as well, so the end-to-end test binaries are not rebuilt either.
  for t in --lib --test=security --test=login --test=sim --test=engine --test=sessions \
    --test=session_mutants; do tests+=(-C "$t"); done
fi

# cargo-mutants exits non-zero when it misses mutants: the summary still follows.
cargo mutants "${args[@]}" "${shard[@]}" "${tests[@]}" || true

out="${MUTANTS_OUT:-target/mutants}/mutants.out/outcomes.json"
python3 - "$out" <<'EOF'
import collections, json, sys
outcomes = json.load(open(sys.argv[1]))["outcomes"]
per_file = collections.defaultdict(collections.Counter)
missed = []
for o in outcomes:
    scenario = o["scenario"]
    if scenario == "Baseline":
        continue
    mutant = scenario["Mutant"]
    summary = o["summary"]
    kind = {"CaughtMutant": "caught", "MissedMutant": "missed", "Timeout": "timeout",
            "Unviable": "unviable"}.get(summary, summary)
    per_file[mutant["file"]][kind] += 1
    if kind == "missed":
        span = mutant["span"]["start"]
        missed.append(f'{mutant["file"]}:{span["line"]}: {mutant.get("name") or mutant["replacement"]}')
print(f'{"file":28} {"caught":>7} {"missed":>7} {"timeout":>8} {"unviable":>9}')
total = collections.Counter()
for f in sorted(per_file):
    c = per_file[f]
    total.update(c)
    print(f'{f:28} {c["caught"]:7} {c["missed"]:7} {c["timeout"]:8} {c["unviable"]:9}')
print(f'{"total":28} {total["caught"]:7} {total["missed"]:7} {total["timeout"]:8} {total["unviable"]:9}')
if missed:
    print("\nmissed:")
    print("\n".join(missed))
EOF
