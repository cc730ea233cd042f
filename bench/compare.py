#!/usr/bin/env python3
"""Dreamloom against diffusers on PyTorch, same hardware, same shapes.

  PYTHONPATH=/path/to/diffusers/src /usr/bin/python3 bench/compare.py \
      --size 64 --size 128 [--batch 1] [--checkpointing on] [--device cpu|cuda] \
      --dreamloom build/app/dreamloom --json out.json

1. Equivalence first: the tiny golden SD 1.5 model through `dreamloom grad`
   and through diffusers' UNet (torch_reference.py golden), plain and with the
   golden kohya LoRA attached: the losses must agree to 1e-4 (the LoRA
   gradients are compared too), or nothing is timed.
2. `dreamloom bench matmul`: our matmul kernel's best GFLOP/s on this device
   (the measured peak), and PyTorch's matmul on the same device for scale.
3. Each case (lora: `bench train --method lora --no-text-encoder`; sample:
   `bench sample`; full: `bench train-step`) at each size and batch, on both
   sides, --runs times, interleaved (ours, PyTorch, ours, ...) so that both
   see the same machine load; medians.
4. One table and one JSON: step time of each side and the ratio ours/PyTorch,
   peak memory of each and the ratio, our top per-op GPU times, and the
   achieved FLOP/s of our matmul/conv/attention work against the measured
   peak.  The load average is recorded around every measurement.

Peak memory: on a GPU, our device-memory peak against
torch.cuda.max_memory_allocated; on the CPU (lavapipe) both processes' peak
RSS (what the machine had to hold), our device-memory peak alongside.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

MiB = 1048576.0
LAVAPIPE_ICD = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"

# ---- running a process, with its own peak RSS ----


def run_measured(cmd, env, timeout=None):
    """Runs cmd; returns (exit status, stdout+stderr text, peak RSS bytes, wall s).
    The process's CPU seconds (user + system) are left in run_measured.cpu_s."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            if timeout:
                deadline = time.monotonic() + timeout
                while True:
                    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                    if pid:
                        break
                    if time.monotonic() > deadline:
                        p.kill()
                        pid, status, ru = os.wait4(p.pid, 0)
                        break
                    time.sleep(0.2)
            else:
                pid, status, ru = os.wait4(p.pid, 0)
        finally:
            p.returncode = 0  # reaped here, not by Popen
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    code = os.waitstatus_to_exitcode(status)
    run_measured.cpu_s = ru.ru_utime + ru.ru_stime
    return code, text, ru.ru_maxrss * 1024, wall


def load():
    return [round(x, 2) for x in os.getloadavg()]


def settle(a):
    """With --max-load: wait (at most --max-wait s) for the 1-minute load
    average to drop below it.  Returns the seconds waited."""
    if not a.max_load:
        return 0.0
    t0 = time.monotonic()
    while os.getloadavg()[0] >= a.max_load and time.monotonic() - t0 < a.max_wait:
        time.sleep(10)
    return time.monotonic() - t0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- parsing Dreamloom's text output (tolerant: fields may come and go) ----


def _num(pattern, text, group=1, cast=float):
    m = re.search(pattern, text, re.M)
    return cast(m.group(group)) if m else None


def parse_profile(text):
    """The per-op table after 'per-op GPU time': rows `name calls total_ms mean_us share%`."""
    rows = []
    total = None
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("per-op GPU time")), None)
    if start is None:
        return rows, total
    for line in lines[start + 1 :]:
        f = line.split()
        if not f or f[0] == "pipeline":
            continue
        if f[0] == "total" and len(f) == 2:
            total = float(f[1])
            break
        if len(f) < 5 or not f[-1].endswith("%"):
            break
        try:
            rows.append(
                dict(
                    name=" ".join(f[:-4]),
                    calls=int(f[-4]),
                    total_ms=float(f[-3]),
                    mean_us=float(f[-2]),
                    share=float(f[-1].rstrip("%")),
                )
            )
        except ValueError:
            break
    return rows, total


