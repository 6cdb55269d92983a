#!/usr/bin/env bash
# GPU figures for docs/benchmarks.md in one short device lease, run from the repository root
# on a machine whose python3 already has a CUDA jax (the lent H200's image does).
#
#   bash benchmarks/device_gpu.sh check   # ~1 min: versions, imports, one MJX compile
#   bash benchmarks/device_gpu.sh main    # pipeline vs raw at 512 envs, seeds 1/4/16, baselines
#   bash benchmarks/device_gpu.sh accel   # #15's benchmark in ~9 min: MJX step latency by
#                                         # solver setting (item 3), and 1/8/64 runs in one call
#                                         # at 512 and 4,096 envs per run against raw stepping
#   bash benchmarks/device_gpu.sh latency # ~3 min: item 3's solver settings alone
#   bash benchmarks/device_gpu.sh learner # ~9 min: item 4, ground-truth PPO shaped for a GPU:
#                                         # learning rates x seeds in one program, final
#                                         # policies back for a Gymnasium evaluation on a CPU
#   bash benchmarks/device_gpu.sh learners # the learner stage for several presets at once
#
# Packages missing on that machine (mujoco, mujoco-mjx, gymnasium, distrax, tensorboardX, ...)
# travel as wheels in .whl/, fetched here by `bash benchmarks/device_wheels.sh` (the call
# names .whl in its carry); they are installed into /tmp/site, then benchmarks/preflight.py
# imports everything a run needs and stops the stage in seconds if anything is missing.
# Results land in $OUT (default out/gpu): logs and the benchmarks' JSON records.
set -uo pipefail
stage=${1:-check}
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
# SITE_READY=1: the wheels are installed already (a parent stage did it; or a CPU check of
# this script, whose Python is not the wheels' 3.12).
if [ -z "${SITE_READY:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export SITE_READY=1
case ":${PYTHONPATH:-}:" in *":$PWD:"*) ;; *) export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" ;; esac
# Every module a run imports, lazily imported ones too, before any compile is paid for.
if [ -z "${PREFLIGHT_DONE:-}" ]; then
  python3 -m benchmarks.preflight 2>&1 | grep -v "^Failed to import .*warp" || exit 1
  export PREFLIGHT_DONE=1
fi
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache PYTHONUNBUFFERED=1

gpu_txt() {  # the card and the versions, into $OUT/gpu.txt
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
  python3 -c "import jax, flax, optax, mujoco; print('jax', jax.__version__, 'flax', flax.__version__,
    'optax', optax.__version__, 'mujoco', mujoco.__version__, jax.devices())" 2>&1 | tee -a "$OUT/gpu.txt"
}

case "$stage" in
check)
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv \
    | tee "$OUT/gpu.txt"
  python3 - <<'EOF' 2>&1 | tee "$OUT/check.log"
import time
import jax, jax.numpy as jnp, flax, optax, mujoco, gymnasium
import active_rlhf_jax  # noqa: F401  (sets its XLA flag)
from active_rlhf_jax.envs import TrainingEnv, make
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__,
      "mujoco", mujoco.__version__, "gymnasium", gymnasium.__version__, jax.devices())
raw = make("HalfCheetah-v5", backend="auto")
print("backend auto ->", raw)
env = TrainingEnv(raw, 512)
state = jax.jit(env.reset)(jax.random.PRNGKey(0))
def roll(state):
    def body(s, _):
        s = env.step(s, jnp.zeros((512, env.action_size)))
        return s, s.reward.mean()
    return jax.lax.scan(body, state, None, length=100)
t = time.perf_counter(); c = jax.jit(roll).lower(state).compile(); t_c = time.perf_counter() - t
jax.block_until_ready(c(state)); t = time.perf_counter(); jax.block_until_ready(c(state))
print(f"MJX HalfCheetah 512 envs x 100 steps: compile {t_c:.1f} s, "
      f"{512 * 100 / (time.perf_counter() - t):,.0f} steps/s")
EOF
  ;;
