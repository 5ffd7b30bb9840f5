#!/bin/sh
# Continue studies on a GPU machine in one device call, then pack their records for this repository.
#
# On the GPU machine (no network, no Fashion-MNIST): the four IDX files travel in the ignored folder
# data/fashion-mnist/ (about 30 MB), named in the device tool's carry:
#
#   mkdir -p data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz data/fashion-mnist/
#   run(command="OUT=$OUT sh studies/gpu.sh", carry=["data"], timeout_s=560)
#
# Every experiment file of STUDIES runs at once (each store has its own lock; each file's runs WORKERS at a
# time, THREADS CPU threads each, all on the one GPU), for BUDGET seconds (default 480, so that packing fits a
# 9-minute call); then each is stopped with SIGINT (finished runs are kept; an unfinished one is redone later,
# a descent resumes from its last finished iteration) and $OUT/records.tgz holds every record, trajectory and
# law of the studies, no checkpoints. Back here: tar xzf FILES_AT/records.tgz, check `git status`, commit the
# finished runs, then `python studies/tables.py`. Finished runs are never redone, wherever they ran: a run's
# id does not include its device.
#
# A pruning baseline whose pretrained run finished on another machine trains that run again first (its
# weights are not in the records), once per pretrained run and machine, in <run>/weights/ (not packed).
set -u
BUDGET=${BUDGET:-480}
# the studies still running: MobileNetV2's (every VGG11 and ResNet18 study is finished: fmnist-vgg11/*.toml,
# fmnist-resnet18/*.toml, fmnist-vgg11-regime/*.toml, 2026-12-05). Its descent first (from 1/2 width an iteration
# takes about 3 h on one of these CPUs' threads): one machine at a time per descent, so stop any local run of it
# first (its unfinished iteration's checkpoint does not travel; the GPU redoes that iteration, and once its
# records are unpacked here a local descent resumes after it). Once its last iteration is done, the same file's
# sweep trains every method at both budgets. STUDIES=... names others (a finished one ends at once: its runs are
# all done).
# Calls back to back on a warm machine: the ignored checkpoints stay there between them, but the next call's copy
# of this working tree drops the records the last one wrote (untracked here) and resets the tracked ones (a
# store's sweep.json, a descent's log). So each call first unpacks the last call's archive, kept on that machine
# in $KEEP, and its records.tgz holds the work of every call on that machine: unpack the last one only. (The
# unpacked archive replaces the copied tree's records: between calls, change nothing here in those studies.)
STUDIES=${STUDIES:-"studies/fmnist-mobilenetv2/regime.toml"}
WORKERS=${WORKERS:-3}
THREADS=${THREADS:-1}
OUT=${OUT:-/tmp/study-out}
mkdir -p "$OUT"
export PYTHONPATH=src NEURALSCALE_DATA="$PWD/data" PYTHONUNBUFFERED=1
KEEP=/tmp/neuralscale-study-records.tgz
[ -f "$KEEP" ] && tar xzf "$KEEP" && echo "unpacked the last call's records ($KEEP)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/device.txt" 2>&1 || true
# the CUDA tests too, beside the studies (a machine's start costs minutes of the device time: one call does both);
# CUDA_TESTS=0 leaves them out. Their summary is the last line of $OUT/cuda_tests.log.
if [ "${CUDA_TESTS:-1}" != 0 ]; then
    (timeout -k 10 "$BUDGET" python3 -m pytest -q -m cuda -p no:cacheprovider -o addopts= tests/test_cuda.py \
         > "$OUT/cuda_tests.log" 2>&1; echo "exit status $?" >> "$OUT/cuda_tests.log") &
fi
dirs=""
for f in $STUDIES; do
    log="$OUT/$(basename "$(dirname "$f")")-$(basename "$f" .toml).log"
    (timeout -s INT -k 30 "$BUDGET" python3 -m neuralscale experiment "$f" --quiet \
         --workers "$WORKERS" --threads "$THREADS" > "$log" 2>&1
     echo "exit status $?" >> "$log") &
    case " $dirs " in *" $(dirname "$f") "*) ;; *) dirs="$dirs $(dirname "$f")" ;; esac
done
wait
# the last call's studies too, so that the archive holds every call's work on this machine
[ -f "$KEEP" ] && for d in $(tar tzf "$KEEP" | cut -d/ -f1-2 | sort -u); do
    case " $dirs " in *" $d "*) ;; *) dirs="$dirs $d" ;; esac
done
packed=""
for d in $dirs; do packed="$packed $d/*/"; done
# shellcheck disable=SC2086  # the folders' globs are meant to expand
tar czf "$OUT/records.tgz" --exclude='*.pt' --exclude='*.ckpt' --exclude='.lock' --exclude='*/runs/*/log.txt' \
    --exclude='*/runs/*/weights' --exclude='*/report' $packed
cp "$OUT/records.tgz" "$KEEP.tmp" && mv "$KEEP.tmp" "$KEEP"  # whole or not at all, if the call is cut off here
ls -la "$OUT"; tail -n 3 "$OUT"/*.log
