#!/usr/bin/env python3
"""PyTorch reference of the steps that `dreamloom bench train|train-step|sample`
time, written against diffusers' own models (UNet2DConditionModel,
AutoencoderKL) with random weights from the SD 1.5 configuration.

One case per process (so that the process's peak RSS belongs to that case):

  lora    the trainer's LoRA step as `dreamloom bench train --method lora
          --no-text-encoder` runs it: cached latents and text conditioning,
          noise + timesteps drawn, DDPM noising, UNet forward, MSE, backward
          into rank-R kohya-style adapters on every Linear / 1x1 conv inside
          the Transformer2DModels (frozen base), gradient clipping, AdamW.
          The text encoder and VAE stay resident, as in diffusers'
          train_text_to_image_lora.py and in our trainer.
  full    full UNet fine-tuning step (`dreamloom bench train-step`): fp32,
          every UNet parameter, AdamW.
  sample  `dreamloom bench sample`: text encoder (batch 2B), one sampling
          step with CFG (UNet batch 2B + guidance), VAE decode (batch B).
  golden  the equivalence check on the tiny golden model: plain UNet loss,
          and loss + adapter gradients with the golden kohya LoRA attached;
          writes them to --out for compare.py.

The last line printed is `RESULT {json}`.

diffusers is found on PYTHONPATH (e.g. a source checkout's src/); it is no
dependency of Dreamloom and never committed here.  Attention is diffusers'
default for the installed PyTorch: AttnProcessor2_0 (F.scaled_dot_product_
attention) on PyTorch >= 2.0, the plain AttnProcessor (baddbmm, softmax, bmm)
on older ones such as Debian's 1.13.
"""

import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# diffusers' models only: hide peft and transformers so that diffusers takes
# the same code path (LoRACompatibleLinear, no PEFT backend) on every machine,
# whatever else that machine has installed.  find_spec() returns None for a
# module whose sys.modules entry is None.
for _hidden in ("peft", "transformers"):
    sys.modules.setdefault(_hidden, None)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import _safetensors_lite  # noqa: E402

_safetensors_lite.install()

try:
    import diffusers  # noqa: E402
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402
    from diffusers.models.attention_processor import Attention  # noqa: E402
except ImportError as e:  # pragma: no cover - setup problem
    sys.exit(
        "torch_reference: cannot import diffusers (%s); put a diffusers source checkout's src/ on PYTHONPATH, "
        "see bench/README.md" % e
    )

# ---- SD 1.5 configurations (runwayml/stable-diffusion-v1-5) ----

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=768,
    attention_head_dim=8,
)

SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)

SD15_CLIP = dict(vocab=49408, width=768, layers=12, heads=12, mlp=3072, positions=77, eps=1e-5)

# --model tiny: the golden tiny SD 1.5's shapes (random weights), to smoke-test
# every case in seconds; never a measurement
TINY_UNET = dict(
    SD15_UNET,
    sample_size=16,
    block_out_channels=(32, 32, 64, 64),
    attention_head_dim=4,
    cross_attention_dim=32,
    norm_num_groups=8,
)
TINY_VAE = dict(
    SD15_VAE,
    down_block_types=("DownEncoderBlock2D",) * 2,
    up_block_types=("UpDecoderBlock2D",) * 2,
    block_out_channels=(32, 64),
    layers_per_block=1,
    norm_num_groups=8,
    sample_size=32,
)
TINY_CLIP = dict(vocab=49408, width=32, layers=3, heads=4, mlp=64, positions=77, eps=1e-5)
MODELS = {"sd15": (SD15_UNET, SD15_CLIP, SD15_VAE), "tiny": (TINY_UNET, TINY_CLIP, TINY_VAE)}


