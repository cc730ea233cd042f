#!/bin/bash
# bench/gpu-run.sh: the whole Dreamloom-vs-PyTorch comparison on a bare NVIDIA
# machine, in one short call.  Prepare first, on the development machine:
#   bash bench/gpu-prepare.sh          # fills .bench-gpu/ (git-ignored)
# then, on the GPU machine, from the repository root, with .bench-gpu carried:
#   bash bench/gpu-run.sh              # results in $OUT (or ./bench-out)
# It needs there: python3 with a CUDA PyTorch (>= 1.13), the NVIDIA driver
# with its Vulkan ICD, nothing from the network.  Everything else (the
# dreamloom binary and the libraries it links, the Vulkan loader, diffusers'
# and huggingface_hub's sources, the golden tiny model) comes in .bench-gpu/.
#
# What it runs (each step under its own time limit; GPU_BUDGET_S, default 480,
# caps the whole):
#   1. compare.py --fp16: equivalence check, bench matmul, the LoRA step at
#      512x512 (f16 frozen base; checkpointing on and off; batch 1 and 4) and
#      sampling (UNet batch 2B with CFG, text encoder, VAE decode).
#   2. compare.py f32: the LoRA step and the full UNet step at 512x512, batch 1,
#      checkpointing on.
# Settings: GPU_SIZE (512), GPU_RUNS (1), GPU_ITERS (5), GPU_BUDGET_S (480).  compare.py writes
# its JSON after every case, so a pass cut short by the budget keeps what it measured.
set -u
cd "$(dirname "$0")/.."
B=$PWD/.bench-gpu
out=${OUT:-$PWD/bench-out}
mkdir -p "$out"
size=${GPU_SIZE:-512}
runs=${GPU_RUNS:-1}
iters=${GPU_ITERS:-5}
budget=${GPU_BUDGET_S:-480}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }

if [ ! -f "$B/dreamloom.txz" ]; then
  echo "gpu-run: no .bench-gpu/dreamloom.txz: run bash bench/gpu-prepare.sh on the development machine and carry .bench-gpu" >&2
  exit 2
fi
W=$(mktemp -d /tmp/dlbench.XXXXXX)
trap 'rm -rf "$W"' EXIT
for t in dreamloom diffusers huggingface_hub golden; do tar -C "$W" -xJf "$B/$t.txz" || exit 2; done
# the bundled libraries are Debian 12's: keep only those this system lacks,
# so that its own (newer, same soname) copies are used
for so in "$W"/dreamloom/lib/*; do
  n=$(basename "$so")
  case $n in libvulkan.so.1) ;; *) if ldconfig -p | grep -q "^[[:space:]]*$n "; then rm -f "$so"; fi ;; esac
done
# the Vulkan loader: the system's if it has one
if ldconfig -p | grep -q 'libvulkan.so.1 '; then rm -f "$W/dreamloom/lib/libvulkan.so.1"; fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
  /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; break; fi
done
# a wrapper, so that the bundled libraries reach dreamloom alone (not Python's torch)
cat >"$W/dreamloom.sh" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$W/dreamloom/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$W/dreamloom/dreamloom" "\$@"
EOF
chmod +x "$W/dreamloom.sh"
export DREAMLOOM_CLIP_VOCAB=$B/bpe_simple_vocab_16e6.txt.gz
export PYTHONPATH=$W${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

{
  echo "== $(date -u)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}; bundled libraries kept: $(ls "$W/dreamloom/lib" | tr '\n' ' ')"
  "$py" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())' 2>&1
  "$W/dreamloom.sh" devices 2>&1
} | tee "$out/gpu-env.txt"

common=(--device cuda --size "$size" --runs "$runs" --iters "$iters" --dreamloom "$W/dreamloom.sh"
  --golden "$W/golden" --python "$py" --timeout 240)
t=$(left)
[ "$t" -gt 30 ] || t=30
timeout "$t" "$py" bench/compare.py "${common[@]}" --fp16 --cases lora,sample --batch 1 --batch 4 \
  --checkpointing on --checkpointing off --json "$out/compare-f16.json" 2>&1 | tee "$out/compare-f16.log"
t=$(left)
if [ "$t" -gt 60 ]; then
  timeout "$t" "$py" bench/compare.py "${common[@]}" --skip-check --no-matmul --cases lora,full --batch 1 \
    --checkpointing on --json "$out/compare-f32.json" 2>&1 | tee "$out/compare-f32.log"
else
  echo "gpu-run: no time left for the f32 pass" | tee "$out/compare-f32.log"
fi
echo "gpu-run: done in $(($(date +%s) - start)) s; results in $out"
