#!/usr/bin/env bash
# dist/comm/watchdog.h's heartbeats through a real mpirun (3 ranks, --peer-timeout 2 s, the
# progress limit 60 s; tests/watchdog_probe.c):
#  1. a rank that goes silent (stopped, as a node cut off) is named by rank 0, which ends
#     the job with exit 76 within a few seconds, while the others wait in a collective;
#  2. ranks that finish at different times, or work long without any MPI call, are not
#     declared lost (heartbeats go on until every rank has reached the end);
#  3. all ranks stopped together for 3 timeouts and continued (a suspended job) are not
#     declared lost either.
# Usage: heartbeat.sh WATCHDOG_PROBE
. "$(dirname "$0")/lib.sh"
prog=${1:?usage: heartbeat.sh WATCHDOG_PROBE}
need mpirun
run() {  # run MODE: mpirun -np 3 in the background, output in $work/MODE.out; sets $pid
  mpirun -np 3 --bind-to none "$prog" "$1" 60 2 > "$work/$1.out" 2>&1 &
  pid=$!
}
ready() { [ "$(cat "$work/$1.out" 2>/dev/null | grep -c "ready$")" -eq 3 ]; }
ended() { ! kill -0 "$pid" 2>/dev/null; }

# ---- 1. lost
run lost
t0=$SECONDS
wait_for 60 "the lost-rank job to end" ended
wait "$pid"
rc=$?
secs=$((SECONDS - t0))
cat "$work/lost.out"
check "the job ended with exit 76 (got $rc) in $secs s" test "$rc" -eq 76
check "  within 20 s" test "$secs" -le 20
check "  rank 0 named the silent rank 2, its host, where it was and the exit code" \
  grep -q "^watchdog: rank 2 stopped answering: no heartbeat for [23] s, last seen in a training step ([^)]*): .*; reported by rank 0 (host [^)]*), ending every rank (exit 76)$" "$work/lost.out"
check "  one report" test "$(grep -c '^watchdog:' "$work/lost.out")" -eq 1

# ---- 2. finish at different times
run finish
wait_for 60 "the staggered job to end" ended
wait "$pid"
rc=$?
cat "$work/finish.out"
check "ranks that leave at different times: exit 0 (got $rc)" test "$rc" -eq 0
check "  nobody declared lost" bash -c "! grep -q '^watchdog:' '$work/finish.out'"

# ---- 3. the whole job stopped and continued
run idle
if wait_for 30 "the idle job's ranks" ready idle; then
  ranks=$(pgrep -P "$pid" -d ' ' -f "$prog" || true)
  [ -n "$ranks" ] || ranks=$(pgrep -d ' ' -f "$prog idle 60 2$")
  note "stopping ranks $ranks for 6 s"
  kill -STOP $ranks
  sleep 6
  kill -CONT $ranks
fi
wait_for 60 "the suspended job to end" ended
wait "$pid"
rc=$?
cat "$work/idle.out"
check "a job stopped and continued as a whole: exit 0 (got $rc)" test "$rc" -eq 0
check "  nobody declared lost" bash -c "! grep -q '^watchdog:' '$work/idle.out'"
finish