main)
  # The default preset (HalfCheetah-v5, bald-info, 20,480 env steps per iteration) sized for
  # a GPU: 512 envs x 40 steps = one rollout per iteration, minibatch 2048 (10 per epoch).
  sizes=(--set ppo.num_envs=512 --set ppo.num_steps=40 --set ppo.minibatch_size=2048)
  timeout "${PIPELINE_TIMEOUT:-400}" python3 -m benchmarks.pipeline_throughput --preset default \
    "${sizes[@]}" --chunks 4 --iterations-per-chunk 1 --sweep-chunks 3 \
    --sweep-iterations-per-chunk 1 --seed-counts 1,4,16 --sweep-first --raw-steps 100 --raw-repeats 2 \
    --json "$OUT/pipeline_gpu.json" 2>&1 | tee "$OUT/pipeline_gpu.log"
  timeout "${ENV_TIMEOUT:-120}" python3 -m benchmarks.env_throughput --envs HalfCheetah-v5 \
    --backends mjx --batch-sizes 512,4096,16384 --steps 100 --repeats 2 --max-run-seconds 300 \
    --json "$OUT/env_gpu.json" 2>&1 | tee "$OUT/env_gpu.log"
  ;;
accel)
  # Every program compiles at once (the host's cores), then each is timed alone
  # (benchmarks/compile_then_time.py); one deadline for the whole stage. Sizes can be
  # shrunk for a CPU check of this script: SMALL=4 LARGE=8 RUNS="1 8" BACKEND=mujoco ...
  # FIDELITY=ls8 measures the setting recommended on accelerators (2026-12-04 ran gymnasium).
  SMALL=${SMALL:-512} LARGE=${LARGE:-4096} RUNS=${RUNS:-"1 8 64"} BACKEND=${BACKEND:-mjx}
  PRESET=${PRESET:-cheetah+results} LAT_STEPS=${LAT_STEPS:-50} RAW_STEPS=${RAW_STEPS:-32}
  NUM_STEPS=${NUM_STEPS:-64} MINIBATCHES=${MINIBATCHES:-8} FIDELITY=${FIDELITY:-gymnasium}
  gpu_txt
  scale="python3 -m benchmarks.accelerator_scaling --preset $PRESET --backend $BACKEND --raw-actions uniform,zero \
    --num-steps $NUM_STEPS --minibatches $MINIBATCHES --raw-steps $RAW_STEPS --raw-repeats 2 \
    --jsonl $OUT/scaling.jsonl \
    --fidelity $FIDELITY"
  lat="python3 -m benchmarks.mjx_latency --steps $LAT_STEPS --repeats 2"
  cmds=(--cmd "$lat --batch-sizes $SMALL --json $OUT/latency_small.json")
  for r in $RUNS; do [ "$r" = 1 ] || cmds+=(--cmd "$scale --points ${SMALL}x$r"); done
  for r in $RUNS; do [ "$r" = 1 ] || [ "$r" = 64 ] || cmds+=(--cmd "$scale --points ${LARGE}x$r"); done
  cmds+=(--cmd "$scale --points ${SMALL}x1" --cmd "$scale --points ${LARGE}x1")
  cmds+=(--cmd "$lat --batch-sizes $LARGE --variants gymnasium,ls8,fast --json $OUT/latency_large.json")
  [ "$FIDELITY" = fast ] || cmds+=(--cmd "$scale --points ${LARGE}x8 --fidelity fast")
  for r in $RUNS; do [ "$r" = 64 ] && cmds+=(--cmd "$scale --points ${LARGE}x$r"); done
  python3 -m benchmarks.compile_then_time --deadline "${DEADLINE:-520}" \
    --ready-timeout "${READY_TIMEOUT:-300}" "${cmds[@]}" 2>&1 | tee "$OUT/accel.log"
  ;;
latency)
  # #15 item 3 alone (~3 min): every solver setting at 512 envs, random and zero actions,
  # and the fast setting at 32,768 envs (the total batch of 8 x 4,096 runs).
  lat="python3 -m benchmarks.mjx_latency --steps ${LAT_STEPS:-50} --repeats 2"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
  python3 -m benchmarks.compile_then_time --deadline "${DEADLINE:-200}" \
    --ready-timeout "${READY_TIMEOUT:-150}" \
    --cmd "$lat --batch-sizes ${SMALL:-512} --json $OUT/latency_variants.json" \
    --cmd "$lat --batch-sizes ${SMALL:-512} --variants gymnasium,fast --actions zero \
      --json $OUT/latency_zero_actions.json" \
    --cmd "$lat --batch-sizes ${TOTAL:-32768} --variants fast --json $OUT/latency_total_fast.json" \
    2>&1 | tee "$OUT/latency.log"
  ;;
