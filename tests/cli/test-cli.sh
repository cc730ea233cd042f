#!/bin/sh
# The headless subcommands: exit statuses and the facts their output must carry.
# usage: test-cli.sh DREAMLOOM
set -u
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out" "$tmp/err" 2>/dev/null; }
check() { # description, then a command that must succeed
  d="$1"; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}

"$bin" --help >"$tmp/out" 2>"$tmp/err"
check "--help exits 0 and lists the commands" grep -q "devices" "$tmp/out"

"$bin" --version >"$tmp/out" 2>"$tmp/err"
check "--version prints a version" grep -q "^dreamloom [0-9]" "$tmp/out"

"$bin" no-such-command >"$tmp/out" 2>"$tmp/err"; st=$?
check "an unknown command exits 2" test "$st" -eq 2
check "an unknown command is named" grep -q "no-such-command" "$tmp/err"

"$bin" devices >"$tmp/out" 2>"$tmp/err"; st=$?
check "devices exits 0" test "$st" -eq 0
for field in "type:" "fp16 arithmetic:" "16-bit storage:" "int8 arithmetic:" "subgroup size:" \
             "cooperative matrix (KHR):" "max storage buffer range:" "max shared memory:" \
             "memory heap 0:" "timestamps:" "Dreamloom would use device"; do
  check "devices reports '$field'" grep -qF "$field" "$tmp/out"
done

DREAMLOOM_DEVICE=no-such-gpu "$bin" bench matmul --size 8x8x8 --iters 1 >"$tmp/out" 2>"$tmp/err"; st=$?
check "an unknown DREAMLOOM_DEVICE is an error" test "$st" -eq 1
check "the error names the selector" grep -q "no-such-gpu" "$tmp/err"

"$bin" bench matmul --size 64x48x40 --size 7x129x33 --iters 2 >"$tmp/out" 2>"$tmp/err"; st=$?
check "bench matmul exits 0" test "$st" -eq 0
check "bench matmul prints GFLOP/s" grep -q "GFLOP/s" "$tmp/out"
check "bench matmul prints one row per size" test "$(grep -cE '^ +(64|7) ' "$tmp/out")" -eq 2

"$bin" bench matmul --size 0x1x1 >"$tmp/out" 2>"$tmp/err"; st=$?
check "bench matmul rejects a bad size" test "$st" -eq 2

# ---- model files and the tokenizer (golden data read in place; SKIP without it) ----
here=$(cd "$(dirname "$0")" && pwd)
golden=${DREAMLOOM_GOLDEN_DIR:-$here/../../../shared/golden}
clip=${DREAMLOOM_TEST_CLIP_DIR:-$here/../../../shared/data/clip}
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
lines() { wc -l <"$1" | tr -d ' '; }
ldm="$golden/tiny-sd15-ldm.safetensors"
diffusers="$golden/tiny-sd15-diffusers"
if [ -f "$ldm" ] && [ -d "$diffusers" ]; then
  "$bin" inspect "$ldm" --config "$diffusers" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "inspect a single file with --config exits 0" test "$st" -eq 0
  check "inspect names the family" grep -q "^family: *Stable Diffusion 1.x" "$tmp/out"
  check "inspect counts the UNet's parameters" grep -qE "unet +2,446,788 parameters in +684 tensors +\(F32" "$tmp/out"
  check "inspect counts the text encoder's parameters" grep -qE "text_encoder +1,609,216 parameters" "$tmp/out"
  check "inspect prints the metadata" grep -q "format = pt" "$tmp/out"
  check "inspect names where the head count came from" grep -q "unet.attention_heads .*unet/config.json" "$tmp/out"
  check "inspect reports unknown keys" grep -q "^unknown keys (0)" "$tmp/out"
  "$bin" inspect "$diffusers" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "inspect a diffusers folder exits 0" test "$st" -eq 0
  check "inspect says it is a diffusers folder" grep -q "^layout: *diffusers folder" "$tmp/out"
  "$bin" inspect "$ldm" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "inspect without the config it needs exits 1" test "$st" -eq 1
  check "... with one line asking for --config" sh -c "test \$(wc -l <'$tmp/err') -eq 1 && grep -q -- --config '$tmp/err'"
  "$bin" inspect "$golden/lora_kohya.safetensors" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "inspect a LoRA exits 1" test "$st" -eq 1
  check "... saying it looks like a LoRA" grep -q "looks like a LoRA" "$tmp/err"
