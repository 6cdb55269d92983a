#!/usr/bin/env bash
# Fetch, into .whl/ (git-ignored), the wheels that a lent GPU machine lacks for this package
# (docs/benchmarks.md, "Preparing a device call"): its image has Python 3.12 with jax 0.11.2 (CUDA 13),
# flax, optax, chex, orbax-checkpoint, scipy, matplotlib, imageio, tqdm and protobuf, but not
# MuJoCo, MJX, Gymnasium, distrax (with tfp-nightly and its needs) or tensorboardX. Run here,
# where pip reaches a package index; then name .whl in the device call's carry.
#
#   bash benchmarks/device_wheels.sh      # then: run(command="bash benchmarks/device_gpu.sh ...",
#                                         #           carry=[".whl"])
#
# The mujoco and mujoco-mjx wheels are repacked without the studio viewer and MJX's test
# models (nothing here imports them), so the tree plus wheels stays under the 64 MiB a
# device call can carry.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
  mujoco==3.17.0 mujoco-mjx==3.17.0 trimesh==5.2.0
  gymnasium==1.4.0 farama-notifications==0.0.6
  distrax==0.1.9 tfp-nightly==0.26.0.dev20261027 decorator==5.2.1 gast==0.7.0 dm-tree==0.1.10
  tensorboardX==2.6.5
)
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for w in .whl/mujoco-*.whl .whl/mujoco_mjx-*.whl; do
  rm -rf "$tmp/w" && mkdir "$tmp/w" && unzip -q "$w" -d "$tmp/w"
  rm -rf "$tmp/w/mujoco/experimental" "$tmp/w/mujoco/mjx/test_data"
  (cd "$tmp/w" && zip -q -r -9 "$tmp/new.whl" .) && mv "$tmp/new.whl" "$w"
done
n=$(ls .whl/*.whl | wc -l)
[ "$n" -eq "${#WHEELS[@]}" ] || { echo "device_wheels: expected ${#WHEELS[@]} wheels, got $n" >&2; exit 1; }
du -sh .whl
