#!/usr/bin/env bash
# A one-node Slurm cluster on 127.0.0.1, for tests and for trying the sbatch template on a
# laptop: its own munged (own key and socket), slurmctld and slurmd from Debian's
# slurm-wlm 22.05, and a minimal slurm.conf, everything under one directory. Nothing in
# /etc is read or written; no systemd. Tested as root (as CI runs it).
#
#   eval "$(launch/local-slurm.sh start [DIR])"   start; prints the exports clients need
#                                                 (SLURM_CONF, E2E_SLURM_DIR)
#   launch/local-slurm.sh env [DIR]               print those exports again
#   launch/local-slurm.sh status [DIR]            sinfo of the cluster
#   launch/local-slurm.sh stop [DIR]              cancel its jobs, stop the daemons by PID
#                                                 (DIR is removed unless E2E_SLURM_KEEP=1)
#
# DIR defaults to a new mktemp directory on start, and to $E2E_SLURM_DIR (or the folder of
# $SLURM_CONF) for the other commands. The node is called "e2e" (partition "debug") and
# advertises E2E_SLURM_CPUS CPUs (default: the machine's cores, at least 2; more than the
# machine has is allowed, through SlurmdParameters=config_overrides). Logs are in DIR/log.
#
# Packages (launch/install-deps.sh): slurmctld slurmd slurm-client munge, and libpmix-dev
# for `srun --mpi=pmix` (Slurm's mpi/pmix plugin dlopens pmix2/lib/libpmix.so, which only
# the -dev package provides).
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

start() {
  local d=${1:-}
  for c in munged mungekey slurmctld slurmd sinfo; do
    command -v "$c" >/dev/null || die "$c not found: install slurmctld slurmd slurm-client munge (launch/install-deps.sh)"
  done
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
  local user cpus mem ctld_port slurmd_port
  user=$(id -un)
  cpus=${E2E_SLURM_CPUS:-$(nproc)}
  [[ $cpus =~ ^[1-9][0-9]*$ ]] || die "E2E_SLURM_CPUS must be a positive integer, got '$cpus'"
  [ "$cpus" -ge 2 ] || cpus=2
  mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  [ "$slurmd_port" != "$ctld_port" ] || slurmd_port=$((ctld_port + 1))

  # munge: a fresh key and a private socket, so that the host's munge (if any) is untouched
  rm -f "$d/munge/munge.key"
  mungekey --create --keyfile="$d/munge/munge.key" >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chmod 0600 "$d/munge/munge.key"
  munged --force --socket="$d/munge/munge.socket.2" --key-file="$d/munge/munge.key" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
    --seed-file="$d/munge/munged.seed" ||
    { show_logs "$d"; die "munged did not start"; }

  cat > "$d/slurm.conf" <<EOF
# one-node test cluster written by launch/local-slurm.sh
ClusterName=e2e
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again
# (default 120 s; 5 s here so that the requeue tests stay short)
AuthInfo=socket=$d/munge/munge.socket.2,cred_expire=5
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
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
NodeName=e2e NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=e2e Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$d/slurm.conf
  # -i: ignore state left by an earlier cluster in the same DIR
  slurmctld -i -f "$SLURM_CONF" || { show_logs "$d"; stop_all "$d"; die "slurmctld did not start"; }
  slurmd -f "$SLURM_CONF" -N e2e || { show_logs "$d"; stop_all "$d"; die "slurmd did not start"; }
  # ready when the node is idle (bounded: 30 s)
  local i state=""
  for i in $(seq 300); do
    state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.1
  done
  if [ "$state" != idle ]; then
    show_logs "$d"
    stop_all "$d"
    die "the node did not become idle within 30 s (state: '${state:-no answer}')"
  fi
  print_env "$d"
}

stop_all() {
  local d=$1 i
  export SLURM_CONF=$d/slurm.conf
  if pid_alive "$d/slurmctld.pid"; then
    timeout 10 scancel --quiet --partition=debug 2>/dev/null || true
    for i in $(seq 100); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
      sleep 0.1
    done
  fi
  stop_pids "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munge/munged.pid"
}

cmd=${1:-}
[ $# -le 2 ] || { usage >&2; exit 2; }
case "$cmd" in
  start) start "${2:-}" ;;
  env) print_env "$(resolve_dir "${2:-}")" ;;
  status) d=$(resolve_dir "${2:-}"); SLURM_CONF=$d/slurm.conf sinfo ;;
  stop)
    d=$(resolve_dir "${2:-}")
    stop_all "$d"
    [ "${E2E_SLURM_KEEP:-0}" = 1 ] || rm -rf "$d"
    ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