else
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13; do skip "golden tiny model absent"; done
fi
printf 'not a model at all\n' >"$tmp/bad.safetensors"
"$bin" inspect "$tmp/bad.safetensors" >"$tmp/out" 2>"$tmp/err"; st=$?
check "inspect a bad file exits 1" test "$st" -eq 1
check "... with one line naming the file" sh -c "test \$(wc -l <'$tmp/err') -eq 1 && grep -q bad.safetensors '$tmp/err'"
"$bin" inspect "$tmp/missing.ckpt" >"$tmp/out" 2>"$tmp/err"; st=$?
check "inspect a missing file exits 1" test "$st" -eq 1
"$bin" inspect >"$tmp/out" 2>"$tmp/err"; st=$?
check "inspect without a path exits 2" test "$st" -eq 2

vocab="$clip/bpe_simple_vocab_16e6.txt.gz"
if [ -f "$vocab" ]; then
  "$bin" tokenize --vocab "$vocab" "a photo of sks dog" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "tokenize exits 0" test "$st" -eq 0
  check "tokenize prints the ids" test "$(cat "$tmp/out")" = "49406 320 1125 539 48136 1929 49407"
  "$bin" tokenize --vocab "$vocab" --pad "a photo of sks dog" >"$tmp/out" 2>"$tmp/err"
  check "tokenize --pad prints 77 ids padded with 49407" \
    sh -c "test \$(wc -w <'$tmp/out') -eq 77 && test \$(tr ' ' '\n' <'$tmp/out' | grep -c '^49407\$') -eq 71"
  "$bin" tokenize --vocab "$vocab" --tokens "sks" >"$tmp/out" 2>"$tmp/err"
  check "tokenize --tokens prints id and token" grep -q "$(printf '48136\tsks</w>')" "$tmp/out"
  "$bin" tokenize --vocab "$vocab" --add-token "<s*>" "a photo of <s*>" >"$tmp/out" 2>"$tmp/err"
  check "tokenize --add-token makes one id" test "$(cat "$tmp/out")" = "49406 320 1125 539 49408 49407"
  DREAMLOOM_CLIP_VOCAB="$vocab" "$bin" tokenize -v "Hello World!!" >"$tmp/out" 2>"$tmp/err"
  check "tokenize finds \$DREAMLOOM_CLIP_VOCAB" test "$(cat "$tmp/out")" = "49406 3306 1002 748 49407"
  check "... and says so with -v" grep -q "vocabulary $vocab" "$tmp/err"
else
  for i in 1 2 3 4 5 6 7; do skip "the CLIP vocabulary is absent"; done
fi
if [ -d "$diffusers/tokenizer" ]; then
  "$bin" tokenize --model "$diffusers" "a photo of a cat" >"$tmp/out" 2>"$tmp/err"
  check "tokenize --model uses the model's tokenizer/" test "$(cat "$tmp/out")" = "49406 320 1125 539 320 2368 49407"
else
  skip "golden tiny model absent"
fi
# an installed copy (listed by --help as "3. PATH", without "(absent)") would be found first
"$bin" tokenize --help >"$tmp/out" 2>&1
if grep -E '^ +3\. ' "$tmp/out" | grep -vq '(absent)$'; then
  skip "an installed CLIP vocabulary is present"; skip "an installed CLIP vocabulary is present"
else
  mkdir -p "$tmp/hub"
  env -u DREAMLOOM_CLIP_VOCAB HF_HUB_CACHE="$tmp/hub" "$bin" tokenize "x" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "tokenize without any vocabulary exits 1" test "$st" -eq 1
  check "... saying where it looked" sh -c "grep -q 'Looked at' '$tmp/err' && grep -q DREAMLOOM_CLIP_VOCAB '$tmp/err' && grep -q 'clip-vit-large-patch14' '$tmp/err'"
fi
"$bin" tokenize >"$tmp/out" 2>"$tmp/err"; st=$?
check "tokenize without a prompt exits 2" test "$st" -eq 2