def parse_ours(kind, text):
    r = {}
    r["device"] = (re.search(r"^device: (.*)$", text, re.M) or [None, None])[1]
    if kind == "lora":
        r["step_s"] = _num(r"^train step \(.*?\): ([\d.]+) s/it", text)
        r["trained_params"] = _num(r"([\d.]+) M trained parameters", text)
        r["peak_predicted_mib"] = _num(r"peak: predicted ([\d.]+) MiB", text)
        r["device_peak_mib"] = _num(r"measured ([\d.]+) MiB", text)
        r["state_mib"] = _num(r"weights \+ trained state ([\d.]+) MiB", text)
        r["activations_mib"] = _num(r"activations peak ([\d.]+) MiB", text)
        r["prepare_s"] = _num(r"prepared in ([\d.]+) s", text)
    elif kind == "full":
        r["step_s"] = _num(r"^train step \(.*?\): ([\d.]+) s/it", text)
        r["device_peak_mib"] = _num(r"device memory: .*?peak ([\d.]+) MiB", text)
        r["activations_mib"] = _num(r"activations peak ([\d.]+) MiB", text)
    elif kind == "sample":
        r["text_encoder_s"] = _num(r"^text encoder.*?:\s+([\d.]+) s", text)
        r["step_s"] = _num(r"^sampling step.*?: ([\d.]+) s/it", text)
        r["vae_decode_s"] = _num(r"^VAE decode[^:\n]*:\s+([\d.]+) s", text)
        r["weights_mib"] = _num(r"device memory: weights ([\d.]+) MiB", text)
        # "peak X MiB" and possibly more peaks after it (e.g. "..., Y MiB (with the VAE decode)"): the largest
        m = re.search(r"^device memory: weights [\d.]+ MiB, peak (.*)$", text, re.M)
        peaks = [float(x) for x in re.findall(r"([\d.]+) MiB", m.group(1))] if m else []
        r["device_peak_mib"] = max(peaks) if peaks else None
    prof, total = parse_profile(text)
    r["profile"] = prof
    r["profile_total_ms"] = total
    return r


