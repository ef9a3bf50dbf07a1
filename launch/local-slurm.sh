#!/usr/bin/env bash
# A Slurm cluster on this machine, for tests and for trying the sbatch template on a
# laptop: its own munged (own key and socket), slurmctld and slurmd from Debian's
# slurm-wlm 22.05, and a minimal slurm.conf, everything under one directory. Nothing in
# /etc is read or written; no systemd. Tested as root (as CI runs it).
#
#   eval "$(launch/local-slurm.sh start [--nodes N] [--owner PID] [DIR])"
#                               start; prints the exports clients need (SLURM_CONF,
#                               E2E_SLURM_DIR). Without --nodes: one node "e2e" on
#                               127.0.0.1. With --nodes N (N >= 2): N nodes node1..nodeN,
#                               each in its own network and UTS namespace (own address
#                               10.X.Y.K, own hostname, own slurmd), on one bridge.
#                               --owner PID: stop the cluster when process PID is gone
#                               (a test killed before it could stop it)
#   launch/local-slurm.sh env [DIR]              print those exports again
#   launch/local-slurm.sh status [DIR]           sinfo of the cluster, one line per node
#   launch/local-slurm.sh stop [DIR]             cancel its jobs, stop every process of
#                                                the cluster by PID, remove its network
#                                                (DIR is removed unless E2E_SLURM_KEEP=1)
#   launch/local-slurm.sh check-nodes            can this machine host --nodes? (root,
#                                                ip, unshare, nsenter, namespaces allowed)
#   launch/local-slurm.sh on NODE CMD...         run CMD on NODE (its network and hostname)
#   launch/local-slurm.sh kill-node NODE         SIGKILL every process of NODE: its slurmd,
#                                                step daemons and tasks (a node lost)
#   launch/local-slurm.sh link NODE down|up      take NODE's network link down or up
#
# DIR defaults to a new mktemp directory on start, and to $E2E_SLURM_DIR (or the folder of
# $SLURM_CONF) for the other commands. The partition is "debug". Each node advertises
# E2E_SLURM_CPUS CPUs (default: the machine's cores, at least 2; more than the machine
# has is allowed, through SlurmdParameters=config_overrides). Logs are in DIR/log.
#
# The nodes of --nodes N share the machine's file systems (one munged, one DIR) but not
# its network: each is a namespace held by one `sleep` process, with a veth pair to a
# bridge that lives in one more namespace (the switch). slurmctld runs in the caller's
# namespace, which reaches the bridge through one more veth (address 10.X.Y.254, the
# interface named e2e-X-Y); the subnet 10.X.Y.0/24 is picked at random among those the
# machine does not use. Killing the holders removes every interface, bridge and address.
# A TaskProlog gives every task Open MPI's settings for this network: TCP between nodes
# on the cluster subnet only, shared memory within a node (pml ob1, btl self,vader,tcp).
# E2E_SLURMD_TIMEOUT (10 s) is how long slurmctld waits for a silent node before it
# marks it DOWN (Slurm's default: 300 s).
#
# Packages (launch/install-deps.sh): slurmctld slurmd slurm-client munge, and libpmix-dev
# for `srun --mpi=pmix` (Slurm's mpi/pmix plugin dlopens pmix2/lib/libpmix.so, which only
# the -dev package provides); iproute2 and util-linux (ip, unshare, nsenter) for --nodes.
set -euo pipefail

me=local-slurm
die() { echo "$me: $*" >&2; exit 1; }
usage() {  # the comment block at the top of this file
  awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"
}

resolve_dir() {
  local d=${1:-${E2E_SLURM_DIR:-}}
  if [ -z "$d" ] && [ -n "${SLURM_CONF:-}" ]; then d=$(dirname "$SLURM_CONF"); fi
  [ -n "$d" ] || die "which cluster? give its directory, or set E2E_SLURM_DIR"
  [ -f "$d/slurm.conf" ] || die "$d: no local cluster there (no slurm.conf)"
  (cd "$d" && pwd)
}

print_env() {
  echo "export SLURM_CONF=$1/slurm.conf"
  echo "export E2E_SLURM_DIR=$1"
}

