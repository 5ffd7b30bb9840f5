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
# the studies still running (the finished ones: fmnist-vgg11/*.toml, fmnist-resnet18/*.toml). First the VGG11
# regime's descent, the longest wait on these CPUs (an iteration takes up to 6 h on one of their threads): one
# machine at a time per descent, so stop it here first (its unfinished iteration's checkpoint does not travel;
# the GPU redoes that iteration, and once its records are unpacked here the local descent resumes after it).
# Its first.toml runs beside it (the store takes one sweep at a time: when regime.toml reaches its own sweep,
# the one that comes second says so in one line and stops; the next call carries on), then MobileNetV2's.
STUDIES=${STUDIES:-"studies/fmnist-vgg11-regime/regime.toml studies/fmnist-vgg11-regime/first.toml studies/fmnist-mobilenetv2/regime.toml"}
WORKERS=${WORKERS:-3}
THREADS=${THREADS:-1}
OUT=${OUT:-/tmp/study-out}
mkdir -p "$OUT"
export PYTHONPATH=src NEURALSCALE_DATA="$PWD/data" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/device.txt" 2>&1 || true
dirs=""
for f in $STUDIES; do
    log="$OUT/$(basename "$(dirname "$f")")-$(basename "$f" .toml).log"
    (timeout -s INT -k 30 "$BUDGET" python3 -m neuralscale experiment "$f" --quiet \
         --workers "$WORKERS" --threads "$THREADS" > "$log" 2>&1
     echo "exit status $?" >> "$log") &
    case " $dirs " in *" $(dirname "$f") "*) ;; *) dirs="$dirs $(dirname "$f")" ;; esac
done
wait
packed=""
for d in $dirs; do packed="$packed $d/*/"; done
# shellcheck disable=SC2086  # the folders' globs are meant to expand
tar czf "$OUT/records.tgz" --exclude='*.pt' --exclude='*.ckpt' --exclude='.lock' --exclude='*/runs/*/log.txt' \
    --exclude='*/runs/*/weights' --exclude='*/report' $packed
ls -la "$OUT"; tail -n 3 "$OUT"/*.log
