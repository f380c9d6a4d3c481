#!/usr/bin/env bash
# The stages (judge, train, evaluate, generate) for each job, each in its own folder, outside
# DVC: for a machine without DVC, or for many seeds side by side (a GPU runs several at once).
#   [PARALLEL=N] scripts/stage_runs.sh RUNS JOBS [OVERRIDE ...]
# JOBS: a file, one job a line: "NAME SEED [OVERRIDE ...]" (NAME names the folder, the overrides
# pick the run: experiment=invariant). Every job also gets the OVERRIDEs given here. RUNS/NAME-SEED/
# ends with params.yaml (the composed config) and the stages' metrics/ and reports/;
# `astdp-results --runs RUNS/*-*` collects them. The datasets (RUNS/data/) and the judges
# (RUNS/judges/, one per dataset and seed) are shared by the jobs.
set -uo pipefail
runs=$(realpath -m "$1"); jobs=$(realpath "$2"); shift 2
common=("$@" logger=none hydra.run.dir=. hydra.output_subdir=null hydra/job_logging=disabled hydra/hydra_logging=disabled)
py=${PYTHON:-python}
mkdir -p "$runs/judges" "$runs/data"

one() {  # NAME SEED OVERRIDE...
  local name=$1 seed=$2; shift 2
  local dir="$runs/$name-$seed" args=("$@" seed="$seed" "${common[@]}")
  mkdir -p "$dir" && cd "$dir" && ln -sfn "$runs/data" data || return 1
  $py -m astdp.stages.train "${args[@]}" --cfg job --resolve > params.yaml || return 1
  local dataset judge
  dataset=$($py -c "import yaml; print(yaml.safe_load(open('params.yaml'))['data']['name'])")
  judge="$runs/judges/$dataset-$seed.pt"
  args+=(judge.path="$judge")
  $py -m astdp.stages.download "${args[@]}" > download.log 2>&1 &&  # a no-op once the files are there
  flock "$judge.lock" sh -c '[ -f "$0" ] || "$@"' "$judge" $py -m astdp.stages.judge "${args[@]}" > judge.log 2>&1 &&
  $py -m astdp.stages.train "${args[@]}" trainer.enable_progress_bar=false > train.log 2>&1 &&
  $py -m astdp.stages.evaluate "${args[@]}" > evaluate.log 2>&1 &&
  $py -m astdp.stages.generate "${args[@]}" > generate.log 2>&1 &&
  echo "done $name-$seed $(date +%T)" || { echo "FAILED $name-$seed: $(tail -n 2 "$dir"/*.log | tail -n 1)"; return 1; }
}

status=0
while read -r line; do
  [ -z "$line" ] && continue
  # shellcheck disable=SC2086  # a job line is words
  ( one $line ) &
  while [ "$(jobs -rp | wc -l)" -ge "${PARALLEL:-1}" ]; do wait -n || status=1; done
done < "$jobs"
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
exit $status
