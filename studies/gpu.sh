#!/bin/sh
# Continue a study on a GPU machine in one device call, then pack its records for this repository.
#
# On the GPU machine (no network, no Fashion-MNIST): the four IDX files travel in the ignored folder
# data/fashion-mnist/ (about 30 MB), named in the device tool's carry:
#
#   mkdir -p data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz data/fashion-mnist/
#   run(command="sh studies/gpu.sh", carry=["data"], timeout_s=560)
#
# It works for BUDGET seconds (default 480, so that packing fits a 9-minute call), stops the experiment with
# SIGINT (finished runs are kept; an unfinished one is redone later), and writes $OUT/records.tgz: every
# record, trajectory and law of the study, no checkpoints.  Back here: tar xzf FILES_AT/records.tgz, check
# `git status`, commit.  Finished runs are never redone, wherever they ran: a run's id does not include its
# device.
set -u
BUDGET=${BUDGET:-480}
STUDY=${STUDY:-studies/fmnist-vgg11/params.gpu.toml}
# While a study's descent still runs, BESIDE=studies/fmnist-vgg11/baselines.gpu.toml (say) trains the runs that
# need no more of it beside the descent. Once the descent is finished (fmnist-vgg11's is), leave it out: the
# study's own sweep then takes every worker.
BESIDE=${BESIDE:-none}
OUT=${OUT:-/tmp/study-out}
mkdir -p "$OUT"
export PYTHONPATH=src NEURALSCALE_DATA="$PWD/data" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/device.txt" 2>&1 || true
# BESIDE (if it exists): runs that need no more of the descent, started first so that their sweep holds the run
# store while the study's descent runs; the study's own sweep then waits for a later call (its lock is taken).
if [ -f "$BESIDE" ]; then
    (timeout -s INT -k 30 "$BUDGET" python3 -m neuralscale experiment "$BESIDE" --quiet > "$OUT/beside.log" 2>&1
     echo "exit status $?" >> "$OUT/beside.log") &
    sleep 15
fi
timeout -s INT -k 30 "$BUDGET" python3 -m neuralscale experiment "$STUDY" --quiet > "$OUT/experiment.log" 2>&1
echo "experiment exit status $?" >> "$OUT/experiment.log"
wait
tar czf "$OUT/records.tgz" --exclude='*.pt' --exclude='*.ckpt' --exclude='.lock' --exclude='*/runs/*/log.txt' \
    "$(dirname "$STUDY")"/*/
ls -la "$OUT"
