#!/usr/bin/env bash
# launch/local-slurm.sh --nodes 2: a Slurm cluster of two nodes in network namespaces.
#  1. each node is its own network and UTS namespace (own address on the cluster subnet,
#     own hostname), with its own slurmd inside; the nodes reach each other; both idle;
#  2. an Open MPI program started by `srun --mpi=pmix` over both nodes (2 tasks each)
#     runs 4 ranks whose host and node-local rank (MPI_Comm_split_type, as the trainer
#     computes it) match Slurm's node and SLURM_LOCALID; the tasks got the cluster's
#     Open MPI settings (TaskProlog: TCP on the cluster subnet only);
#  3. stop leaves nothing: no process in the nodes' namespaces, no holder, no interface,
#     no directory; a cluster whose owner process is killed (--owner) stops itself; a
#     start that fails half-way (a slurmd that cannot start) leaves nothing either.
# Skipped (77) where the machine cannot host namespaces (not root, no ip/unshare).
# Usage: multinode_cluster.sh MPI_HELLO
. "$(dirname "$0")/lib.sh"
hello=${1:?usage: multinode_cluster.sh MPI_HELLO}
ls=$E2E_SOURCE/launch/local-slurm.sh
start_cluster --nodes 2
d=$cluster
net=$(cat "$d/net/subnet")
hostif=$(cat "$d/net/hostif")
own=$(readlink /proc/$$/ns/net)

# ---- 1. the nodes
for k in 1 2; do
  holder=$(cat "$d/net/node$k.pid")
  ns=$(readlink "/proc/$holder/ns/net")
  slurmd=$(cat "$d/slurmd-node$k.pid")
  check "node$k: its own network namespace ($ns)" test -n "$ns" -a "$ns" != "$own"
  check "node$k: hostname node$k" test "$("$ls" on "node$k" hostname)" = "node$k"
  check "node$k: address $net.$k on its eth0" \
    bash -c "'$ls' on node$k ip -4 -o addr show dev eth0 | grep -q ' $net.$k/24 '"
  check "node$k: its slurmd runs in its namespace" test "$(readlink "/proc/$slurmd/ns/net")" = "$ns"
  check "node$k: its slurmd sees hostname node$k" test "$(nsenter -t "$slurmd" -u hostname)" = "node$k"
done
check "two different node namespaces" \
  test "$(readlink "/proc/$(cat "$d/net/node1.pid")/ns/net")" != "$(readlink "/proc/$(cat "$d/net/node2.pid")/ns/net")"
check "node1 reaches node2's slurmd over the bridge" "$ls" on node1 bash -c "exec 3<>/dev/tcp/$net.2/6818"
check "this namespace reaches the nodes through $hostif" bash -c "exec 3<>/dev/tcp/$net.1/6818"
check "sinfo: node1 and node2 idle" test "$(timeout 10 sinfo -h -N -o '%N %T' | sort | tr '\n' ' ')" = "node1 idle node2 idle "

# ---- 2. MPI over both nodes
jid=$(timeout 20 sbatch --parsable -N 2 --ntasks-per-node 2 -o "$work/hello.out" \
  --wrap "srun --mpi=pmix $hello; echo srun rc=\$?; srun bash -c 'echo env \$SLURM_PROCID \$OMPI_MCA_pml \$OMPI_MCA_btl \$OMPI_MCA_btl_tcp_if_include'")
check "sbatch accepted the job" test -n "$jid"
wait_for 120 "the job to end" job_gone "$jid"
cat "$work/hello.out"
check "srun --mpi=pmix over 2 nodes exited 0" grep -q "^srun rc=0$" "$work/hello.out"
for r in 0 1 2 3; do
  node=node$((r / 2 + 1)) lr=$((r % 2))
  check "rank $r of 4 on $node, node-local rank $lr of 2 = SLURM_LOCALID, all-reduce sum 10" \
    grep -q "^mpi_hello rank=$r size=4 sum=10 PMIX_RANK=$r .* SLURM_PROCID=$r .*host=$node local_rank=$lr local_size=2 SLURM_LOCALID=$lr$" "$work/hello.out"
  check "task $r got the cluster's Open MPI settings (TCP on $net.0/24 only, shared memory in a node)" \
    grep -qx "env $r ob1 self,vader,tcp $net.0/24" "$work/hello.out"
done

# ---- 3. stop leaves nothing
holders=$(cat "$d"/net/*.pid)
nss=$(cat "$d"/net/*.pid.ns)
stop_cluster
note "stopped in $stop_s s"
check "stop took at most 15 s" test "$stop_s" -le 15
for p in $holders; do check "namespace holder $p gone" bash -c "! kill -0 $p 2>/dev/null"; done
left=""
for p in /proc/[0-9]*; do
  grep -qxF "$(readlink "$p/ns/net" 2>/dev/null)" <<< "$nss" && left+=" ${p#/proc/}"
done
check "no process left in the nodes' namespaces (${left:-none})" test -z "$left"
check "interface $hostif gone" bash -c "! ip link show $hostif >/dev/null 2>&1"
check "cluster directory removed" test ! -e "$d"

# a cluster whose owner dies without stopping it (--owner): it stops itself
sleep 600 &
owner=$!
envs=$(timeout 60 "$ls" start --nodes 2 --owner "$owner" "$work/owned")
check "a cluster owned by process $owner started" test -n "$envs"
holders=$(cat "$work/owned"/net/*.pid 2>/dev/null)
hostif=$(cat "$work/owned/net/hostif" 2>/dev/null)
kill -KILL "$owner"
wait "$owner" 2>/dev/null
gone() { [ ! -e "$work/owned" ] && ! ip link show "$hostif" >/dev/null 2>&1 && ! kill -0 $holders 2>/dev/null; }
t0=$SECONDS
wait_for 30 "the owned cluster to stop itself" gone && note "owner killed: the cluster was gone $((SECONDS - t0)) s later"
[ -e "$work/owned/slurm.conf" ] && "$ls" stop "$work/owned" > /dev/null

# a start that fails after the network and slurmctld are up: a slurmd that exits 1
mkdir -p "$work/fake"
printf '#!/bin/sh\necho "fake slurmd: refusing to start" >&2\nexit 1\n' > "$work/fake/slurmd"
chmod +x "$work/fake/slurmd"
PATH=$work/fake:$PATH timeout 60 "$ls" start --nodes 2 "$work/broken" > /dev/null 2> "$work/broken.err"
rc=$?
tail -n 2 "$work/broken.err"
check "start fails when a slurmd cannot start (exit $rc)" test "$rc" -ne 0
check "  and says which" grep -q "slurmd of node1 did not start" "$work/broken.err"
strays=""
for p in /proc/[0-9]*; do
  env=$(tr '\0' '\n' 2>/dev/null < "$p/environ")
  grep -q "^E2E_SLURM_HOLDER=$work/broken/" <<< "$env" && strays+=" ${p#/proc/}"
  grep -q -- "$work/broken/" "$p/cmdline" 2>/dev/null && strays+=" ${p#/proc/}"
done
check "  and leaves no process (${strays:-none})" test -z "$strays"
check "  and no interface" bash -c "! ip link show $(cat "$work/broken/net/hostif" 2>/dev/null || echo none) >/dev/null 2>&1"
finish
