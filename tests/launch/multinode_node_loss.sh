#!/usr/bin/env bash
# A node lost mid-run, on a two-node cluster of launch/local-slurm.sh --nodes 2:
# launch/e2e-train.sbatch submitted with a node range, `-N 1-2 --ntasks-per-node 2`
# (4 ranks when both nodes are up), after the checkpoint of epoch 2 of 6:
#   kill: every process of node2 killed (its slurmd, step daemon, ranks 2 and 3);
#   link: node2's network link taken down (its processes live on, cut off).
# Each time:
#  - the surviving ranks (on node1) are all gone within 60 s, and the job's output names
#    the lost rank and node (e2e-train's watchdog, --peer-timeout 10: "watchdog: rank 2
#    stopped answering: ... (host node2) ...; reported by rank 0 (host node1) ... (exit
#    76)"; Open MPI alone would wait forever), exit 76;
#  - Slurm marks node2 down and requeues the job; the template asks again for the node
#    range, and the job starts again on node1 alone: 2 ranks, resumed from the newest
#    checkpoint, and finishes (exit 0);
#  - against the same job never interrupted (4 ranks throughout): the same epochs, each
#    once, each seeing all the training jets (steps x ranks x batch equal), the epochs
#    before the loss identical, and the final metrics no worse (validation MAE over the
#    last 3 epochs at most 20 % above, test MAE at most 30 % above).
# After the link scenario the link comes back: node2 returns to service and nothing of
# the job is left on it. Times (loss -> every rank out, loss -> training resumed) are
# printed. Skipped (77) where the machine cannot host namespaces.
# Usage: multinode_node_loss.sh E2E_TRAIN E2E_SYNTH
. "$(dirname "$0")/lib.sh"
train_and_synth "$@"
ls=$E2E_SOURCE/launch/local-slurm.sh
epochs=6
args=(--data "$work/jets.h5" --epochs $epochs --batch 16 --seed 5 --log-every 100 --peer-timeout 10)
submit() {  # submit NAME: the template on 1 to 2 nodes, 2 ranks each, CPU; prints the job id
  E2E_TRAIN=$train timeout 20 sbatch --parsable --job-name="$1" -N 1-2 --ntasks-per-node 2 \
    --gpus-per-node=0 --cpus-per-task=1 --time=10 --output="$work/$1.out" \
    "$E2E_SOURCE/launch/e2e-train.sbatch" "${args[@]}" --out "$work/$1"
}
now() { date +%s.%N; }
since() { awk "BEGIN {printf \"%.1f\", $(now) - $1}"; }
alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
in_out() { grep -q -- "$2" "$work/$1.out" 2>/dev/null; }

start_cluster --nodes 2
make_jets 1000 7 32

# ---- the uninterrupted reference
ref=$(submit ref)
check "sbatch accepted the reference job" test -n "$ref"
wait_for 300 "the reference job to end" job_gone "$ref"
check "the reference job exited 0" test "$(job_exit "$ref")" = 0
check "the reference ran 4 ranks on 2 nodes" in_out ref "^e2e-train: 4 ranks on cpu"