learner)
  # #15 item 4: ground-truth PPO sized for a GPU (PRESET, default cheetah+results: its task
  # and tuned PPO settings except the shape: E envs x T steps per update, minibatches of
  # MB, EPOCHS epochs, MJX at FIDELITY), one cell per learning rate in LRS, SEEDS seeds from SEED, all in one
  # compiled program (the learning rate is traced). The sweep stops at BUDGET seconds
  # whatever it has done (metrics.jsonl is written every CHUNK iterations); the run
  # directories come back without checkpoints (learner_runs.tgz: config, metrics, MJX
  # evaluation, final policies) for `active-rlhf evaluate --backend gymnasium` elsewhere.
  # EXTRA: further sweep flags, as one string. CPU check of this stage (SITE_READY=1):
  # BACKEND=mujoco E=8 MB=64 ITERS=2 CHUNK=1 SEEDS=2 LRS=3e-4,1e-3
  E=${E:-1024} T=${T:-32} MB=${MB:-4096} EPOCHS=${EPOCHS:-10} ITERS=${ITERS:-112}
  CHUNK=${CHUNK:-16} LRS=${LRS:-1e-4,3e-4,1e-3} SEEDS=${SEEDS:-9} SEED=${SEED:-900}
  BACKEND=${BACKEND:-mjx} FIDELITY=${FIDELITY:-ls8} BUDGET=${BUDGET:-515}
  EVAL=${EVAL:-2} PRESET=${PRESET:-cheetah+results}
  per_iter=$((E * 64))   # 64 steps per env per iteration: one clip of 50 fits (the preset's)
  runs=$OUT/runs_tmp
  [ -n "${NO_GPU_TXT:-}" ] || gpu_txt
  echo "start $(date -u +%FT%TZ)" | tee "$OUT/learner.log"
  timeout -k 10 "$BUDGET" python3 -m active_rlhf_jax.cli sweep --preset "$PRESET" \
    --arms ground-truth --grid "ppo.learning_rate=$LRS" --seeds "$SEEDS" --seed "$SEED" \
    --env.backend "$BACKEND" --env.fidelity "$FIDELITY" --ppo.num_envs "$E" --ppo.num_steps "$T" \
    --ppo.minibatch_size "$MB" --ppo.update_epochs "$EPOCHS" \
    --run.ppo_timesteps_per_iteration "$per_iter" --run.total_ppo_timesteps $((per_iter * ITERS)) \
    --run.iterations_per_chunk "$CHUNK" --run.eval_episodes "$EVAL" --gym-eval-episodes 0 \
    ${EXTRA:-} --out "$runs" 2>&1 | tee -a "$OUT/learner.log"
  echo "end $(date -u +%FT%TZ) rc=${PIPESTATUS[0]}" | tee -a "$OUT/learner.log"
  tar czf "$OUT/learner_runs.tgz" --exclude=checkpoints --exclude=tb --exclude=run.lock \
    -C "$runs" . && rm -rf "$runs"
  ls -la "$OUT"
  ;;
learners)
  # item 4 on several tasks in one lease: one `learner` stage per preset of PRESETS (the
  # learner's variables apply to each), all started at once: their compiles share the
  # host's cores and their iterations the GPU, each process held to MEM_FRACTION of its
  # memory. Results in $OUT/<task>/ (learner.log, learner_runs.tgz, stage.log).
  PRESETS=${PRESETS:-hopper+results,walker+results}
  gpu_txt
  pids=()
  for p in ${PRESETS//,/ }; do
    d="$OUT/${p%%+*}"
    mkdir -p "$d"
    OUT="$d" PRESET="$p" NO_GPU_TXT=1 XLA_PYTHON_CLIENT_MEM_FRACTION=${MEM_FRACTION:-0.45} \
      bash "$0" learner > "$d/stage.log" 2>&1 &
    pids+=($!)
  done
  rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  for p in ${PRESETS//,/ }; do echo "== ${p%%+*}"; tail -n 4 "$OUT/${p%%+*}/learner.log"; done
  exit $rc
  ;;
*)
  echo "usage: $0 check|main|accel|latency|learner|learners" >&2
  exit 2
  ;;
esac