# a TCP port on 127.0.0.1 nothing listens on
free_port() {
  local p tries=0
  while :; do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    tries=$((tries + 1))
    [ $tries -lt 50 ] || die "no free TCP port found between 20000 and 40000"
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop the processes whose PIDs are in the files given: SIGTERM to all at once (each
# daemon takes 1-2 s to exit), up to 10 s, then SIGKILL to what is left
stop_pids() {
  local f pid pids=() i alive
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid:$(basename "$f" .pid)")
    fi
  done
  for i in $(seq 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "${pid%%:*}" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if kill -0 "${pid%%:*}" 2>/dev/null; then
      echo "$me: pid ${pid%%:*} (${pid#*:}) ignored SIGTERM for 10 s: SIGKILL" >&2
      kill -KILL "${pid%%:*}" 2>/dev/null || true
    fi
  done
  rm -f "$@"
}

show_logs() {
  local d=$1 f
  for f in "$d"/log/*.log; do
    [ -f "$f" ] || continue
    echo "---- $f (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
}

# ---- the nodes of --nodes N: network and UTS namespaces --------------------------------

# why this machine cannot host namespaced nodes (nothing printed: it can)
nodes_problem() {
  local c
  [ "$(id -u)" -eq 0 ] || { echo "--nodes needs root (network namespaces, veth, bridge); running as $(id -un)"; return; }
  for c in ip unshare nsenter; do
    command -v "$c" >/dev/null || { echo "--nodes needs '$c' (packages iproute2, util-linux)"; return; }
  done
  unshare --net --uts true 2>/dev/null ||
    { echo "--nodes: this machine does not allow network and UTS namespaces (unshare --net --uts failed)"; return; }
  unshare --net sh -c 'ip link add e2e-probe0 type veth peer name e2e-probe1 && ip link add e2e-probe2 type bridge' \
    >/dev/null 2>&1 || echo "--nodes: veth pairs or bridges cannot be made here (ip link add ... type veth/bridge failed)"
}

netns_of() { readlink "/proc/$1/ns/net" 2>/dev/null; }

# the processes in network namespace $1 ("net:[inode]")
pids_in_netns() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}

# start_holder FILE: a process alone in a new network and UTS namespace, which keeps them
# alive; its PID in FILE and its namespace in FILE.ns
start_holder() {
  local own pid i
  own=$(netns_of $$)
  # E2E_SLURM_HOLDER in its environment names it (tests find strays by it)
  E2E_SLURM_HOLDER=$1 setsid unshare --net --uts sleep infinity </dev/null >/dev/null 2>&1 &
  pid=$!
  echo "$pid" > "$1"
  for i in $(seq 100); do
    [ "$(netns_of "$pid")" != "$own" ] && [ -n "$(netns_of "$pid")" ] && break
    sleep 0.02
  done
  [ "$(netns_of "$pid")" != "$own" ] || die "unshare did not make a namespace (pid $pid)"
  netns_of "$pid" > "$1.ns"
}

# a /24 in 10.200-249.x.y that no address or route of this machine uses: "10.X.Y"
pick_subnet() {
  local used net tries
  used=$(ip -4 addr show; ip -4 route show)
  for tries in $(seq 50); do
    net=10.$((200 + RANDOM % 50)).$((RANDOM % 256))
    grep -qF "$net." <<< "$used" || { echo "$net"; return; }
  done
  die "no free 10.x.y.0/24 subnet found"
}

# make_network DIR N: the switch, N nodes, the link of this namespace to the switch
make_network() {
  local d=$1 n=$2 net sw k pid hostif
  net=$(pick_subnet)
  hostif=e2e-${net#10.}
  hostif=${hostif//./-}
  echo "$net" > "$d/net/subnet"
  echo "$hostif" > "$d/net/hostif"
  start_holder "$d/net/switch.pid"
  sw=$(cat "$d/net/switch.pid")
  nsenter -t "$sw" -n sh -ec 'ip link set lo up; ip link add br0 type bridge; ip link set br0 up'
  for k in $(seq "$n"); do
    start_holder "$d/net/node$k.pid"
    pid=$(cat "$d/net/node$k.pid")
    nsenter -t "$sw" -n ip link add "node$k" type veth peer name eth0 netns "$pid"
    nsenter -t "$sw" -n ip link set "node$k" master br0 up
    nsenter -t "$pid" -n -u sh -ec "hostname node$k; ip link set lo up
      ip addr add $net.$k/24 dev eth0; ip link set eth0 up"
  done
  nsenter -t "$sw" -n ip link add head type veth peer name "$hostif" netns $$
  nsenter -t "$sw" -n ip link set head master br0 up
  ip addr add "$net.254/24" dev "$hostif"
  ip link set "$hostif" up
}

node_pid() {  # node_pid DIR NODE: the PID holding NODE's namespaces
  local f=$1/net/$2.pid
  [ -f "$f" ] || die "$2: no such node in $1 (nodes: $(cd "$1/net" && ls node*.pid 2>/dev/null | sed 's/\.pid$//' | tr '\n' ' '))"
  pid_alive "$f" || die "$2: its namespace holder (pid $(cat "$f")) is gone"
  cat "$f"
}

# kill_netns_procs SIGNAL NSFILE: every process in that namespace but its holder
kill_netns_procs() {
  local ns holder p
  [ -f "$2" ] || return 0
  ns=$(cat "$2")
  holder=$(cat "${2%.ns}")
  for p in $(pids_in_netns "$ns"); do
    [ "$p" = "$holder" ] || kill "-$1" "$p" 2>/dev/null || true
  done
}

# stop_network DIR: whatever is left in the nodes' namespaces, then the holders; the
# interfaces go with their namespaces
stop_network() {
  local d=$1 f hostif
  [ -d "$d/net" ] || return 0
  for f in "$d"/net/*.pid.ns; do kill_netns_procs KILL "$f"; done
  stop_pids "$d"/net/*.pid
  rm -f "$d"/net/*.ns
  hostif=$(cat "$d/net/hostif" 2>/dev/null || true)
  if [ -n "$hostif" ] && ip link show "$hostif" >/dev/null 2>&1; then
    sleep 0.2  # the kernel removes a veth pair with its namespace, a moment later
    ip link show "$hostif" >/dev/null 2>&1 && { ip link del "$hostif" 2>/dev/null || true; }
  fi
}

# ---- start and stop ------------------------------------------------------------------

start_munge() {
  local d=$1
  # a fresh key and a private socket, so that the host's munge (if any) is untouched
  rm -f "$d/munge/munge.key"
  mungekey --create --keyfile="$d/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chmod 0600 "$d/munge/munge.key"
  munged --force --socket="$d/munge/munge.socket.2" --key-file="$d/munge/munge.key" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
    --seed-file="$d/munge/munged.seed" ||
    { show_logs "$d"; die "munged did not start"; }
}

# write_conf DIR CTLD_ADDR CTLD_PORT SLURMD_PORT: the settings both kinds of cluster share
write_conf() {
  local d=$1 user
  user=$(id -un)
  cat > "$d/slurm.conf" <<EOF
# test cluster written by launch/local-slurm.sh
ClusterName=e2e
SlurmctldHost=localhost($2)
SlurmctldPort=$3
SlurmdPort=$4
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again
# (default 120 s; 5 s here so that the requeue tests stay short)
AuthInfo=socket=$d/munge/munge.socket.2,cred_expire=5
StateSaveLocation=$d/state
SlurmctldPidFile=$d/slurmctld.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
# the main scheduling pass (which starts a requeued job once it is eligible) every 2 s
SchedulerParameters=sched_interval=2
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
KillWait=10
# job ids from a random start: Open MPI names its session directory and shared-memory
# files after the job, so two clusters on one machine must not both run a job 1
FirstJobId=$((1000 + RANDOM * 16 + RANDOM % 16))
EOF
}

# the Open MPI settings every task of the multi-node cluster gets (TaskProlog)
write_task_prolog() {
  local d=$1 net=$2
  cat > "$d/task-prolog" <<EOF
#!/bin/sh
# Open MPI on this cluster's network (written by launch/local-slurm.sh): shared memory
# within a node, TCP between nodes on the cluster subnet only (never the loopback)
echo export OMPI_MCA_pml=ob1
echo export OMPI_MCA_btl=self,vader,tcp
echo export OMPI_MCA_btl_tcp_if_include=$net.0/24
EOF
  chmod 0755 "$d/task-prolog"
}

# wait_idle DIR COUNT: bounded (30 s) wait until COUNT nodes answer as idle
wait_idle() {
  local d=$1 want=$2 i states="" idle=0
  for i in $(seq 300); do
    states=$(timeout 5 sinfo -h -N -o %T 2>/dev/null || true)
    idle=$(grep -cx idle <<< "$states" || true)
    [ "$idle" -eq "$want" ] && return 0
    sleep 0.1
  done
  show_logs "$d"
  stop_all "$d"
  die "$idle of $want node(s) idle after 30 s (states: '$(echo ${states:-no answer})')"
}

start_one_node() {
  local d=$1 cpus=$2 mem=$3 ctld_port slurmd_port
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  [ "$slurmd_port" != "$ctld_port" ] || slurmd_port=$((ctld_port + 1))
  write_conf "$d" 127.0.0.1 "$ctld_port" "$slurmd_port"
  cat >> "$d/slurm.conf" <<EOF
SlurmdSpoolDir=$d/spool
SlurmdPidFile=$d/slurmd.pid
SlurmdLogFile=$d/log/slurmd.log
NodeName=e2e NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=e2e Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$d/slurm.conf
  # -i: ignore state left by an earlier cluster in the same DIR
  slurmctld -i -f "$SLURM_CONF" || { show_logs "$d"; stop_all "$d"; die "slurmctld did not start"; }
  slurmd -f "$SLURM_CONF" -N e2e || { show_logs "$d"; stop_all "$d"; die "slurmd did not start"; }
  wait_idle "$d" 1
}

start_nodes() {
  local d=$1 n=$2 cpus=$3 mem=$4 net k
  mkdir -p "$d/net"
  for k in $(seq "$n"); do mkdir -p "$d/spool/node$k" "$d/tmp/node$k"; done
  chmod 1777 "$d"/tmp/node*
  # a failure half-way leaves nothing behind
  trap "stop_all '$d'" EXIT
  make_network "$d" "$n"
  net=$(cat "$d/net/subnet")
  write_conf "$d" "$net.254" "$(free_port)" 6818
  write_task_prolog "$d" "$net"
  {
    echo "SlurmdSpoolDir=$d/spool/%n"
    echo "SlurmdPidFile=$d/slurmd-%n.pid"
    echo "SlurmdLogFile=$d/log/slurmd-%n.log"
    # each node's own temporary folder (PMIx puts its per-step client folder there)
    echo "TmpFS=$d/tmp/%n"
    echo "SlurmdTimeout=${E2E_SLURMD_TIMEOUT:-10}"
    echo "TaskProlog=$d/task-prolog"
    for k in $(seq "$n"); do
      echo "NodeName=node$k NodeHostname=node$k NodeAddr=$net.$k CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=node[1-$n] Default=YES MaxTime=INFINITE State=UP"
  } >> "$d/slurm.conf"
  export SLURM_CONF=$d/slurm.conf
  slurmctld -i -f "$SLURM_CONF" || { show_logs "$d"; die "slurmctld did not start"; }
  for k in $(seq "$n"); do
    nsenter -t "$(cat "$d/net/node$k.pid")" -n -u slurmd -f "$SLURM_CONF" -N "node$k" ||
      { show_logs "$d"; die "slurmd of node$k did not start"; }
  done
  wait_idle "$d" "$n"
  trap - EXIT
}

# start_owner_watch DIR PID: a process that stops the cluster once PID is gone
start_owner_watch() {
  local self
  self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; exec "$3" stop "$2"' \
    owner-watch "$2" "$1" "$self" </dev/null >/dev/null 2>&1 &
  echo $! > "$1/owner-watch.pid"
}

start() {
  local d="" nodes=1 owner="" c
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) [ $# -ge 2 ] || die "--nodes needs a number"; nodes=$2; shift 2 ;;
      --nodes=*) nodes=${1#--nodes=}; shift ;;
      --owner) [ $# -ge 2 ] || die "--owner needs a PID"; owner=$2; shift 2 ;;
      -*) die "start: unknown option $1" ;;
      *) [ -z "$d" ] || die "start: one directory only"; d=$1; shift ;;
    esac
  done
  [[ $nodes =~ ^[1-9][0-9]*$ ]] && [ "$nodes" -le 250 ] || die "--nodes must be 1 to 250, got '$nodes'"
  [ -z "$owner" ] || kill -0 "$owner" 2>/dev/null || die "--owner $owner: no such process"
  for c in munged mungekey slurmctld slurmd sinfo; do
    command -v "$c" >/dev/null || die "$c not found: install slurmctld slurmd slurm-client munge (launch/install-deps.sh)"
  done
  if [ "$nodes" -gt 1 ]; then
    local why
    why=$(nodes_problem)
    [ -z "$why" ] || die "$why"
  fi
  if [ -z "$d" ]; then
    d=$(mktemp -d "${TMPDIR:-/tmp}/e2e-slurm.XXXXXX")
  else
    mkdir -p "$d"
    [ ! -f "$d/slurm.conf" ] || ! pid_alive "$d/slurmctld.pid" || die "$d: a cluster is already running there"
  fi
  d=$(cd "$d" && pwd)
  chmod 0755 "$d"
  mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log"
  chmod 0755 "$d/munge"  # clients of any user reach the socket; the key itself is 0600
  local cpus mem
  cpus=${E2E_SLURM_CPUS:-$(nproc)}
  [[ $cpus =~ ^[1-9][0-9]*$ ]] || die "E2E_SLURM_CPUS must be a positive integer, got '$cpus'"
  [ "$cpus" -ge 2 ] || cpus=2
  mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
  start_munge "$d"
  if [ "$nodes" -eq 1 ]; then start_one_node "$d" "$cpus" "$mem"
  else start_nodes "$d" "$nodes" "$cpus" "$mem"
  fi
  [ -z "$owner" ] || start_owner_watch "$d" "$owner"
  print_env "$d"
}

stop_all() {
  local d=$1 i
  export SLURM_CONF=$d/slurm.conf
  # the owner's watch, unless this is it (it runs `stop` when its owner is gone)
  if [ -f "$d/owner-watch.pid" ] && [ "$(cat "$d/owner-watch.pid")" != $$ ]; then
    kill "$(cat "$d/owner-watch.pid")" 2>/dev/null || true
  fi
  rm -f "$d/owner-watch.pid"
  if pid_alive "$d/slurmctld.pid"; then
    timeout 10 scancel --quiet --partition=debug 2>/dev/null || true
    for i in $(seq 100); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
      sleep 0.1
    done
  fi
  stop_pids "$d"/slurmd*.pid "$d/slurmctld.pid" "$d/munge/munged.pid"
  stop_network "$d"
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case "$cmd" in
  start) start "$@" ;;
  env) [ $# -le 1 ] || { usage >&2; exit 2; }; print_env "$(resolve_dir "${1:-}")" ;;
  status) [ $# -le 1 ] || { usage >&2; exit 2; }; d=$(resolve_dir "${1:-}"); SLURM_CONF=$d/slurm.conf sinfo -N -l ;;
  stop)
    [ $# -le 1 ] || { usage >&2; exit 2; }
    d=$(resolve_dir "${1:-}")
    stop_all "$d"
    [ "${E2E_SLURM_KEEP:-0}" = 1 ] || rm -rf "$d"
    ;;
  check-nodes)
    why=$(nodes_problem)
    [ -z "$why" ] || { echo "$me: $why" >&2; exit 1; }
    echo "$me: this machine can host namespaced nodes"
    ;;
  on)
    [ $# -ge 2 ] || die "usage: on NODE CMD..."
    d=$(resolve_dir)
    pid=$(node_pid "$d" "$1")
    shift
    exec nsenter -t "$pid" -n -u "$@"
    ;;
  kill-node)
    [ $# -eq 1 ] || die "usage: kill-node NODE"
    d=$(resolve_dir)
    node_pid "$d" "$1" >/dev/null
    kill_netns_procs KILL "$d/net/$1.pid.ns"
    ;;
  link)
    [ $# -eq 2 ] && { [ "$2" = down ] || [ "$2" = up ]; } || die "usage: link NODE down|up"
    d=$(resolve_dir)
    node_pid "$d" "$1" >/dev/null
    nsenter -t "$(cat "$d/net/switch.pid")" -n ip link set "$1" "$2"
    ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