class ClipTextModel(nn.Module):
    """CLIP ViT-L/14's text transformer (transformers' CLIPTextModel, SD 1.5's
    text encoder): token + position embeddings, pre-LayerNorm blocks with a
    causal mask and quick-GELU MLPs, final LayerNorm.  Written here because
    transformers is no Debian package; same shapes, parameters and FLOPs."""

    def __init__(self, c=SD15_CLIP):
        super().__init__()
        self.heads = c["heads"]
        self.token_embedding = nn.Embedding(c["vocab"], c["width"])
        self.position_embedding = nn.Embedding(c["positions"], c["width"])
        self.layers = nn.ModuleList()
        for _ in range(c["layers"]):
            layer = nn.Module()
            layer.layer_norm1 = nn.LayerNorm(c["width"], eps=c["eps"])
            layer.q_proj = nn.Linear(c["width"], c["width"])
            layer.k_proj = nn.Linear(c["width"], c["width"])
            layer.v_proj = nn.Linear(c["width"], c["width"])
            layer.out_proj = nn.Linear(c["width"], c["width"])
            layer.layer_norm2 = nn.LayerNorm(c["width"], eps=c["eps"])
            layer.fc1 = nn.Linear(c["width"], c["mlp"])
            layer.fc2 = nn.Linear(c["mlp"], c["width"])
            self.layers.append(layer)
        self.final_layer_norm = nn.LayerNorm(c["width"], eps=c["eps"])

    def forward(self, ids):
        B, T = ids.shape
        x = self.token_embedding(ids) + self.position_embedding(torch.arange(T, device=ids.device))[None]
        mask = torch.full((T, T), float("-inf"), device=ids.device, dtype=x.dtype).triu(1)
        H = self.heads
        for L in self.layers:
            h = L.layer_norm1(x)
            q, k, v = (p(h).view(B, T, H, -1).transpose(1, 2) for p in (L.q_proj, L.k_proj, L.v_proj))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask, dim=-1) @ v
            x = x + L.out_proj(a.transpose(1, 2).reshape(B, T, -1))
            h = L.fc1(L.layer_norm2(x))
            x = x + L.fc2(h * torch.sigmoid(1.702 * h))
        return self.final_layer_norm(x)


# ---- LoRA (kohya sd-scripts networks/lora.py LoRAModule) ----


class LoRAWrap(nn.Module):
    """y = base(x) + up(down(x)) * multiplier * alpha / rank.  down: kaiming
    uniform (a=sqrt(5)), up: zeros, as kohya initialises them."""

    def __init__(self, base, rank, alpha, multiplier=1.0):
        super().__init__()
        self.base = base
        if isinstance(base, nn.Conv2d):
            self.down = nn.Conv2d(base.in_channels, rank, 1, bias=False)
            self.up = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        else:
            self.down = nn.Linear(base.in_features, rank, bias=False)
            self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = multiplier * alpha / rank

    def forward(self, x, *args, **kwargs):
        # diffusers' LoRACompatibleLinear/Conv take an extra `scale`
        return self.base(x, *args, **kwargs) + self.up(self.down(x.to(self.down.weight.dtype))).to(x.dtype) * self.scale


def lora_targets(unet):
    """kohya's UNet targets for SD 1.x: every Linear and 1x1 Conv2d inside a
    Transformer2DModel.  Yields (kohya name, parent module, attribute, module)."""
    out = []
    for name, mod in unet.named_modules():
        if type(mod).__name__ != "Transformer2DModel":
            continue
        for cname, child in mod.named_modules():
            if isinstance(child, LoRAWrap):
                continue
            linear = isinstance(child, nn.Linear)
            conv1 = isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1)
            if not (linear or conv1):
                continue
            full = name + "." + cname
            parent = unet.get_submodule(full.rsplit(".", 1)[0])
            out.append(("lora_unet_" + full.replace(".", "_"), parent, full.rsplit(".", 1)[1], child))
    return out


def add_lora(unet, rank, alpha):
    wraps = {}
    for kname, parent, attr, child in lora_targets(unet):
        w = LoRAWrap(child, rank, alpha).to(child.weight.device)
        setattr(parent, attr, w)
        wraps[kname] = w
    return wraps