# ---- sample and grad on the golden tiny model ----
# st_get FILE NAME: a tensor's float32 values, one per line (pure Python, no numpy)
st_get() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); base = 8 + n
t = h[sys.argv[2]]; a, b = t['data_offsets']; f.seek(base + a); raw = f.read(b - a)
fmt = {'F32': 'f', 'I64': 'q'}[t['dtype']]
for v in struct.unpack('<%d%s' % (len(raw) // struct.calcsize(fmt), fmt), raw): print(repr(float(v)))
PY
}
# st_rename SRC DST OLD=NEW...: a copy of a safetensors file with tensors renamed
st_rename() {
  python3 - "$@" <<'PY'
import json, struct, sys
src, dst, pairs = sys.argv[1], sys.argv[2], dict(p.split('=') for p in sys.argv[3:])
f = open(src, 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); data = f.read()
h = {pairs.get(k, k): v for k, v in h.items()}
j = json.dumps(h).encode(); j += b' ' * (-len(j) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(j)) + j + data)
PY
}
if [ -d "$diffusers" ] && [ -f "$golden/unet.safetensors" ] && command -v python3 >/dev/null; then
  "$bin" sample --model "$diffusers" --prompt "a photo of sks dog" --negative "blurry" --steps 2 --sampler ddim \
    --width 32 --height 32 --seed 7 --batch 2 --out "$tmp/img.png" --out-latents "$tmp/lat.safetensors" \
    >"$tmp/out" 2>"$tmp/err"; st=$?
  check "sample exits 0" test "$st" -eq 0
  check "sample writes one PNG per image" test -s "$tmp/img.png" -a -s "$tmp/img-1.png"
  check "the PNG carries A1111's parameters" grep -qa "Steps: 2, Sampler: DDIM, CFG scale: 7.5, Seed: 7, Size: 32x32" "$tmp/img.png"
  check "the second image has the next seed" grep -qa "Seed: 8," "$tmp/img-1.png"
  check "sample writes the final latents" test "$(st_get "$tmp/lat.safetensors" latents | wc -l)" -eq 2048
  st_get "$tmp/lat.safetensors" latents | head -1024 >"$tmp/full.txt"
  "$bin" sample --model "$diffusers" --prompt "a photo of sks dog" --steps 2 --sampler ddim --width 32 --height 32 \
    --seed 7 --lora "$golden/lora_kohya.safetensors:0.8" --out "$tmp/lora.png" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "sample --lora exits 0" test "$st" -eq 0
  check "the parameters name the LoRA" grep -qa "<lora:lora_kohya:0.8>" "$tmp/lora.png"
  check "the LoRA changes the image" sh -c "! cmp -s '$tmp/img.png' '$tmp/lora.png'"
  "$bin" sample --model "$ldm" --config "$diffusers" --fp16 --prompt "a photo of sks dog" --negative "blurry" --steps 2 \
    --sampler ddim --width 32 --height 32 --seed 7 --out "$tmp/half.png" --out-latents "$tmp/half.safetensors" \
    >"$tmp/out" 2>"$tmp/err"; st=$?
  check "sample --fp16 from the single file exits 0" test "$st" -eq 0
  st_get "$tmp/half.safetensors" latents >"$tmp/half.txt" 2>/dev/null
  check "... and lands within 2% of the f32 latents" python3 -c "
import sys; a = [float(v) for v in open(sys.argv[1]).read().split()]; b = [float(v) for v in open(sys.argv[2]).read().split()]
sys.exit(max(abs(x - y) for x, y in zip(a, b)) > 0.02 * max(abs(y) for y in b))" \
    "$tmp/half.txt" "$tmp/full.txt"
  "$bin" sample --model "$diffusers" --prompt x --sampler nope --out "$tmp/x.png" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "sample rejects an unknown sampler" test "$st" -eq 1
  "$bin" sample --model "$tmp/missing.safetensors" --prompt x --out "$tmp/x.png" >"$tmp/out" 2>"$tmp/err"; st=$?
  check "sample names a missing model" sh -c "test $st -eq 1 && grep -q missing.safetensors '$tmp/err'"

  st_rename "$golden/unet.safetensors" "$tmp/batch.safetensors" x=noisy_latents
  "$bin" grad --model "$ldm" --config "$diffusers" --batch "$tmp/batch.safetensors" --out "$tmp/g.safetensors" \
    >"$tmp/out" 2>"$tmp/err"; st=$?
  check "grad exits 0" test "$st" -eq 0
  check "grad's loss matches PyTorch (rtol 1e-5)" python3 -c "
import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-5 * abs(b))" \
    "$(st_get "$tmp/g.safetensors" loss)" "$(st_get "$golden/unet.safetensors" loss)"
  check "grad writes every UNet gradient" test "$(python3 -c "
import json, struct, sys; f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]
print(sum(k.startswith('grad.unet.') for k in json.loads(f.read(n))))" "$tmp/g.safetensors")" -eq 684
  "$bin" grad --model "$diffusers" --batch "$golden/unet.safetensors" --out "$tmp/g2.safetensors" \
    >"$tmp/out" 2>"$tmp/err"; st=$?
  check "grad explains a batch without noisy_latents/latents" sh -c "test $st -eq 1 && grep -q noisy_latents '$tmp/err'"
else
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do skip "golden tiny model or python3 absent"; done
fi

echo "1..$n"
exit $fail
