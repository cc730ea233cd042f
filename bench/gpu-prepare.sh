#!/bin/sh
# bench/gpu-prepare.sh: run HERE (the development machine, from the repository
# root) before a GPU call.  Gathers into .bench-gpu/ (git-ignored through
# .git/info/exclude, never committed) everything bench/gpu-run.sh needs on a
# bare NVIDIA machine that reaches no network:
#   dreamloom.txz  the built binary and the shared libraries it links (the
#                  Vulkan loader among them), glibc's own excepted
#   diffusers.txz, huggingface_hub.txz   their Python sources (diffusers'
#                  v0.27.2 and the hub client it was released with)
#   golden.txz     the tiny golden SD 1.5 folder, and the golden UNet, LoRA and
#                  text-encoder cases reduced to what the equivalence check reads
#   bpe_simple_vocab_16e6.txt.gz   CLIP's vocabulary (random-weight benches)
# About 32 MiB: the device call carries at most 64 MiB with the work tree.
#
# Settings (environment): DREAMLOOM (binary, default build/app/dreamloom),
# DIFFUSERS_SRC, HF_HUB_SRC (folders holding the diffusers/ and
# huggingface_hub/ packages), DREAMLOOM_GOLDEN, DREAMLOOM_CLIP_VOCAB, PYTHON
# (one with torch, to reduce the golden batches; default /usr/bin/python3).
set -eu
cd "$(git rev-parse --show-toplevel)"
bin=${DREAMLOOM:-build/app/dreamloom}
diffusers_src=${DIFFUSERS_SRC:-/work/ext/diffusers-0.27.2/src}
hub_src=${HF_HUB_SRC:-/work/ext/huggingface_hub-0.21.4/src}
golden=${DREAMLOOM_GOLDEN:-/work/shared/golden}
vocab=${DREAMLOOM_CLIP_VOCAB:-/work/shared/data/clip/bpe_simple_vocab_16e6.txt.gz}
python=${PYTHON:-/usr/bin/python3}

for p in "$bin" "$diffusers_src/diffusers/__init__.py" "$hub_src/huggingface_hub/__init__.py" \
  "$golden/tiny-sd15-diffusers/unet/config.json" "$vocab"; do
  [ -e "$p" ] || { echo "gpu-prepare: missing $p (see bench/README.md)" >&2; exit 2; }
done
grep -qx '/.bench-gpu/' .git/info/exclude 2>/dev/null || echo '/.bench-gpu/' >>.git/info/exclude
rm -rf .bench-gpu
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p .bench-gpu "$stage/dreamloom/lib" "$stage/golden"

cp "$bin" "$stage/dreamloom/dreamloom"
ldd "$bin" | awk '/=> \// { print $3 }' | while read -r so; do
  case $(basename "$so") in
  libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux* | libresolv.so.*) ;;
  *) cp -L "$so" "$stage/dreamloom/lib/" ;;
  esac
done
tar -C "$stage" -cJf .bench-gpu/dreamloom.txz dreamloom
tar -C "$diffusers_src" --exclude=__pycache__ -cJf .bench-gpu/diffusers.txz diffusers
tar -C "$hub_src" --exclude=__pycache__ -cJf .bench-gpu/huggingface_hub.txz huggingface_hub

cp -r "$golden/tiny-sd15-diffusers" "$golden/lora_kohya.safetensors" "$stage/golden/"
"$python" - "$golden" "$stage/golden" <<'PY'
import os, sys
sys.path.insert(0, "bench")
import _safetensors_lite as st
src, dst = sys.argv[1:3]
keep = {"unet.safetensors": ("x", "timesteps", "context", "target", "loss"),
        "lora.safetensors": ("x", "timesteps", "context", "target", "loss"),
        "text_encoder.safetensors": ("input_ids", "last_hidden_state")}
for name, keys in keep.items():
    t = st.load_file(os.path.join(src, name))
    st.save_file({k: t[k] for k in keys}, os.path.join(dst, name))
PY
tar -C "$stage" -cJf .bench-gpu/golden.txz golden
cp "$vocab" .bench-gpu/
du -sh .bench-gpu
echo "gpu-prepare: ready; carry .bench-gpu and run: bash bench/gpu-run.sh"