# ---- FLOP counting (matmul, conv and attention products, forward) ----


class FlopCounter:
    """Counts 2*MACs of every Conv2d, Linear and attention product (QK^T, PV)
    that runs while active: hooks, so checkpointing's recomputation counts."""

    def __init__(self, model):
        self.flops = 0
        self.forward_flops = 0
        self.active = False
        self.handles = []
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                self.handles.append(m.register_forward_hook(self._mm))
            elif isinstance(m, Attention):
                self.handles.append(m.register_forward_hook(self._attn))

    def _mm(self, m, inp, out):
        if not self.active:
            return
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            self.flops += 2 * out.numel() * (m.in_channels // m.groups) * kh * kw
        else:
            self.flops += 2 * out.numel() * m.in_features

    def _attn(self, m, inp, out):
        if not self.active:
            return
        # out: [B, N, C] (or [B, C, H, W] in the VAE's mid-block attention)
        if out.dim() == 4:
            B, C, H, W = out.shape
            N = H * W
        else:
            B, N, C = out.shape
        M = 77 if m.is_cross_attention else N
        self.flops += 2 * 2 * B * N * M * m.inner_dim

    def mark(self):
        """Called after the forward pass: what ran so far is the forward."""
        if self.active and not self.forward_flops:
            self.forward_flops = self.flops

    def remove(self):
        for h in self.handles:
            h.remove()


# ---- harness ----


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_bytes(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


CPU_TIMES = []  # process CPU seconds (all threads) of each timed call, last timed() only


def timed(fn, device, iters, warmup):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    del CPU_TIMES[:]
    for _ in range(iters):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        CPU_TIMES.append(time.process_time() - c0)
    return times


MODEL = "sd15"


def build(device, dtype, what):
    torch.manual_seed(1234)
    unet_c, clip_c, vae_c = MODELS[MODEL]
    models = {}
    if "unet" in what:
        models["unet"] = UNet2DConditionModel.from_config(unet_c).to(device=device, dtype=dtype)
    if "text_encoder" in what:
        models["text_encoder"] = ClipTextModel(clip_c).to(device=device, dtype=dtype)
    if "vae" in what:
        models["vae"] = AutoencoderKL.from_config(vae_c).to(device=device, dtype=dtype)
    for m in models.values():
        m.requires_grad_(False)
    return models


def attn_processor_name(unet):
    procs = {type(p).__name__ for p in unet.attn_processors.values()}
    return ",".join(sorted(procs))


def case_lora(a, device):
    half = a.fp16 and device.type == "cuda"
    wdtype = torch.float16 if half else torch.float32
    models = build(device, wdtype, ("unet", "text_encoder", "vae"))
    unet = models["unet"]
    weights_bytes = peak_bytes(device)
    wraps = add_lora(unet, a.rank, a.alpha)
    params = [p for w in wraps.values() for p in (w.down.weight, w.up.weight)]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    n_trained = sum(p.numel() for p in params)
    if a.checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    lat = a.size // 8
    g = torch.Generator(device="cpu").manual_seed(0)
    latents = (torch.randn(a.batch, 4, lat, lat, generator=g) * 0.18215).to(device)
    context = torch.randn(a.batch, 77, unet.config.cross_attention_dim, generator=g).to(device, wdtype)
    counter = FlopCounter(unet)

    def step():
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (a.batch,), device=device)
        noisy = sched.add_noise(latents, noise, t)
        with torch.autocast(device_type=device.type, dtype=torch.float16) if half else contextlib.nullcontext():
            pred = unet(noisy.to(wdtype), t, encoder_hidden_states=context).sample
        counter.mark()
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    reset_peak(device)
    counter.active = True
    step()  # warm-up, counted
    counter.active = False
    counted, fwd_flops = counter.flops, counter.forward_flops
    counter.remove()
    times = timed(step, device, a.iters, a.warmup - 1 if a.warmup > 1 else 0)
    return dict(
        trained_params=n_trained,
        lora_modules=len(wraps),
        dtype="f16 base, f32 adapters (autocast)" if half else "f32",
        times=times,
        step_s=statistics.median(times),
        cpu_s=statistics.median(CPU_TIMES),
        peak_bytes=peak_bytes(device),
        weights_bytes=weights_bytes,
        # forward (+ checkpointing's recomputation, counted by the hooks) + the
        # backward of a frozen base: input gradients only, one forward's worth
        matmul_flops=counted + fwd_flops,
        forward_flops=fwd_flops,
        attention=attn_processor_name(unet),
    )


def case_full(a, device):
    models = build(device, torch.float32, ("unet",))
    unet = models["unet"]
    params = list(unet.parameters())
    for p in params:
        p.requires_grad_(True)
    if a.checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    opt = torch.optim.AdamW(params, lr=1e-6)
    lat = a.size // 8
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(a.batch, 4, lat, lat, generator=g).to(device)
    y = torch.randn(a.batch, 4, lat, lat, generator=g).to(device)
    ctx = torch.randn(a.batch, 77, unet.config.cross_attention_dim, generator=g).to(device)
    t = torch.full((a.batch,), 500, device=device, dtype=torch.long)
    counter = FlopCounter(unet)

    def step():
        loss = F.mse_loss(unet(x, t, encoder_hidden_states=ctx).sample, y)
        counter.mark()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    reset_peak(device)
    counter.active = True
    step()
    counter.active = False
    counted, fwd_flops = counter.flops, counter.forward_flops
    counter.remove()
    times = timed(step, device, a.iters, a.warmup - 1 if a.warmup > 1 else 0)
    return dict(
        trained_params=sum(p.numel() for p in params),
        dtype="f32",
        times=times,
        step_s=statistics.median(times),
        cpu_s=statistics.median(CPU_TIMES),
        peak_bytes=peak_bytes(device),
        # forward (+ recomputation) + backward: input and weight gradients
        matmul_flops=counted + 2 * fwd_flops,
        forward_flops=fwd_flops,
        attention=attn_processor_name(unet),
    )


def case_sample(a, device):
    half = a.fp16 and device.type == "cuda"
    dtype = torch.float16 if half else torch.float32
    models = build(device, dtype, ("unet", "text_encoder", "vae"))
    unet, te, vae = models["unet"], models["text_encoder"], models["vae"]
    for m in models.values():
        m.eval()
    weights_bytes = peak_bytes(device)
    B = a.batch
    lat = a.size // 8
    ids = torch.full((2 * B, 77), 49407, dtype=torch.long, device=device)
    g = torch.Generator(device="cpu").manual_seed(7)
    x = torch.randn(B, 4, lat, lat, generator=g).to(device, dtype)
    z = torch.randn(B, 4, lat, lat, generator=g).to(device, dtype)
    t = torch.full((2 * B,), 500, dtype=torch.long, device=device)
    res = {}
    with torch.inference_mode():
        # first calls are reported too: ours are the first call (pipelines compiled)
        t0 = time.perf_counter()
        ctx = te(ids)
        sync(device)
        res["text_encoder_first_s"] = time.perf_counter() - t0
        te_times = timed(lambda: te(ids), device, a.iters, 0)
        reset_peak(device)
        counter = FlopCounter(unet)

        def sample_step():
            eps = unet(torch.cat([x, x]), t, encoder_hidden_states=ctx).sample
            u, c = eps.chunk(2)
            return u + 7.5 * (c - u)

        counter.active = True
        t0 = time.perf_counter()
        sample_step()
        sync(device)
        res["sample_first_s"] = time.perf_counter() - t0
        counter.active = False
        res["matmul_flops"] = counter.flops
        counter.remove()
        times = timed(sample_step, device, a.iters, a.warmup - 1 if a.warmup > 1 else 0)
        res["cpu_s"] = statistics.median(CPU_TIMES)
        vcounter = FlopCounter(vae.decoder)
        vcounter.active = True
        t0 = time.perf_counter()
        vae.decode(z / 0.18215)
        sync(device)
        res["vae_decode_first_s"] = time.perf_counter() - t0
        vcounter.active = False
        res["vae_matmul_flops"] = vcounter.flops
        vcounter.remove()
        vae_times = timed(lambda: vae.decode(z / 0.18215), device, max(1, a.iters // 2), 0)
    res.update(
        dtype="f16" if half else "f32",
        text_encoder_s=statistics.median(te_times),
        times=times,
        step_s=statistics.median(times),
        vae_decode_s=statistics.median(vae_times),
        peak_bytes=peak_bytes(device),
        weights_bytes=weights_bytes,
        attention=attn_processor_name(unet),
    )
    return res


def case_golden(a, device):
    """The tiny golden SD 1.5 model (diffusers folder) on the golden UNet batch:
    plain loss, and with the golden kohya LoRA attached: loss and the gradient
    of every UNet adapter weight (written to --out with the loss)."""
    st = _safetensors_lite
    folder = a.golden_model
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(os.path.join(folder, "unet")))
    sd = st.load_file(os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"))
    missing, unexpected = unet.load_state_dict(sd, strict=False)
    if missing or unexpected:
        sys.exit("torch_reference: golden UNet weights do not fit: %s %s" % (missing[:3], unexpected[:3]))
    unet.requires_grad_(False)
    def read_batch(path):
        b = st.load_file(path)
        return b["noisy_latents"], b["timesteps"], b["context"], b["target"]

    x, ts, ctx, target = read_batch(a.batch_file)
    out = {}
    with torch.no_grad():
        out["loss"] = float(F.mse_loss(unet(x, ts, encoder_hidden_states=ctx).sample, target))
    x, ts, ctx, target = read_batch(a.lora_batch_file or a.batch_file)
    # the golden LoRA file: rank/alpha from the file, up weights non-zero
    lf = st.load_file(a.lora_file)
    wraps = {}
    for kname, parent, attr, child in lora_targets(unet):
        down = lf.get(kname + ".lora_down.weight")
        if down is None:
            continue
        rank = down.shape[0]
        alpha = float(lf[kname + ".alpha"]) if kname + ".alpha" in lf else rank
        w = LoRAWrap(child, rank, alpha)
        w.down.weight.data.copy_(down.reshape(w.down.weight.shape))
        w.up.weight.data.copy_(lf[kname + ".lora_up.weight"].reshape(w.up.weight.shape))
        w.down.weight.requires_grad_(True)
        w.up.weight.requires_grad_(True)
        setattr(parent, attr, w)
        wraps[kname] = w
    n_unet_in_file = len({k.split(".")[0] for k in lf if k.startswith("lora_unet_")})
    if len(wraps) != n_unet_in_file:
        sys.exit("torch_reference: %d of the file's %d UNet modules matched" % (len(wraps), n_unet_in_file))
    loss = F.mse_loss(unet(x, ts, encoder_hidden_states=ctx).sample, target)
    loss.backward()
    out["lora_loss"] = float(loss)
    out["lora_modules"] = len(wraps)
    tensors = {"loss": torch.tensor(out["loss"]), "lora_loss": loss.detach()}
    for k, w in wraps.items():
        tensors["grad.%s.lora_down.weight" % k] = w.down.weight.grad.reshape(lf[k + ".lora_down.weight"].shape)
        tensors["grad.%s.lora_up.weight" % k] = w.up.weight.grad.reshape(lf[k + ".lora_up.weight"].shape)
    if a.out:
        st.save_file(tensors, a.out)
    # the CLIP stand-in against transformers' CLIPTextModel (golden case b)
    te_golden = os.path.join(os.path.dirname(folder.rstrip("/")), "text_encoder.safetensors")
    te_weights = os.path.join(folder, "text_encoder", "model.safetensors")
    if os.path.exists(te_golden) and os.path.exists(te_weights):
        cfg = json.load(open(os.path.join(folder, "text_encoder", "config.json")))
        te = ClipTextModel(dict(vocab=cfg["vocab_size"], width=cfg["hidden_size"], layers=cfg["num_hidden_layers"],
                                heads=cfg["num_attention_heads"], mlp=cfg["intermediate_size"],
                                positions=cfg["max_position_embeddings"], eps=cfg["layer_norm_eps"]))
        renames = (("text_model.", ""), ("embeddings.token_embedding", "token_embedding"),
                   ("embeddings.position_embedding", "position_embedding"), ("encoder.layers.", "layers."),
                   ("self_attn.", ""), ("mlp.", ""))
        sd = {}
        for k, v in st.load_file(te_weights).items():
            for x, y in renames:
                k = k.replace(x, y)
            sd[k] = v
        te.load_state_dict(sd, strict=False)
        g = st.load_file(te_golden)
        with torch.no_grad():
            out["text_encoder_max_abs_diff"] = float((te(g["input_ids"]) - g["last_hidden_state"]).abs().max())
    return out


def case_matmul(a, device):
    """PyTorch's own matmul on this device, for scale next to `bench matmul`."""
    sizes = [(1024, 1024, 1024), (4096, 320, 320), (4096, 1280, 320), (1024, 640, 640), (256, 1280, 1280)]
    if device.type == "cuda":
        sizes.insert(0, (8192, 8192, 8192))
    dtype = torch.float16 if a.fp16 and device.type == "cuda" else torch.float32
    rows = []
    for m, n, k in sizes:
        x = torch.randn(m, k, device=device, dtype=dtype)
        w = torch.randn(n, k, device=device, dtype=dtype)
        times = timed(lambda: x @ w.t(), device, max(a.iters, 5), 2)
        s = statistics.median(times)
        rows.append(dict(m=m, n=n, k=k, ms=s * 1e3, gflops=2 * m * n * k / s * 1e-9))
    return dict(rows=rows, gflops=max(r["gflops"] for r in rows), dtype=str(dtype), step_s=None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("case", choices=("lora", "full", "sample", "golden", "matmul"))
    p.add_argument("--size", type=int, default=128, help="image size in pixels (latents size/8)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--checkpointing", choices=("on", "off"), default="on")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=8.0, help="LoRA alpha (Dreamloom's default: 8)")
    p.add_argument("--fp16", action="store_true", help="f16 frozen base / f16 sampling (GPU only; ignored on CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", choices=sorted(MODELS), default="sd15",
                   help="sd15 (default) or tiny: the golden tiny model's shapes, for smoke tests only")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: every core)")
    p.add_argument("--golden-model", default="/work/shared/golden/tiny-sd15-diffusers")
    p.add_argument("--batch-file", help="golden: noisy_latents, timesteps, context, target (.safetensors)")
    p.add_argument("--lora-batch-file", help="golden: the batch of the LoRA loss (default: --batch-file)")
    p.add_argument("--lora-file", help="golden: a kohya LoRA file")
    p.add_argument("--out", help="golden: where to write loss and gradients (.safetensors)")
    a = p.parse_args(argv)
    a.checkpointing = a.checkpointing == "on"
    global MODEL
    MODEL = a.model
    device = torch.device(a.device)
    threads = a.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    if device.type == "cpu":
        torch.backends.cudnn.enabled = False
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    fn = {"lora": case_lora, "full": case_full, "sample": case_sample, "golden": case_golden, "matmul": case_matmul}[
        a.case
    ]
    res = fn(a, device)
    res.update(
        case=a.case,
        model=a.model,
        size=a.size,
        batch=a.batch,
        checkpointing=a.checkpointing,
        device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        threads=threads,
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        memory_kind="torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS",
        import_rss_bytes=base_rss,
        wall_s=time.perf_counter() - t0,
    )
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