def parse_matmul(text):
    peak = _num(r"^Peak \(\w+\): ([\d.]+) GFLOP/s", text)
    rows = []
    for m in re.finditer(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+(\S+%|-)?\s*(.*)$", text, re.M):
        rows.append(dict(m=int(m[1]), n=int(m[2]), k=int(m[3]), tile=m[4], ms=float(m[5]), gflops=float(m[6]), what=m[8]))
    return peak, rows


MATMUL_OPS = re.compile(r"matmul|gemm|conv|attn|attention|flash|linear|bmm", re.I)


# ---- the equivalence check ----


def equivalence(a, env_ours, env_torch, tmp):
    import _safetensors_lite as st

    golden = a.golden
    model = os.path.join(golden, "tiny-sd15-diffusers")
    unet_b = st.load_file(os.path.join(golden, "unet.safetensors"))
    lora_b = st.load_file(os.path.join(golden, "lora.safetensors"))
    plain = os.path.join(tmp, "plain-batch.safetensors")
    lorab = os.path.join(tmp, "lora-batch.safetensors")
    for src, dst in ((unet_b, plain), (lora_b, lorab)):
        st.save_file(
            {"noisy_latents": src["x"], "timesteps": src["timesteps"], "context": src["context"], "target": src["target"]},
            dst,
        )
    lora_file = os.path.join(golden, "lora_kohya.safetensors")
    res = dict(model=model, lora=lora_file, tolerance=a.tolerance)
    # PyTorch: plain and LoRA
    tout = os.path.join(tmp, "torch.safetensors")
    cmd = [a.python, os.path.join(HERE, "torch_reference.py"), "golden", "--device", "cpu", "--golden-model", model,
           "--batch-file", plain, "--lora-batch-file", lorab, "--lora-file", lora_file, "--out", tout]
    code, text, _, _ = run_measured(cmd, env_torch)
    if code:
        raise SystemExit("compare: torch_reference golden failed:\n" + text[-3000:])
    tres = parse_torch(text) or {}
    if "text_encoder_max_abs_diff" in tres:
        # the PyTorch side's CLIP text encoder against transformers' (golden case b)
        res["torch_text_encoder_max_abs_diff"] = tres["text_encoder_max_abs_diff"]
    # ours
    op, ol = os.path.join(tmp, "ours-plain.safetensors"), os.path.join(tmp, "ours-lora.safetensors")
    for cmd in (
        [a.dreamloom, "grad", "--model", model, "--batch", plain, "--out", op],
        [a.dreamloom, "grad", "--model", model, "--batch", lorab, "--lora", lora_file, "--out", ol],
    ):
        code, text, _, _ = run_measured(cmd, env_ours)
        if code:
            raise SystemExit("compare: %s failed:\n%s" % (" ".join(cmd), text[-3000:]))
    T_plain = T_lora = st.load_file(tout)
    O_plain, O_lora = st.load_file(op), st.load_file(ol)
    res["plain"] = dict(
        ours=float(O_plain["loss"]), torch=float(T_plain["loss"]), golden=float(unet_b["loss"])
    )
    res["lora"] = dict(ours=float(O_lora["loss"]), torch=float(T_lora["lora_loss"]), golden=float(lora_b["loss"]))
    # adapter gradients: ours names them grad.<kohya name>.lora_{down,up}.weight (or with a prefix)
    worst, n = 0.0, 0
    ours_by_suffix = {}
    for k, v in O_lora.items():
        if k.startswith("grad.") and "lora_unet_" in k:
            ours_by_suffix[k[k.index("lora_unet_") :]] = v
    for k, v in T_lora.items():
        if not k.startswith("grad."):
            continue
        o = ours_by_suffix.get(k[len("grad.") :])
        if o is None:
            continue
        scale = float(v.abs().max()) or 1.0
        worst = max(worst, float((o.reshape(v.shape) - v).abs().max()) / scale)
        n += 1
    res["lora_grads"] = dict(compared=n, max_rel_diff=worst)
    ok = all(abs(res[c]["ours"] - res[c]["torch"]) <= a.tolerance for c in ("plain", "lora"))
    res["ok"] = ok
    return res


# ---- the cases ----


def ours_cmd(a, case, size, batch, profile):
    d = a.dreamloom
    common = ["-r", str(size), "-b", str(batch), "-n", str(a.iters)]
    if not profile:
        common.append("--no-profile")
    if case == "lora":
        cmd = [d, "bench", "train", "--method", "lora", "--no-text-encoder", "--rank", str(a.rank)] + common
        if a.checkpointing:
            cmd.append("--checkpointing")
        if a.fp16:
            cmd.append("--fp16")
    elif case == "full":
        cmd = [d, "bench", "train-step"] + common
        if a.checkpointing:
            cmd.append("--checkpointing")
    else:
        cmd = [d, "bench", "sample"] + common
        if a.fp16:
            cmd.append("--fp16")
    return cmd


def torch_cmd(a, case, size, batch):
    cmd = [a.python, os.path.join(HERE, "torch_reference.py"), case, "--size", str(size), "--batch", str(batch),
           "--checkpointing", "on" if a.checkpointing else "off", "--rank", str(a.rank), "--device", a.device,
           "--iters", str(a.iters), "--threads", str(a.threads)]
    if a.fp16:
        cmd.append("--fp16")
    return cmd


def parse_torch(text):
    line = next((l for l in reversed(text.splitlines()) if l.startswith("RESULT ")), None)
    return json.loads(line[len("RESULT ") :]) if line else None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run_case(a, case, size, batch, env_ours, env_torch):
    runs = []
    for r in range(a.runs):
        entry = {"run": r + 1}
        last = r == a.runs - 1
        for side in (("ours", "torch") if r % 2 == 0 else ("torch", "ours")):
            waited = settle(a)
            before = load()
            if side == "ours":
                cmd = ours_cmd(a, case, size, batch, profile=last and not a.no_profile)
                code, text, rss, wall = run_measured(cmd, env_ours, a.timeout)
                res = parse_ours(case, text) if code == 0 else None
            else:
                cmd = torch_cmd(a, case, size, batch)
                code, text, rss, wall = run_measured(cmd, env_torch, a.timeout)
                res = parse_torch(text) if code == 0 else None
            after = load()
            if res is None or res.get("step_s") is None:
                log("compare: %s %s %dx%d batch %d failed (exit %s):\n%s" % (side, case, size, size, batch, code,
                                                                         text[-2000:]))
                res = {"error": text[-2000:], "exit": code}
            res.update(peak_rss_bytes=rss, process_wall_s=wall, process_cpu_s=run_measured.cpu_s,
                       load_before=before, load_after=after, waited_for_load_s=waited, command=" ".join(cmd))
            entry[side] = res
            log("  %s run %d %-5s: step %s s, peak RSS %.0f MiB, process %.0f s wall / %.0f s CPU, load %s -> %s" % (
                case, r + 1, side, res.get("step_s"), rss / MiB, wall, run_measured.cpu_s, before[0], after[0]))
        runs.append(entry)
    return summarise(a, case, size, batch, runs)


def summarise(a, case, size, batch, runs):
    def col(side, key):
        return [r[side].get(key) for r in runs if "error" not in r[side]]

    s = dict(case=case, size=size, batch=batch, checkpointing=a.checkpointing, runs=runs)
    s["ours_step_s"] = med(col("ours", "step_s"))
    s["torch_step_s"] = med(col("torch", "step_s"))
    s["ours_step_runs"] = col("ours", "step_s")
    s["torch_step_runs"] = col("torch", "step_s")
    if a.device == "cuda":
        s["ours_peak_bytes"] = med([x * MiB if x else None for x in col("ours", "device_peak_mib")])
        s["torch_peak_bytes"] = med(col("torch", "peak_bytes"))
        s["memory_kind"] = "device: our allocator's peak / torch.cuda.max_memory_allocated"
    else:
        s["ours_peak_bytes"] = med(col("ours", "peak_rss_bytes"))
        s["torch_peak_bytes"] = med(col("torch", "peak_rss_bytes"))
        s["ours_device_peak_bytes"] = med([x * MiB if x else None for x in col("ours", "device_peak_mib")])
        s["memory_kind"] = "peak RSS of each process (lavapipe's device memory is host memory)"
    for k in ("ours", "torch"):
        s[k + "_peak_runs"] = col(k, "peak_rss_bytes")
        s[k + "_process_cpu_s"] = col(k, "process_cpu_s")
        s[k + "_process_wall_s"] = col(k, "process_wall_s")
    s["torch_step_cpu_s"] = med(col("torch", "cpu_s"))
    # PyTorch also measures its own CPU seconds per step (all threads, OpenMP's
    # spinning included); for ours only the whole process's CPU time is known
    # (ours_process_cpu_s): on a shared CPU, difference two runs with
    # different --iters to get ours per step (docs/performance.md does)
    if case == "sample":
        for k in ("text_encoder_s", "vae_decode_s"):
            s["ours_" + k] = med(col("ours", k))
            s["torch_" + k] = med(col("torch", k))
        s["torch_text_encoder_first_s"] = med(col("torch", "text_encoder_first_s"))
        s["torch_vae_decode_first_s"] = med(col("torch", "vae_decode_first_s"))
    if s["ours_step_s"] and s["torch_step_s"]:
        s["time_ratio"] = s["ours_step_s"] / s["torch_step_s"]
    if s["ours_peak_bytes"] and s["torch_peak_bytes"]:
        s["memory_ratio"] = s["ours_peak_bytes"] / s["torch_peak_bytes"]
    s["load"] = [r[side]["load_before"][0] for r in runs for side in ("ours", "torch")]
    # the profile (last run of ours)
    prof = next((r["ours"].get("profile") for r in reversed(runs) if r["ours"].get("profile")), None) or []
    total_ms = sum(p["total_ms"] for p in prof)
    s["ours_profile_top"] = sorted(prof, key=lambda p: -p["total_ms"])[: a.top]
    s["ours_profile_total_ms"] = total_ms
    mm_ms = sum(p["total_ms"] for p in prof if MATMUL_OPS.search(p["name"]))
    s["ours_matmul_ms"] = mm_ms
    flops = med(col("torch", "matmul_flops"))
    s["matmul_flops"] = flops
    if flops:
        if mm_ms:
            s["ours_matmul_gflops"] = flops / (mm_ms * 1e-3) * 1e-9
        if s["ours_step_s"]:
            s["ours_step_gflops"] = flops / s["ours_step_s"] * 1e-9
        if s["torch_step_s"]:
            s["torch_step_gflops"] = flops / s["torch_step_s"] * 1e-9
    return s


# ---- report ----


def fmt(x, spec="%.3f", none="-"):
    return spec % x if x is not None else none


def table(report):
    out = []
    eq = report.get("equivalence")
    if eq:
        out.append("Equivalence (tiny golden SD 1.5, tolerance %g): %s" % (eq["tolerance"], "PASS" if eq["ok"] else "FAIL"))
        for c in ("plain", "lora"):
            e = eq[c]
            out.append("  %-5s loss: ours %.7f  PyTorch %.7f  golden %.7f  |diff| %.2e" % (
                c, e["ours"], e["torch"], e["golden"], abs(e["ours"] - e["torch"])))
        g = eq["lora_grads"]
        out.append("  LoRA gradients: %d tensors, max |diff| / max|g| = %.2e" % (g["compared"], g["max_rel_diff"]))
        if "torch_text_encoder_max_abs_diff" in eq:
            out.append("  PyTorch side's CLIP text encoder against transformers' golden output: max |diff| %.2e" %
                       eq["torch_text_encoder_max_abs_diff"])
    mm = report.get("matmul")
    if mm:
        out.append("Matmul peak: ours %s GFLOP/s (best of `bench matmul`), nominal %s, PyTorch %s GFLOP/s" % (
            fmt(mm.get("ours_best_gflops"), "%.1f"), fmt(mm.get("nominal_gflops"), "%.0f"),
            fmt(mm.get("torch_gflops"), "%.1f")))
    out.append("")
    hdr = "%-7s %5s %3s %4s | %9s %9s %6s | %9s %9s %6s | %s" % (
        "case", "size", "b", "ckpt", "ours s", "torch s", "ratio", "ours MiB", "torch MiB", "ratio", "load (1-min)")
    if report.get("device") == "cpu":
        out.append("(CPU: memory is each process's peak RSS; times are wall clock, shared with whatever else runs)")
    out.append(hdr)
    out.append("-" * len(hdr))
    for s in report["cases"]:
        def row(name, o, t):
            return "%-7s %5d %3d %4s | %9s %9s %6s | %9s %9s %6s | %s" % (
                name, s["size"], s["batch"], "on" if s["checkpointing"] else "off", fmt(o), fmt(t),
                fmt(o / t if o and t else None, "%.2f"),
                fmt(s["ours_peak_bytes"] / MiB if s.get("ours_peak_bytes") else None, "%.0f") if name == s["case"] else "",
                fmt(s["torch_peak_bytes"] / MiB if s.get("torch_peak_bytes") else None, "%.0f") if name == s["case"] else "",
                fmt(s.get("memory_ratio"), "%.2f") if name == s["case"] else "",
                " ".join("%.1f" % x for x in s["load"]) if name == s["case"] else "")
        out.append(row(s["case"], s["ours_step_s"], s["torch_step_s"]))
        if s["case"] == "sample":
            out.append(row("  text", s.get("ours_text_encoder_s"), s.get("torch_text_encoder_s")))
            out.append(row("  vae", s.get("ours_vae_decode_s"), s.get("torch_vae_decode_s")))
    out.append("")
    for s in report["cases"]:
        if report.get("device") == "cpu":
            out.append("%s %dx%d batch %d: process CPU s / wall s: ours %s / %s, PyTorch %s / %s; PyTorch CPU s per step %s" % (
                s["case"], s["size"], s["size"], s["batch"],
                ",".join("%.0f" % x for x in s["ours_process_cpu_s"]), ",".join("%.0f" % x for x in s["ours_process_wall_s"]),
                ",".join("%.0f" % x for x in s["torch_process_cpu_s"]), ",".join("%.0f" % x for x in s["torch_process_wall_s"]),
                fmt(s.get("torch_step_cpu_s"), "%.1f")))
    for s in report["cases"]:
        out.append("%s %dx%d batch %d: model FLOPs (matmul/conv/attention) %s G; ours %s GFLOP/s in those ops, "
                   "%s GFLOP/s over the step; PyTorch %s GFLOP/s over the step" % (
                       s["case"], s["size"], s["size"], s["batch"], fmt(s.get("matmul_flops") and s["matmul_flops"] * 1e-9, "%.1f"),
                       fmt(s.get("ours_matmul_gflops"), "%.1f"), fmt(s.get("ours_step_gflops"), "%.1f"),
                       fmt(s.get("torch_step_gflops"), "%.1f")))
        for p in s["ours_profile_top"]:
            out.append("    %-44s %6d calls %10.1f ms %5.1f%%" % (p["name"], p["calls"], p["total_ms"],
                                                               100 * p["total_ms"] / (s["ours_profile_total_ms"] or 1)))
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, action="append", help="image size (repeatable; default 64 and 128 on the CPU, 512 on a GPU)")
    p.add_argument("--batch", type=int, action="append", help="batch (repeatable; default 1)")
    p.add_argument("--checkpointing", choices=("on", "off"), action="append",
                   help="gradient checkpointing (repeatable; default on)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--cases", default="lora,sample", help="comma-separated: lora, sample, full (default lora,sample)")
    p.add_argument("--dreamloom", default=os.path.join(os.path.dirname(HERE), "build", "app", "dreamloom"))
    p.add_argument("--python", default=sys.executable, help="the Python that runs torch_reference.py")
    p.add_argument("--golden", default=os.environ.get("DREAMLOOM_GOLDEN", "/work/shared/golden"))
    p.add_argument("--runs", type=int, default=3, help="runs of each side per case (medians; default 3)")
    p.add_argument("--iters", type=int, default=2, help="timed steps per run (each run reports their median)")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--fp16", action="store_true", help="f16 frozen base / f16 sampling on both sides")
    p.add_argument("--threads", type=int, default=0, help="CPU threads of both sides (default: every core)")
    p.add_argument("--top", type=int, default=8, help="per-op rows to keep")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--skip-check", action="store_true", help="time without the equivalence check")
    p.add_argument("--no-matmul", action="store_true")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    p.add_argument("--max-load", type=float, default=0,
                   help="before each measurement wait until the 1-minute load average is below this (shared machines; "
                   "PyTorch's OpenMP threads slow down far more than lavapipe's under contention)")
    p.add_argument("--max-wait", type=float, default=600, help="at most this many seconds per wait for --max-load")
    p.add_argument("--json", help="write the whole report here")
    a = p.parse_args(argv)
    a.sizes = a.size or ([512] if a.device == "cuda" else [64, 128])
    a.batches = a.batch or [1]
    ckpts = [c == "on" for c in (a.checkpointing or ["on"])]
    a.threads = a.threads or len(os.sched_getaffinity(0))
    if not os.access(a.dreamloom, os.X_OK):
        raise SystemExit("compare: no Dreamloom binary at %s (--dreamloom)" % a.dreamloom)

    env_ours = dict(os.environ)
    if a.device == "cpu":
        env_ours.setdefault("VK_DRIVER_FILES", LAVAPIPE_ICD)
        env_ours["LP_NUM_THREADS"] = str(a.threads)
    env_ours.setdefault("DREAMLOOM_CLIP_VOCAB", "/work/shared/data/clip/bpe_simple_vocab_16e6.txt.gz")
    env_torch = dict(os.environ)
    env_torch["OMP_NUM_THREADS"] = str(a.threads)

    report = dict(
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
        host=dict(machine=platform.machine(), cpus=os.cpu_count(), cpu=cpu_name(), kernel=platform.release()),
        load_start=load(),
        device=a.device,
        threads=a.threads,
        dreamloom=a.dreamloom,
        settings=dict(sizes=a.sizes, batches=a.batches, checkpointing=ckpts, cases=a.cases, runs=a.runs,
                      iters=a.iters, rank=a.rank, fp16=a.fp16),
        cases=[],
    )
    code, text, _, _ = run_measured([a.dreamloom, "devices"], env_ours)
    report["dreamloom_devices"] = text.strip()[-2000:]

    tmp = tempfile.mkdtemp(prefix="dl-compare-")
    try:
        if not a.skip_check:
            log("compare: equivalence check on the tiny golden model ...")
            eq = equivalence(a, env_ours, env_torch, tmp)
            report["equivalence"] = eq
            log("compare: plain loss ours %.7f / PyTorch %.7f; LoRA loss ours %.7f / PyTorch %.7f: %s" % (
                eq["plain"]["ours"], eq["plain"]["torch"], eq["lora"]["ours"], eq["lora"]["torch"],
                "PASS" if eq["ok"] else "FAIL"))
            if not eq["ok"]:
                print(table(report))
                if a.json:
                    write_json(a.json, report)
                raise SystemExit("compare: the two sides do not compute the same loss; nothing timed")
        if not a.no_matmul:
            log("compare: bench matmul ...")
            cmd = [a.dreamloom, "bench", "matmul", "--iters", "3"] + (["--dtype", "f16"] if a.fp16 else [])
            if a.device == "cpu":  # the default set's 2048^3 takes minutes on lavapipe
                for s in ("1024x1024x1024", "4096x320x320", "4096x1280x320", "1024x640x640", "256x1280x1280"):
                    cmd += ["--size", s]
            code, text, _, _ = run_measured(cmd, env_ours, a.timeout)
            nominal, rows = parse_matmul(text)
            mm = dict(nominal_gflops=nominal, rows=rows,
                      ours_best_gflops=max((r["gflops"] for r in rows), default=None))
            code, text, _, _ = run_measured([a.python, os.path.join(HERE, "torch_reference.py"), "matmul",
                                             "--device", a.device, "--threads", str(a.threads)]
                                            + (["--fp16"] if a.fp16 else []), env_torch, a.timeout)
            t = parse_torch(text)
            if t:
                mm["torch_gflops"] = t.get("gflops")
                mm["torch_rows"] = t.get("rows")
            report["matmul"] = mm
        for case in [c.strip() for c in a.cases.split(",") if c.strip()]:
            for ck in ckpts if case != "sample" else [ckpts[0]]:
                a.checkpointing = ck
                for size in a.sizes:
                    for batch in a.batches:
                        log("compare: %s %dx%d batch %d checkpointing %s" % (case, size, size, batch, ck))
                        s = run_case(a, case, size, batch, env_ours, env_torch)
                        report["cases"].append(s)
                        if a.json:
                            write_json(a.json, report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_end"] = load()
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    text = table(report)
    report["table"] = text
    print(text)
    if a.json:
        write_json(a.json, report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("cases", "table", "matmul", "dreamloom_devices")}
                     | {"summary": [{k: s.get(k) for k in ("case", "size", "batch", "checkpointing", "ours_step_s",
                                                            "torch_step_s", "time_ratio", "ours_peak_bytes",
                                                            "torch_peak_bytes", "memory_ratio")}
                                    for s in report["cases"]]}))


def write_json(path, report):
    with open(path, "w") as f:
        json.dump(report, f, indent=1)


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
