#!/usr/bin/env bash
# A one-node Slurm (launch/local-slurm.sh) starts, offers `srun --mpi=pmix`, and an Open
# MPI program started by `srun --mpi=pmix` inside an sbatch job gets its rank and size
# through Slurm's PMIx server; without PMIx (--mpi=none) the same program cannot start.
# Usage: slurm_pmix.sh MPI_HELLO
. "$(dirname "$0")/lib.sh"
hello=${1:?usage: slurm_pmix.sh MPI_HELLO}
start_cluster

check "srun --mpi=list offers pmix" bash -c "timeout 20 srun --mpi=list 2>&1 | grep -qw pmix"

cat > "$work/job.sh" <<JOB
#!/bin/bash
echo "job: SLURM_MPI_TYPE=\${SLURM_MPI_TYPE:-unset} ntasks=\$SLURM_NTASKS"
srun --mpi=pmix $hello > $work/pmix.out 2>&1
echo "pmix rc=\$?"
srun --mpi=none $hello > $work/none.out 2>&1
echo "none rc=\$?"
JOB
jid=$(timeout 20 sbatch --parsable -n 2 -o "$work/job.out" "$work/job.sh")
check "sbatch accepted the job" test -n "$jid"
wait_for 120 "job $jid to finish" job_gone "$jid"
cat "$work/job.out" "$work/pmix.out"

check "srun --mpi=pmix exited 0" grep -q "^pmix rc=0$" "$work/job.out"
check "two ranks reported" test "$(grep -c '^mpi_hello ' "$work/pmix.out")" -eq 2
for r in 0 1; do
  check "rank $r of 2, its rank from PMIx (PMIX_RANK=$r), the all-reduce sum 3, node-local rank $r of 2" \
    grep -q "^mpi_hello rank=$r size=2 sum=3 PMIX_RANK=$r PMIX_NAMESPACE=slurm\.pmix\.[0-9]*\.0 SLURM_PROCID=$r SLURM_STEP_ID=0 SLURM_MPI_TYPE=pmix host=[^ ]* local_rank=$r local_size=2 SLURM_LOCALID=$r$" "$work/pmix.out"
done
check "without PMIx (srun --mpi=none) Open MPI cannot start" bash -c "grep -q '^none rc=[1-9]' '$work/job.out'"
finish
