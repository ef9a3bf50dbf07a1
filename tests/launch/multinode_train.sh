#!/usr/bin/env bash
# Training across nodes: launch/e2e-train.sbatch on a two-node cluster of
# launch/local-slurm.sh --nodes 2 (network namespaces), CPU, 32x32 images.
#  1. `sbatch -N 2 --ntasks-per-node 2`: 4 ranks, 2 per node. Each rank's node and
#     node-local rank (the GPU it would take) is logged, and it is right: it matches
#     the node and SLURM_LOCALID Slurm gave the task. While it runs, every MPI TCP
#     connection of a rank goes to the other node (none within a node, none over the
#     loopback but the local PMIx server's), and the ranks of a node share Open MPI's
#     shared-memory segments (vader);
#  2. the same run on one node (`-N 1 --ntasks-per-node 4`): all ranks on node1, local
#     ranks 0-3; final model and optimizer bitwise equal to the two-node run's (Open
#     MPI's all-reduce picks its algorithm from the rank count and message size, not
#     from the transport, so the reduction order is the same), same metrics.
# Skipped (77) where the machine cannot host namespaces.
# Usage: multinode_train.sh E2E_TRAIN E2E_SYNTH
. "$(dirname "$0")/lib.sh"
train_and_synth "$@"
need ss
# 4 CPUs per node, so that one node takes all 4 ranks
E2E_SLURM_CPUS=4 start_cluster --nodes 2
ls=$E2E_SOURCE/launch/local-slurm.sh
net=$(cat "$cluster/net/subnet")

make_jets 1000 7 32
args=(--data "$work/jets.h5" --epochs 3 --batch 16 --seed 5 --log-every 100)
submit() {  # submit NAME SBATCH-OPTIONS...: the template on CPU; prints the job id
  local name=$1
  shift
  E2E_TRAIN=$train timeout 20 sbatch --parsable --job-name="$name" "$@" --gpus-per-node=0 \
    --cpus-per-task=1 --time=10 --output="$work/$name.out" \
    "$E2E_SOURCE/launch/e2e-train.sbatch" "${args[@]}" --out "$work/$name"
}
# logged NAME RANK NODE LOCAL_RANK LOCAL_SIZE: job NAME's output has that rank's placement line
logged() {
  check "$1: rank $2 logged on $3, node-local rank $4 of $5 (GPU $4)" grep -q \
    "^e2e-train: rank $2 of 4 on $3: node-local rank $4 of $5 (GPU $4 with --device cuda)$" "$work/$1.out"
}
four_tasks() { [ "$(job_tasks "$1" | wc -l)" -eq 4 ]; }

# what the running tasks of job $1 look like: "PROCID node LOCALID pid", by rank
describe_tasks() {
  local p
  for p in $(job_tasks "$1"); do
    echo "$(task_env "$p" SLURM_PROCID) $(task_env "$p" SLURMD_NODENAME) $(task_env "$p" SLURM_LOCALID) $p"
  done | sort -n
}

# the TCP connections of e2e-train processes on node $1: "local peer" per line
tcp_of_ranks() { "$ls" on "$1" ss -tnpH 2>/dev/null | awk '/"e2e-train"/ {print $4, $5}'; }

# ---- 1. two nodes
two=$(submit two -N 2 --ntasks-per-node 2)
check "sbatch accepted the two-node job" test -n "$two"
if wait_for 120 "the two-node job's 4 tasks" four_tasks "$two" &&
   wait_for 60 "the first training step" grep -q "^epoch 1/3  step" "$work/two.out"; then
  tasks=$(describe_tasks "$two")
  echo "$tasks"
  check "Slurm placed ranks 0,1 on node1 and 2,3 on node2 (SLURM_LOCALID 0,1 on each)" \
    test "$(cut -d' ' -f1-3 <<< "$tasks" | tr '\n' ';')" = "0 node1 0;1 node1 1;2 node2 0;3 node2 1;"
  for k in 1 2; do
    conns=$(tcp_of_ranks "node$k")
    echo "node$k, TCP connections of e2e-train (local peer):"
    echo "$conns" | sed 's/^/  /'
    check "node$k: its ranks hold TCP connections to the other node" \
      grep -q " $net\.$((3 - k)):" <<< "$conns"
    check "node$k: no TCP connection between two ranks of one node" \
      bash -c "! grep -q '^$net\.$k:.* $net\.$k:' <<< '$conns'"
    loop_peers=$(awk '$2 ~ /^127\./ {sub(/.*:/, "", $2); print $2}' <<< "$conns" | sort -u)
    listeners=$(for port in $loop_peers; do "$ls" on "node$k" ss -tlnpH "sport = :$port"; done |
                grep -o '(("[^"]*"' | sort -u | tr '\n' ' ')
    check "node$k: loopback connections go to the PMIx server (slurmstepd) only (${listeners:-none})" \
      bash -c "[ -z '$loop_peers' ] || [ '$listeners' = '((\"slurmstepd\" ' ]"
  done
  while read -r rank node lr pid; do
    segs=$(awk '{print $6}' "/proc/$pid/maps" 2>/dev/null | grep -o "vader_segment\.$node\.[^ ]*" | sort -u | wc -l)
    check "rank $rank ($node) maps its node's 2 shared-memory segments (vader)" test "$segs" -eq 2
  done <<< "$tasks"
fi
wait_for 300 "the two-node job to end" job_gone "$two"
check "the two-node job exited 0" test "$(job_exit "$two")" = 0
for r in 0 1 2 3; do logged two $r node$((r / 2 + 1)) $((r % 2)) 2; done

# ---- 2. one node, the same 4 ranks
one=$(submit one -N 1 --ntasks-per-node 4)
check "sbatch accepted the one-node job" test -n "$one"
wait_for 300 "the one-node job to end" job_gone "$one"
check "the one-node job exited 0" test "$(job_exit "$one")" = 0
for r in 0 1 2 3; do logged one $r node1 $r 4; done
check_same_training "$work/one" "$work/two"
finish