# loss NAME HOW: one scenario (HOW: kill or link) on the running cluster
loss() {
  local name=$1 how=$2 jid survivors t0 t_out="" t_resumed=""
  jid=$(submit "$name")
  check "$name: sbatch accepted the job" test -n "$jid"
  wait_for 120 "$name: the checkpoint of epoch 2" test -f "$work/$name/checkpoints/ckpt-0000000028.h5" || return
  survivors=$(for p in $(job_tasks "$jid"); do [ "$(task_env "$p" SLURMD_NODENAME)" = node1 ] && echo "$p"; done)
  check "$name: two ranks running on node1" test "$(echo $survivors | wc -w)" -eq 2
  t0=$(now)
  if [ "$how" = kill ]; then "$ls" kill-node node2; else "$ls" link node2 down; fi
  note "$name: node2 lost ($how) at $(date +%T)"
  while [ -z "$t_resumed" ] && [ "$(since "$t0" | cut -d. -f1)" -lt 200 ]; do
    [ -z "$t_out" ] && ! alive $survivors && { t_out=$(since "$t0"); note "$name: every rank out ${t_out} s after the loss"; }
    in_out "$name" "^e2e-train: resumed from" && { t_resumed=$(since "$t0"); note "$name: training resumed ${t_resumed} s after the loss"; }
    sleep 0.2
  done
  check "$name: the surviving ranks exited within 60 s (${t_out:-never} s)" \
    awk "BEGIN {exit !(\"$t_out\" != \"\" && $t_out + 0 <= 60)}"
  check "$name: the job resumed (${t_resumed:-never} s after the loss)" test -n "$t_resumed"
  wait_for 300 "$name: the job to end" job_gone "$jid"
  grep -v "^epoch .*  step\|^ \|^$\|^-----\|^\(NOTE\|You may\|exactly\|with errorcode\|should not\|Your Open\)" "$work/$name.out"

  check "$name: a rank names the lost rank and node" \
    in_out "$name" "^watchdog: rank [23] stopped answering: no heartbeat for 1[0-9] s, last seen in .*, epoch [0-9]*, step [0-9]* (host node2): .*; reported by rank 0 (host node1), ending every rank (exit 76)$"
  check "$name: the template saw exit 76 (a rank lost)" in_out "$name" "^e2e-train.sbatch: a rank was lost (exit 76"
  check "$name: Slurm requeued the job for node2's failure" \
    grep -q "requeue job JobId=$jid due to failure of node node2" "$cluster/log/slurmctld.log"
  check "$name: the template asked again for the node range" in_out "$name" "^e2e-train.sbatch: job $jid was requeued: it asks again for its node range (NumTasks=2)$"
  check "$name: the second start ran on node1 alone, 2 tasks" \
    in_out "$name" "^e2e-train.sbatch: job $jid, start 2 (SLURM_RESTART_COUNT=1), .*, nodes node1: 2 tasks x 1 CPUs$"
  check "$name: 2 ranks resumed from a checkpoint" \
    bash -c "sed -n '/start 2 (SLURM/,\$p' '$work/$name.out' | grep -q '^e2e-train: 2 ranks on cpu'"
  check "$name: the job finished (exit 0)" test "$(job_exit "$jid")" = 0
  check "$name: the same data as the uninterrupted run, metrics no worse" $PY - "$work/ref" "$work/$name" \
    "$work/ref.out" "$work/$name.out" <<'PY'
import csv, json, re, sys
ref, run, ref_out, run_out = sys.argv[1:5]
rows = lambda d: list(csv.DictReader(open(f"{d}/metrics.csv")))
a, b = rows(ref), rows(run)
ok = [r["epoch"] for r in b] == [r["epoch"] for r in a]
res = re.findall(r"resumed from \S*ckpt-(\d+)\.h5 at epoch (\d+), step 0", open(run_out).read())
ok &= len(res) == 1
first = int(res[0][1]) if res else 1  # the first epoch trained after the loss
same = lambda r: [r[k] for k in ("epoch", "lr", "train_loss", "val_loss", "val_mae_gev", "val_mre")]
ok &= all(same(x) == same(y) for x, y in zip(a[:first - 1], b[:first - 1]))
# every start sees all of the training jets per epoch: steps x ranks x batch
seen = lambda out: {int(s) * int(p) * int(bb) for s, p, bb in
                    re.findall(r"(\d+) steps per epoch of (\d+) x (\d+)", open(out).read())}
ok &= len(seen(ref_out)) == 1 and seen(run_out) == seen(ref_out)
ja, jb = json.load(open(f"{ref}/results.json")), json.load(open(f"{run}/results.json"))
steps = {int(p): int(s) for s, p in re.findall(r"(\d+) steps per epoch of (\d+) x", open(run_out).read())}
ok &= jb["global_steps"] == (first - 1) * steps.get(4, 0) + (len(b) - first + 1) * steps.get(2, 0)
# metrics no worse: the validation MAE averaged over the last 3 epochs (one epoch's value
# on 50 jets swings by a third) at most 20 % above, and the test MAE of the kept model at
# most 30 % above. With half the ranks the global batch halves, so an epoch takes twice
# the optimizer steps: the resumed run tends to do better (test MAE 0 to 46 % lower over 3
# datasets and 2 convolution engines; the last-3 validation MAE 26 % lower when a loaded
# machine let the loss come after epoch 4 instead of 2), so only worse is a failure: a
# resume that lost state would do worse. Per-epoch training losses are not compared
last3 = lambda rows: sum(float(r["val_mae_gev"]) for r in rows[-3:]) / 3
ok &= last3(b) <= 1.20 * last3(a)
ok &= jb["test_mae_gev"] <= 1.30 * ja["test_mae_gev"]
print(f"resumed at epoch {first}; jets per epoch {sorted(seen(run_out))}; val MAE of the last 3 epochs "
      f"{last3(b):.2f} GeV against {last3(a):.2f} uninterrupted, test MAE "
      f"{jb['test_mae_gev']:.2f} against {ja['test_mae_gev']:.2f}; last train loss "
      f"{float(b[-1]['train_loss']):.4f} against {float(a[-1]['train_loss']):.4f}; global steps {jb['global_steps']}")
sys.exit(0 if ok else 1)
PY
}

# ---- node2 killed
loss kill kill
# ---- node2 cut off (a fresh cluster: node2's slurmd is dead)
stop_cluster
start_cluster --nodes 2
loss link link
"$ls" link node2 up
old=$(for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = e2e-train ] &&
        [ "$(task_env "${p#/proc/}" SLURM_CONF)" = "$SLURM_CONF" ] && echo "${p#/proc/}"; done)
note "link back up; ranks of the cut-off node still alive: $(echo ${old:-none})"
none_alive() { ! alive $old; }
wait_for 60 "node2 back in service" bash -c "[ \"\$(timeout 5 sinfo -h -n node2 -o %T)\" = idle ]"
wait_for 60 "the cut-off node's ranks to go" none_alive
finish
