#!/usr/bin/python3
"""Trains the embedded default checkpoints of `joulebench run` (tiny and small) on the synthetic
suites, on the CPU, with Debian's python3-torch. A development tool: users and CI never run it.

    scripts/train-default.py train --size tiny --out WORK/tiny [--minutes 60] ...
    scripts/train-default.py export --ckpt WORK/tiny/best.pt --out models/tiny
    scripts/train-default.py logits --model models/tiny --dump DIR      (parity fixtures)

The model is Molmo's, in the released layout the C engine runs unchanged (molmo.md):
ViT (pre-LN, quick-GELU, two layers fed to the connector) -> pad embeddings, 2x2 attention
pooling, SwiGLU projector -> Qwen2-style LLM (GQA, QKV bias, RoPE) over [BOS, image tokens,
" User: " + prompt + " Assistant:"]. The forward pass below follows molmo.md section by section
in float32; `check` compares it with the engine's stage tensors (`joulebench generate --dump`).

Training data: `joulebench synth` on seeds 1000, 1001, ... (the evaluation seeds 0..999 are
never used), rendered in chunks while training. Images are preprocessed here with the same
geometry as the engine (one crop grid cell: the global crop and one high-resolution crop of
`--crop` px); `check` verifies the pixels and masks against the engine's dump.
The recipe and the learning curve are in docs/default-models.md.
"""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOKENIZER = os.path.join(ROOT, "scripts", "default-model", "tokenizer.json")
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
STYLE = {"synth-chart": "chart_qa", "synth-doc": "doc_qa", "count": "point_count",
         "point": "pointing"}

# name: LLM width, layers, heads, KV heads, fused FFN rows; ViT width, layers, heads, MLP;
# crop side (px); vit_layers
SIZES = {
    "tiny": dict(d=64, layers=2, heads=4, kv=2, ffn=256, D=48, vlayers=4, vheads=4, vmlp=96,
                 crop=112, vit_layers=[-1, -3]),
    "small": dict(d=96, layers=3, heads=4, kv=2, ffn=384, D=64, vlayers=5, vheads=4, vmlp=128,
                  crop=112, vit_layers=[-1, -3]),
}


# ---- tokenizer (byte level, no merges: one token per byte) ------------------------------------

def byte_alphabet():
    """GPT-2's map from bytes to printable characters (its byte-level BPE alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + \
        list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


class Tok:
    def __init__(self, path):
        with open(path) as f:
            t = json.load(f)
        vocab = t["model"]["vocab"]
        alpha = byte_alphabet()
        self.byte_id = [vocab[alpha[b]] for b in range(256)]
        self.id_byte = {v: k for k, v in enumerate(self.byte_id)}
        self.special = {a["content"]: a["id"] for a in t["added_tokens"]}
        self.eos = self.special["<|endoftext|>"]

    def encode(self, text):
        return [self.byte_id[b] for b in text.encode()]

    def decode(self, ids):
        return bytes(self.id_byte[i] for i in ids if i in self.id_byte).decode(errors="replace")


# ---- preprocessing (molmo.md section 4 for a 1x1 crop grid) -----------------------------------

def resize_pad(img, S):
    """img: uint8 [h, w, 3] -> normalized float32 [S, S, 3] and the real-pixel mask (4.2)."""
    h, w = img.shape[:2]
    scale = min(np.float32(S) / np.float32(h), np.float32(S) / np.float32(w))
    sh, sw = int(np.float32(h) * scale), int(np.float32(w) * scale)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    if (sh, sw) != (h, w):
        x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False,
                          antialias=True)
    x = x.clamp(0.0, 1.0)[0].permute(1, 2, 0)
    out = torch.zeros(S, S, 3)
    mask = torch.zeros(S, S)
    top, left = (S - sh) // 2, (S - sw) // 2
    out[top:top + sh, left:left + sw] = x
    mask[top:top + sh, left:left + sw] = 1.0
    mean = torch.tensor(MEAN, dtype=torch.float32)
    std = torch.tensor(STD, dtype=torch.float32)
    return (out - mean) / std, mask


def patchify(x, p):
    S = x.shape[0]
    P = S // p
    return x.reshape(P, p, P, p, 3).permute(0, 2, 1, 3, 4).reshape(P * P, p * p * 3)


def preprocess(img, S, p=14):
    """The engine's input for max_crops 1: crops [2, P*P, p*p*3] (global, then the one
    high-resolution crop, which for a 1x1 grid is the same resize of the whole image) and the
    masks as fed to the model (4.8: the global crop gets the high-res crop's mask, the last crop
    -1)."""
    g, _ = resize_pad(img, S)
    hr, m = resize_pad(img, S)
    P = S // p
    frac = m.reshape(P, p, P, p).permute(0, 2, 1, 3).reshape(P * P, p * p).sum(1) / float(p * p)
    crops = torch.stack([patchify(g, p), patchify(hr, p)])
    masks = torch.stack([frac, torch.full((P * P,), -1.0)])
    return crops, masks


def image_tokens(tok, S, p=14):
    """[BOS] + image tokens (4.7) and the positions of the pooled cells of each crop (4.6);
    for one 1x1 grid cell every cell of both crops is kept."""
    T = (S // p + 1) // 2
    st, en, pa, co = (tok.special[k] for k in ("<im_start>", "<im_end>", "<im_patch>",
                                               "<im_col>"))
    ids, idx = [tok.eos], []
    for _ in range(2):
        ids.append(st)
        pos = []
        for _r in range(T):
            for _c in range(T):
                pos.append(len(ids))
                ids.append(pa)
            ids.append(co)
        ids.append(en)
        idx.append(pos)
    return ids, idx


# ---- the model -------------------------------------------------------------------------------

def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class Molmo(torch.nn.Module):
    def __init__(self, cfg, vocab_rows, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.cfg = cfg
        d, L, H, K, I = cfg["d"], cfg["layers"], cfg["heads"], cfg["kv"], cfg["ffn"]
        D, VL, VH, VF = cfg["D"], cfg["vlayers"], cfg["vheads"], cfg["vmlp"]
        p = 14
        S = cfg["crop"]
        NP = (S // p) ** 2
        hd = d // H
        self.E = vocab_rows

        def P_(*shape, std):
            return torch.nn.Parameter(torch.randn(*shape, generator=g) * std)

        def ones(n):
            return torch.nn.Parameter(torch.ones(n))

        def zeros(*n):
            return torch.nn.Parameter(torch.zeros(*n))

        W = {}
        W["wte"] = P_(vocab_rows, d, std=0.02)
        W["wte_new"] = P_(128, d, std=0.02)
        for l in range(L):
            W[f"b{l}.attn_norm"] = ones(d)
            W[f"b{l}.att_proj.w"] = P_(d + 2 * K * hd, d, std=d ** -0.5)
            W[f"b{l}.att_proj.b"] = zeros(d + 2 * K * hd)
            W[f"b{l}.attn_out"] = P_(d, d, std=(d * 2 * L) ** -0.5)
            W[f"b{l}.ff_norm"] = ones(d)
            W[f"b{l}.ff_proj"] = P_(I, d, std=d ** -0.5)
            W[f"b{l}.ff_out"] = P_(d, I // 2, std=(I // 2 * 2 * L) ** -0.5)
        W["ln_f"] = ones(d)
        W["ff_out"] = P_(vocab_rows, d, std=d ** -0.5)
        W["patch"] = P_(D, p * p * 3, std=(p * p * 3) ** -0.5)
        W["cls"] = P_(D, std=0.02)
        W["pos"] = P_(NP + 1, D, std=0.02)
        W["pre_ln.w"], W["pre_ln.b"] = ones(D), zeros(D)
        for n in range(VL):
            for w in ("wq", "wk", "wv"):
                W[f"v{n}.{w}.w"] = P_(D, D, std=D ** -0.5)
                W[f"v{n}.{w}.b"] = zeros(D)
            W[f"v{n}.wo.w"] = P_(D, D, std=(D * 2 * VL) ** -0.5)
            W[f"v{n}.wo.b"] = zeros(D)
            W[f"v{n}.ln1.w"], W[f"v{n}.ln1.b"] = ones(D), zeros(D)
            W[f"v{n}.ln2.w"], W[f"v{n}.ln2.b"] = ones(D), zeros(D)
            W[f"v{n}.w1.w"], W[f"v{n}.w1.b"] = P_(VF, D, std=D ** -0.5), zeros(VF)
            W[f"v{n}.w2.w"], W[f"v{n}.w2.b"] = P_(D, VF, std=(VF * 2 * VL) ** -0.5), zeros(D)
        W["pad_embed"] = zeros(2, 2 * D)
        for w in ("wq", "wk", "wv"):
            W[f"pool.{w}.w"] = P_(D, 2 * D, std=(2 * D) ** -0.5)
            W[f"pool.{w}.b"] = zeros(D)
        W["pool.wo.w"], W["pool.wo.b"] = P_(D, D, std=D ** -0.5), zeros(D)
        W["proj.w1"] = P_(I // 2, D, std=D ** -0.5)
        W["proj.w3"] = P_(I // 2, D, std=D ** -0.5)
        W["proj.w2"] = P_(d, I // 2, std=(I // 2) ** -0.5)
        self.W = torch.nn.ParameterDict({k.replace(".", "__"): v for k, v in W.items()})
        la, lb = cfg["vit_layers"]
        self.vit_a, self.vit_b = (la + VL if la < 0 else la), (lb + VL if lb < 0 else lb)

    def w(self, k):
        return self.W[k.replace(".", "__")]

    # section 5, for a batch of crops [B, NP, pdim]
    def vit(self, crops):
        c = self.cfg
        D, VH = c["D"], c["vheads"]
        hd = D // VH
        B, NP, _ = crops.shape
        x = crops @ self.w("patch").t()
        x = torch.cat([self.w("cls").expand(B, 1, D), x], 1) + self.w("pos")
        x = F.layer_norm(x, (D,), self.w("pre_ln.w"), self.w("pre_ln.b"), 1e-5)
        feats = {}
        for n in range(max(self.vit_a, self.vit_b) + 1):
            y = F.layer_norm(x, (D,), self.w(f"v{n}.ln1.w"), self.w(f"v{n}.ln1.b"), 1e-5)
            q = (y @ self.w(f"v{n}.wq.w").t() + self.w(f"v{n}.wq.b")).view(B, -1, VH, hd)
            k = (y @ self.w(f"v{n}.wk.w").t() + self.w(f"v{n}.wk.b")).view(B, -1, VH, hd)
            v = (y @ self.w(f"v{n}.wv.w").t() + self.w(f"v{n}.wv.b")).view(B, -1, VH, hd)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd), -1) @ v
            a = a.transpose(1, 2).reshape(B, -1, D)
            x = x + a @ self.w(f"v{n}.wo.w").t() + self.w(f"v{n}.wo.b")
            y = F.layer_norm(x, (D,), self.w(f"v{n}.ln2.w"), self.w(f"v{n}.ln2.b"), 1e-5)
            y = quick_gelu(y @ self.w(f"v{n}.w1.w").t() + self.w(f"v{n}.w1.b"))
            x = x + y @ self.w(f"v{n}.w2.w").t() + self.w(f"v{n}.w2.b")
            feats[n] = x
        return torch.cat([feats[self.vit_a], feats[self.vit_b]], -1)[:, 1:]

    # section 6
    def connector(self, f, masks):
        c = self.cfg
        D, H = c["D"], c["vheads"]
        hd = D // H
        B, NP, D2 = f.shape
        pe = self.w("pad_embed")
        f = f + (masks == 0).unsqueeze(-1) * pe[0] + \
            ((masks != 0) & (masks < 1)).unsqueeze(-1) * pe[1]
        G = int(round(math.sqrt(NP)))
        xw = f.view(B, G // 2, 2, G // 2, 2, D2).permute(0, 1, 3, 2, 4, 5).reshape(B, -1, 4, D2)
        mean = xw.mean(2)
        q = (mean @ self.w("pool.wq.w").t() + self.w("pool.wq.b")).view(B, -1, 1, H, hd)
        k = (xw @ self.w("pool.wk.w").t() + self.w("pool.wk.b")).view(B, -1, 4, H, hd)
        v = (xw @ self.w("pool.wv.w").t() + self.w("pool.wv.b")).view(B, -1, 4, H, hd)
        s = torch.softmax((q * k).sum(-1) / math.sqrt(hd), 2)  # [B, win, 4, H]
        a = (s.unsqueeze(-1) * v).sum(2).reshape(B, -1, D)
        u = a @ self.w("pool.wo.w").t() + self.w("pool.wo.b")
        h = F.silu(u @ self.w("proj.w1").t()) * (u @ self.w("proj.w3").t())
        return h @ self.w("proj.w2").t()

    # section 7 on ids [B, T] with image features added at idx
    def llm(self, ids, img, idx, at=None):
        c = self.cfg
        d, L, H, K = c["d"], c["layers"], c["heads"], c["kv"]
        hd = d // H
        B, T = ids.shape
        emb = torch.cat([self.w("wte"), self.w("wte_new")], 0)
        x = emb[ids]
        x = x.index_add(1, idx, img) if img is not None else x
        pos = torch.arange(T, dtype=torch.float32)
        inv = 1.0 / (c.get("rope_theta", 1e6) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        ang = pos[:, None] * inv[None]
        cos, sin = torch.cos(ang), torch.sin(ang)

        def rope(t):
            t1, t2 = t[..., :hd // 2], t[..., hd // 2:]
            return torch.cat([t1 * cos - t2 * sin, t2 * cos + t1 * sin], -1)

        causal = torch.ones(T, T, dtype=torch.bool).tril()
        for l in range(L):
            u = rmsnorm(x, self.w(f"b{l}.attn_norm"))
            qkv = u @ self.w(f"b{l}.att_proj.w").t() + self.w(f"b{l}.att_proj.b")
            q = qkv[..., :d].view(B, T, H, hd).transpose(1, 2)
            k = qkv[..., d:d + K * hd].view(B, T, K, hd).transpose(1, 2)
            v = qkv[..., d + K * hd:].view(B, T, K, hd).transpose(1, 2)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(H // K, 1)
            v = v.repeat_interleave(H // K, 1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            s = s.masked_fill(~causal, float("-inf"))
            a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, d)
            x = x + a @ self.w(f"b{l}.attn_out").t()
            u = rmsnorm(x, self.w(f"b{l}.ff_norm"))
            h = u @ self.w(f"b{l}.ff_proj").t()
            I2 = h.shape[-1] // 2
            x = x + (F.silu(h[..., I2:]) * h[..., :I2]) @ self.w(f"b{l}.ff_out").t()
        if at is not None:
            x = x[at]
        return rmsnorm(x, self.w("ln_f")) @ self.w("ff_out").t()

    def image_features(self, crops, masks, same_crops=False):
        """crops [B, N, NP, pdim], masks [B, N, NP] -> [B, N * cells, d]. same_crops: every
        crop of an image has the same pixels (a 1x1 grid: the global crop and the one
        high-resolution crop are the same resize), so the ViT runs once per image; the result
        is the same as running it on each crop."""
        B, N = crops.shape[:2]
        if same_crops:
            f = self.vit(crops[:, 0])
            f = f.unsqueeze(1).expand(B, N, *f.shape[1:]).reshape(B * N, *f.shape[1:])
        else:
            f = self.vit(crops.reshape(B * N, *crops.shape[2:]))
        return self.connector(f, masks.reshape(B * N, -1)).reshape(B, -1, self.cfg["d"])

    def forward(self, ids, crops, masks, idx, same_crops=False, at=None):
        """ids [B, T]; crops [B, N, NP, pdim]; masks [B, N, NP]; idx [N * cells] positions;
        at: a [B, T] boolean of the positions whose logits are wanted (default all)."""
        img = self.image_features(crops, masks, same_crops)
        return self.llm(ids, img, idx, at)


def rmsnorm(x, g, eps=1e-6):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * g


# ---- the released layout -----------------------------------------------------------------------

def export(model, out, tok_path, dtype="F32"):
    c = model.cfg
    d, L, H, K, I = c["d"], c["layers"], c["heads"], c["kv"], c["ffn"]
    D = c["D"]
    S = c["crop"]
    G = S // 14
    os.makedirs(out, exist_ok=True)
    cfg = {
        "architectures": ["MolmoForCausalLM"], "attention_layer_norm": False, "clip_qkv": None,
        "embedding_size": model.E, "hidden_size": d, "intermediate_size": I,
        "layer_norm_eps": 1e-06, "layer_norm_type": "rms", "max_position_embeddings": 4096,
        "model_type": "molmo", "norm_after": False, "num_attention_heads": H,
        "num_hidden_layers": L, "num_key_value_heads": K, "qkv_bias": True,
        "rope_theta": 1000000.0, "tie_word_embeddings": False,
        "torch_dtype": "float32" if dtype == "F32" else "bfloat16",
        "use_cache": True, "use_position_ids": True,
        "vision_backbone": {
            "image_default_input_size": [S, S], "image_patch_size": 14,
            "image_pos_patch_size": 14, "image_emb_dim": D, "image_num_heads": c["vheads"],
            "image_num_key_value_heads": c["vheads"], "image_num_layers": c["vlayers"],
            "image_head_dim": D // c["vheads"], "image_mlp_dim": c["vmlp"],
            "image_mlp_activations": "quick_gelu", "image_num_pos": G * G + 1,
            "image_norm_eps": 1e-05},
        "vit_layers": c["vit_layers"], "vocab_size": model.E, "weight_tying": False,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    m = 2 if S // 14 >= 8 else 0
    pp = {"base_image_input_size": [S, S], "do_normalize": True, "image_mean": list(MEAN),
          "image_padding_mask": True, "image_patch_size": 14,
          "image_processor_type": "MolmoImageProcessor", "image_std": list(STD),
          "image_token_length_h": (G + 1) // 2, "image_token_length_w": (G + 1) // 2,
          "max_crops": 1, "overlap_margins": [m, m], "processor_class": "MolmoProcessor"}
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(pp, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        f.write('{\n  "eos_token_id": 256,\n  "pad_token_id": 256\n}\n')
    shutil.copy(tok_path, os.path.join(out, "tokenizer.json"))
    allnames = name_map(model)
    llm_names = [x for x in allnames if x[0].startswith("model.transformer.")]
    names = [x for x in allnames if not x[0].startswith("model.transformer.")]
    shards = [llm_names, names]
    files = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    wmap, total = {}, 0
    for fname, tensors in zip(files, shards):
        header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
        for name, key in tensors:
            x = model.w(key).detach().float().contiguous().numpy()
            if dtype == "BF16":
                u = x.view(np.uint32).astype(np.uint64)
                u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
                raw = u.astype("<u2").tobytes()
            else:
                raw = x.astype("<f4").tobytes()
            header[name] = {"dtype": dtype, "shape": list(x.shape),
                            "data_offsets": [off, off + len(raw)]}
            off += len(raw)
            blobs.append(raw)
            wmap[name] = fname
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for raw in blobs:
                f.write(raw)
        total += off
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2)
        f.write("\n")


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, m in hdr.items():
        if k == "__metadata__":
            continue
        a, e = m["data_offsets"]
        if m["dtype"] == "F32":
            x = np.frombuffer(data[a:e], "<f4")
        else:
            x = (np.frombuffer(data[a:e], "<u2").astype(np.uint32) << 16).view(np.float32)
        out[k] = torch.from_numpy(x.copy().reshape(m["shape"]))
    return out


def load_model(dirpath):
    """A checkpoint written by export back into a Molmo module (weights as stored)."""
    with open(os.path.join(dirpath, "config.json")) as f:
        cj = json.load(f)
    vb = cj["vision_backbone"]
    cfg = dict(d=cj["hidden_size"], layers=cj["num_hidden_layers"],
               heads=cj["num_attention_heads"], kv=cj["num_key_value_heads"],
               ffn=cj["intermediate_size"], D=vb["image_emb_dim"], vlayers=vb["image_num_layers"],
               vheads=vb["image_num_heads"], vmlp=vb["image_mlp_dim"],
               crop=vb["image_default_input_size"][0], vit_layers=cj["vit_layers"])
    model = Molmo(cfg, cj["embedding_size"])
    with open(os.path.join(dirpath, "model.safetensors.index.json")) as f:
        wmap = json.load(f)["weight_map"]
    tensors = {}
    for fn in sorted(set(wmap.values())):
        tensors.update(load_safetensors(os.path.join(dirpath, fn)))
    names = name_map(model)
    with torch.no_grad():
        for name, key in names:
            model.w(key).copy_(tensors[name])
    return model


def name_map(model):
    """(released name, parameter key) of every tensor (molmo.md 2.1)."""
    keys = list(model.W.keys())
    c = model.cfg
    out = []
    t, v, b = "model.transformer.", "model.vision_backbone.image_vit.", "model.vision_backbone."
    out += [(t + "wte.embedding", "wte"), (t + "wte.new_embedding", "wte_new")]
    for l in range(c["layers"]):
        p = f"{t}blocks.{l}."
        out += [(p + "attn_norm.weight", f"b{l}.attn_norm"),
                (p + "att_proj.weight", f"b{l}.att_proj.w"), (p + "att_proj.bias", f"b{l}.att_proj.b"),
                (p + "attn_out.weight", f"b{l}.attn_out"), (p + "ff_norm.weight", f"b{l}.ff_norm"),
                (p + "ff_proj.weight", f"b{l}.ff_proj"), (p + "ff_out.weight", f"b{l}.ff_out")]
    out += [(t + "ln_f.weight", "ln_f"), (t + "ff_out.weight", "ff_out"),
            (v + "patch_embedding.weight", "patch"), (v + "class_embedding", "cls"),
            (v + "positional_embedding", "pos"), (v + "pre_ln.weight", "pre_ln.w"),
            (v + "pre_ln.bias", "pre_ln.b")]
    for n in range(c["vlayers"]):
        p = f"{v}transformer.resblocks.{n}."
        for w in ("wq", "wk", "wv", "wo"):
            out += [(p + f"attention.{w}.weight", f"v{n}.{w}.w"),
                    (p + f"attention.{w}.bias", f"v{n}.{w}.b")]
        out += [(p + "attention_norm.weight", f"v{n}.ln1.w"), (p + "attention_norm.bias", f"v{n}.ln1.b"),
                (p + "ffn_norm.weight", f"v{n}.ln2.w"), (p + "ffn_norm.bias", f"v{n}.ln2.b"),
                (p + "feed_forward.w1.weight", f"v{n}.w1.w"), (p + "feed_forward.w1.bias", f"v{n}.w1.b"),
                (p + "feed_forward.w2.weight", f"v{n}.w2.w"), (p + "feed_forward.w2.bias", f"v{n}.w2.b")]
    out.append((b + "pad_embed", "pad_embed"))
    for w in ("wq", "wk", "wv", "wo"):
        out += [(b + f"image_pooling_2d.{w}.weight", f"pool.{w}.w"),
                (b + f"image_pooling_2d.{w}.bias", f"pool.{w}.b")]
    out += [(b + "image_projector.w1.weight", "proj.w1"), (b + "image_projector.w3.weight", "proj.w3"),
            (b + "image_projector.w2.weight", "proj.w2")]
    assert len(out) == len(keys)
    return out


# ---- data ------------------------------------------------------------------------------------

def jb_bin():
    return os.environ.get("JOULEBENCH", os.path.join(ROOT, "build", "release", "joulebench"))


def tokenizer_file(work):
    """The byte-level tokenizer `joulebench init-model` writes (equal to the golden one)."""
    path = os.path.join(work, "tokenizer.json")
    if not os.path.exists(path):
        tmp = tempfile.mkdtemp()
        subprocess.run([jb_bin(), "init-model", "--out", tmp + "/m", "--size", "tiny"],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copy(tmp + "/m/tokenizer.json", path)
        shutil.rmtree(tmp)
    return path


def read_png(path):
    """8-bit RGB/RGBA PNG with unfiltered rows (as `joulebench synth` writes them) -> uint8
    [h, w, 3]."""
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    i, idat, w, h, ch = 8, b"", None, None, 3
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (path, depth, ctype)
            ch = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        i += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    # joulebench's encoder (evals/png.c) writes every row with filter None
    assert (raw[:, 0] == 0).all(), f"{path}: filtered rows; only filter None is read here"
    out = raw[:, 1:]
    img = out.reshape(h, w, ch).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3])


def write_png_grey(path, w, h, v=128):
    import zlib
    raw = b"".join(b"\x00" + bytes([v]) * (3 * w) for _ in range(h))

    def chunk(k, b):
        c = struct.pack(">I", len(b)) + k + b
        return c + struct.pack(">I", zlib.crc32(k + b) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def render(seed, n, out):
    subprocess.run([jb_bin(), "synth", "--out", out, "--seed", str(seed), "--n", str(n)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def load_items(data_dir):
    """Every question of the three suites: dict(suite, id, image, prompt, answer, meta)."""
    items = []
    pts = {}
    with open(os.path.join(data_dir, "synth-count", "points.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            pts[o["id"]] = o
    for suite in ("synth-chart", "synth-doc", "synth-count"):
        with open(os.path.join(data_dir, suite, "questions.jsonl")) as f:
            for line in f:
                q = json.loads(line)
                kind = suite
                if suite == "synth-count":
                    kind = "count" if q["metric"] == "exact_count" else "point"
                if kind == "point":
                    o = pts[q["id"]]
                    x, y = o["points"][0]
                    obj = o["label"][4:]  # "the red circle" -> "red circle"
                    ans = f'<point x="{100.0 * x / o["width"]:.1f}" y="{100.0 * y / o["height"]:.1f}" ' \
                          f'alt="{obj}">{obj}</point>'
                else:
                    ans = q["answers"][0]
                items.append(dict(suite=suite, kind=kind, id=q["id"],
                                  image=os.path.join(data_dir, suite, q["image"]),
                                  prompt=f'{STYLE[kind]}: {q["question"]}', answer=ans))
    return items


class Encoder:
    """Images -> crops (cached per file); prompts and answers -> token ids."""

    def __init__(self, tok, S):
        self.tok, self.S = tok, S
        self.img_ids, idx = image_tokens(tok, S)
        self.idx = torch.tensor([p for crop in idx for p in crop])
        self.cache = {}

    def image(self, path, grey=False):
        key = (path, grey)
        if key not in self.cache:
            img = read_png(path)
            if grey:
                img = np.full_like(img, 128)
            self.cache[key] = preprocess(img, self.S)
        return self.cache[key]

    def prompt_ids(self, prompt):
        return self.img_ids + self.tok.encode(" User: " + prompt + " Assistant:")

    def batch(self, items, with_answer=True, grey=False):
        seqs, starts = [], []
        for it in items:
            p = self.prompt_ids(it["prompt"])
            a = self.tok.encode(it["answer"]) + [self.tok.eos] if with_answer else []
            seqs.append(p + a)
            starts.append(len(p))
        T = max(len(s) for s in seqs)
        ids = torch.full((len(items), T), self.tok.eos, dtype=torch.long)
        tgt = torch.full((len(items), T), -100, dtype=torch.long)
        for b, (s, st) in enumerate(zip(seqs, starts)):
            ids[b, :len(s)] = torch.tensor(s)
            if with_answer:
                tgt[b, st - 1:len(s) - 1] = torch.tensor(s[st:])
        crops = torch.stack([self.image(it["image"], grey)[0] for it in items])
        masks = torch.stack([self.image(it["image"], grey)[1] for it in items])
        return ids, tgt, crops, masks, starts


@torch.no_grad()
def greedy(model, enc, items, max_new=16, grey=False):
    """Greedy answers (no KV cache: the whole sequence again each step; models are tiny)."""
    ids, _, crops, masks, starts = enc.batch(items, with_answer=False, grey=grey)
    B = len(items)
    img = model.image_features(crops, masks)
    seqs = [list(ids[b, :starts[b]]) for b in range(B)]
    out = [[] for _ in range(B)]
    done = [False] * B
    for _ in range(max_new):
        T = max(len(s) for s in seqs)
        x = torch.full((B, T), enc.tok.eos, dtype=torch.long)
        for b, s in enumerate(seqs):
            x[b, :len(s)] = torch.tensor(s)
        logits = model.llm(x, img, enc.idx)
        for b in range(B):
            if done[b]:
                continue
            nxt = int(torch.argmax(logits[b, len(seqs[b]) - 1]))
            if nxt == enc.tok.eos:
                done[b] = True
            else:
                out[b].append(nxt)
                seqs[b].append(nxt)
        if all(done):
            break
    return [enc.tok.decode(o) for o in out]


def score(data_dir, suite, preds, work):
    """The official metric through `joulebench score`: mean over the suite's questions."""
    p = os.path.join(work, f"pred-{suite}.jsonl")
    with open(p, "w") as f:
        for i, a in preds:
            # an untrained model can emit NUL, which `score` (jansson) refuses
            f.write(json.dumps({"id": i, "prediction": a.replace("\x00", "")}) + "\n")
    o = os.path.join(work, f"score-{suite}.json")
    subprocess.run([jb_bin(), "score", "--suite", suite, "--data", data_dir, "--predictions", p,
                    "--json", o], check=True, stdout=subprocess.DEVNULL)
    with open(o) as f:
        r = json.load(f)
    # a suite mixing metrics (synth-count) reports the first in "mean", the others in "groups":
    # the suite's score is the mean over all its questions, as `joulebench run` computes it
    parts = [(r["mean"], r["n"])] + [(g["mean"], g["n"]) for g in r.get("groups", [])
                                      if "metric" in g]
    return sum(m * n for m, n in parts) / sum(n for _, n in parts)


def evaluate(model, enc, items, data_dir, work, grey=False):
    res = {}
    model.eval()
    for suite in ("synth-chart", "synth-doc", "synth-count"):
        its = [it for it in items if it["suite"] == suite]
        preds = []
        for k in range(0, len(its), 50):
            chunk = its[k:k + 50]
            mx = 96 if suite == "synth-count" else 20  # a point element is ~70 tokens
            preds += list(zip([it["id"] for it in chunk], greedy(model, enc, chunk, mx, grey)))
        res[suite] = score(data_dir, suite, preds, work)
        if suite == "synth-count":
            cnt = [(i, a) for (i, a), it in zip(preds, its) if it["kind"] == "count"]
            ok = sum(a.strip() == it["answer"] for (i, a), it in
                     zip(cnt, [x for x in its if x["kind"] == "count"]))
            res["count-exact"] = ok / max(1, len(cnt))
            with open(os.path.join(work, "score-synth-count.json")) as f:
                res["pointing"] = [g["mean"] for g in json.load(f)["groups"]
                                   if g.get("metric") == "pointing_f1"][0]
    model.train()
    return res


# ---- commands --------------------------------------------------------------------------------

def engine_dump(model_dir, image, prompt, out, max_tokens=8):
    os.makedirs(out, exist_ok=True)
    r = subprocess.run([jb_bin(), "generate", "--model", model_dir, "--image", image, "--prompt",
                        prompt, "--max-tokens", str(max_tokens), "--threads", "1", "--dump", out],
                       check=True, capture_output=True, text=True)
    return r.stdout


def trainer_logits(model, enc, image, prompt, answer_ids):
    """Prefill logits of the prompt + the given answer tokens, teacher-forced: [T, E]."""
    it = dict(image=image, prompt=prompt, answer="")
    ids, _, crops, masks, starts = enc.batch([it], with_answer=False)
    ids = torch.cat([ids[0, :starts[0]], torch.tensor(answer_ids, dtype=torch.long)])[None]
    with torch.no_grad():
        return model(ids, crops, masks, enc.idx)[0]


def cmd_check(a):
    """The forward pass and preprocessing here against the engine's (`generate --dump`)."""
    work = tempfile.mkdtemp()
    tok_path = tokenizer_file(work)
    tok = Tok(tok_path)
    cfg = dict(SIZES[a.size])
    model = Molmo(cfg, 264, seed=a.seed) if not a.model else load_model(a.model)
    mdir = a.model or os.path.join(work, "m")
    if not a.model:
        export(model, mdir, tok_path)
    enc = Encoder(tok, model.cfg["crop"])
    render(999, 2, os.path.join(work, "d"))
    items = load_items(os.path.join(work, "d"))
    worst = 0.0
    for it in [items[0], items[4], items[10], items[11]]:
        d = os.path.join(work, "dump-" + it["id"])
        engine_dump(mdir, it["image"], it["prompt"], d)
        crops, masks = enc.image(it["image"])
        e_img = np.load(os.path.join(d, "images.npy"))
        e_mask = np.load(os.path.join(d, "image_masks.npy"))
        e_ids = np.load(os.path.join(d, "input_ids.npy")).ravel()
        e_idx = np.load(os.path.join(d, "image_input_idx.npy"))
        gen = np.load(os.path.join(d, "generated_ids.npy")).ravel().tolist()
        p_ids = enc.prompt_ids(it["prompt"])
        print(f"{it['id']}: images max |diff| {np.abs(e_img - crops.numpy()).max():.3g}, "
              f"masks equal {np.array_equal(e_mask, masks.numpy())}, ids equal "
              f"{e_ids.tolist()[:len(p_ids)] == p_ids}, idx equal "
              f"{np.array_equal(e_idx.ravel(), enc.idx.numpy())}")
        lg = trainer_logits(model, enc, it["image"], it["prompt"], gen[:-1])
        e_lg = np.load(os.path.join(d, "logits_prefill.npy")).reshape(-1, lg.shape[-1])
        T = e_lg.shape[0]
        rel = np.abs(e_lg - lg[:T].numpy()).max() / np.abs(e_lg).max()
        worst = max(worst, rel)
        ours = greedy(model, enc, [it], 8)[0]
        print(f"   prefill logits rel {rel:.3g}; engine ids {gen}, ours '{ours}'")
    print(f"worst relative logit difference {worst:.3g}")
    shutil.rmtree(work)


def cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


MIX = {"count": 0.4, "point": 0.3, "synth-chart": 0.15, "synth-doc": 0.15}


def cmd_train(a):
    os.makedirs(a.work, exist_ok=True)
    mix = dict(MIX, **json.loads(a.mix)) if a.mix else dict(MIX)
    tot = sum(mix.values())
    mix = {k: v / tot for k, v in mix.items()}
    tok_path = tokenizer_file(a.work)
    tok = Tok(tok_path)
    cfg = dict(SIZES[a.size])
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    model = Molmo(cfg, 264, seed=a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    enc = Encoder(tok, cfg["crop"])
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    # held-out curve set: seed 999 (training uses 1000 + k, evaluation runs use 0 or their own)
    eval_dir = os.path.join(a.work, "eval-999")
    if not os.path.exists(os.path.join(eval_dir, "synth-count", "questions.jsonl")):
        render(999, 50, eval_dir)
    ev = load_items(eval_dir)
    ev = [it for s_ in ("synth-chart", "synth-doc", "synth-count")
          for it in [x for x in ev if x["suite"] == s_][:100]]
    pool, next_seed = [], 1000 + a.seed * 100000
    t0, step, seen = cpu_seconds(), 0, 0
    total_s = a.minutes * 60.0
    curve = open(os.path.join(a.work, "curve.tsv"), "a")
    curve.write(f"# size {a.size} params {n_params} cfg {json.dumps(cfg)} batch {a.batch} "
                f"lr {a.lr} mix {json.dumps(mix)} img_penalty {a.img_penalty}\n")
    curve.write("step\tsamples\tcpu_h\tloss\tchart\tdoc\tcount_suite\tcount_exact\n")
    curve.flush()
    best, last_eval, losses = -1.0, t0, []
    print(f"{a.size}: {n_params} parameters", flush=True)

    def renew():
        nonlocal next_seed
        d = os.path.join(a.work, "data", str(next_seed))
        render(next_seed, a.chunk, d)
        items = load_items(d)
        for it in items:  # preprocess now; the PNGs can go
            enc.image(it["image"])
        shutil.rmtree(d)
        next_seed += 1
        return items

    while not pool or len(pool) < a.pool:
        pool.append(renew())
    while True:
        el = cpu_seconds() - t0
        # the schedule follows the step count when --steps is given (reproducible), else the
        # CPU time spent (a budget)
        frac = min(1.0, step / a.steps) if a.steps else min(1.0, el / total_s)
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        items = [it for ch in pool for it in ch]
        by = {k: [it for it in items if it["kind"] == k] for k in mix}
        kinds = rng.choice(list(mix), size=a.batch, p=list(mix.values()))
        batch = [by[k][rng.integers(len(by[k]))] for k in kinds]
        ids, tgt, crops, masks, _ = enc.batch(batch)
        at = tgt != -100
        img = model.image_features(crops, masks, same_crops=True)
        logits = model.llm(ids, img, enc.idx, at)
        loss = F.cross_entropy(logits, tgt[at])
        # Without this the projector inflates the image features (RMS ~300 after 1000 steps of
        # tiny) into a near-constant bias that the LLM's RMSNorm divides away, and the vision
        # path stops receiving gradient: their mean square is kept near 1 or below.
        loss = loss + a.img_penalty * F.relu(img.pow(2).mean() - 1.0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += a.batch
        losses.append(float(loss))
        if step % a.renew_every == 0:
            old = pool.pop(0)
            for it in old:
                enc.cache.pop((it["image"], False), None)
            pool.append(renew())
        now = cpu_seconds()
        if step % 50 == 0:
            print(f"step {step} samples {seen} cpu {(now - t0) / 60:.1f} min loss "
                  f"{np.mean(losses[-50:]):.4f} lr {lr:.2e}", flush=True)
        final = step >= a.steps if a.steps else now - t0 >= total_s
        if final or now - last_eval >= a.eval_every * 60:
            r = evaluate(model, enc, ev, eval_dir, a.work)
            last_eval = cpu_seconds()
            curve.write(f"{step}\t{seen}\t{(now - t0) / 3600:.3f}\t{np.mean(losses[-200:]):.4f}\t"
                        f"{r['synth-chart']:.3f}\t{r['synth-doc']:.3f}\t{r['synth-count']:.3f}\t"
                        f"{r['count-exact']:.3f}\n")
            curve.flush()
            print(f"eval at step {step}: {r}", flush=True)
            torch.save({"cfg": cfg, "state": model.state_dict(), "step": step}, 
                       os.path.join(a.work, "last.pt"))
            sc = r["synth-count"] + 0.5 * (r["synth-chart"] + r["synth-doc"])
            if sc > best:
                best = sc
                export(model, os.path.join(a.work, "best"), tok_path)
                with open(os.path.join(a.work, "best", "TRAINED.json"), "w") as f:
                    f.write(json.dumps({"step": step, "samples": seen,
                                        "cpu_h": (now - t0) / 3600, "eval": r}) + "\n")
            if final:
                break


def cmd_export(a):
    """A training checkpoint (.pt) -> the released layout."""
    ck = torch.load(a.ckpt)
    model = Molmo(ck["cfg"], 264)
    model.load_state_dict(ck["state"])
    work = tempfile.mkdtemp()
    export(model, a.out, tokenizer_file(work), a.dtype)
    shutil.rmtree(work)


FIXTURE_SEED = 77  # held out: training uses 1000 + k, the learning curve 999, `run` 0


def fixture_items(data_dir):
    """5 held-out samples per suite: images 0..4, the first question of each (synth-count:
    counting on images 0, 2, 4, pointing on 1, 3)."""
    items = load_items(data_dir)
    out = []
    for suite in ("synth-chart", "synth-doc", "synth-count"):
        seen = set()
        for it in items:
            if it["suite"] != suite or it["image"] in seen:
                continue
            k = len(seen)
            if suite == "synth-count" and it["kind"] != ("count" if k % 2 == 0 else "point"):
                continue
            seen.add(it["image"])
            out.append(it)
            if len(seen) == 5:
                break
    return out


def cmd_fixtures(a):
    """The parity fixtures of tests/test-default-models.c: per sample the trainer's greedy ids
    and its logits at every answer position (teacher-forced on those ids), as .npy."""
    work = tempfile.mkdtemp()
    tok = Tok(tokenizer_file(work))
    data = os.path.join(a.out, "images")
    if not os.path.exists(os.path.join(data, "fixtures.json")):
        render(FIXTURE_SEED, 5, os.path.join(work, "d"))
        its = fixture_items(os.path.join(work, "d"))
        os.makedirs(data, exist_ok=True)
        for it in its:
            dst = f"{it['suite']}-{os.path.basename(it['image'])}"
            shutil.copy(it["image"], os.path.join(data, dst))
            it["image"] = dst
        with open(os.path.join(data, "fixtures.json"), "w") as f:
            json.dump([dict(suite=it["suite"], id=it["id"], image=it["image"],
                            prompt=it["prompt"]) for it in its], f, indent=1)
            f.write("\n")
    with open(os.path.join(data, "fixtures.json")) as f:
        its = json.load(f)
    for m in a.models:
        name = os.path.basename(os.path.normpath(m))
        model = load_model(m)
        model.eval()
        enc = Encoder(tok, model.cfg["crop"])
        od = os.path.join(a.out, name)
        os.makedirs(od, exist_ok=True)
        rows = []
        for k, it in enumerate(its):
            img = os.path.join(data, it["image"])
            x = dict(image=img, prompt=it["prompt"], answer="")
            ans = greedy_ids(model, enc, x, a.max_tokens)
            lg = trainer_logits(model, enc, img, it["prompt"], ans[:-1] if ans[-1] == tok.eos else ans)
            n_p = len(enc.prompt_ids(it["prompt"]))
            np.save(os.path.join(od, f"logits-{k}.npy"),
                    lg[n_p - 1:n_p - 1 + len(ans)].numpy().astype(np.float32))
            rows.append(dict(k=k, ids=ans, answer=tok.decode(ans)))
            print(f"{name} {it['id']}: {tok.decode(ans)!r}")
        with open(os.path.join(od, "answers.json"), "w") as f:
            json.dump(rows, f, indent=1)
            f.write("\n")
    shutil.rmtree(work)


@torch.no_grad()
def greedy_ids(model, enc, it, max_new):
    """Greedy ids of one sample, EOS included when it stops there."""
    ids, _, crops, masks, starts = enc.batch([it], with_answer=False)
    img = model.image_features(crops, masks)
    seq = list(ids[0, :starts[0]].tolist())
    out = []
    for _ in range(max_new):
        logits = model.llm(torch.tensor([seq]), img, enc.idx)
        nxt = int(torch.argmax(logits[0, -1]))
        out.append(nxt)
        if nxt == enc.tok.eos:
            break
        seq.append(nxt)
    return out


SHIPPED = ["config.json", "preprocessor_config.json", "generation_config.json", "tokenizer.json",
           "model.safetensors.index.json", "model-00001-of-00002.safetensors",
           "model-00002-of-00002.safetensors", "TRAINED.json"]


def cmd_ship(a):
    """An exported checkpoint (the `best` directory of a training run) -> models/NAME with its
    SHA256SUMS (sha256sum format; the engine checks it at load)."""
    import hashlib
    os.makedirs(a.to, exist_ok=True)
    lines = []
    for f in SHIPPED:
        src = os.path.join(a.src, f)
        if f == "TRAINED.json" and not os.path.exists(src):
            src = os.path.join(a.src, "TRAINED")
        shutil.copy(src, os.path.join(a.to, f))
        with open(os.path.join(a.to, f), "rb") as fh:
            lines.append(f"{hashlib.sha256(fh.read()).hexdigest()}  {f}\n")
    with open(os.path.join(a.to, "SHA256SUMS"), "w") as fh:
        fh.writelines(lines)


def cmd_measure(a):
    """The acceptance measurement: `joulebench run` on a held-out seed, a.n items per suite,
    with the real images and with every image replaced by a grey one of the same size."""
    work = a.work
    real = os.path.join(work, "real")
    if not os.path.exists(os.path.join(real, "synth-count", "questions.jsonl")):
        render(a.seed, max(50, a.n // 2), real)
    grey = os.path.join(work, "grey")
    if not os.path.exists(grey):
        shutil.copytree(real, grey)
        for root, _, files in os.walk(grey):
            for f in files:
                if f.endswith(".png"):
                    h, w = read_png(os.path.join(root, f)).shape[:2]
                    write_png_grey(os.path.join(root, f), w, h)
    res = {}
    for kind, data in (("real", real), ("grey", grey)):
        out = os.path.join(work, "run-" + kind)
        shutil.rmtree(out, ignore_errors=True)
        cmd = [jb_bin(), "run", "--out", out, "--suite", "synth-chart,synth-doc,synth-count",
               "--data", data, "--limit", str(a.n), "--idle-s", "0", "--threads", "1",
               "--format", "md"]
        for m in a.models:
            cmd += ["--model", m]
        if a.meter:
            cmd += ["--meter", a.meter]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(out, "run.json")) as f:
            for r in json.load(f)["results"]:
                res.setdefault((r["model"], r["suite"]), {})[kind] = r
    print("| model | suite | n | accuracy (real) | accuracy (grey) | difference | J/sample |")
    print("|---|---|---|---|---|---|---|")
    for (m, s_), v in sorted(res.items()):
        r, g = v["real"], v["grey"]
        print(f"| {m} | {s_} | {r['n_samples']} | {100 * r['accuracy']:.1f} | "
              f"{100 * g['accuracy']:.1f} | {100 * (r['accuracy'] - g['accuracy']):+.1f} | "
              f"{r['j_per_sample']:.3g} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--size", default="tiny", choices=sorted(SIZES))
    c.add_argument("--model")
    c.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("--size", default="tiny", choices=sorted(SIZES))
    t.add_argument("--work", required=True)
    t.add_argument("--minutes", type=float, default=60.0, help="CPU minutes of training")
    t.add_argument("--steps", type=int, default=0,
                   help="train this many steps instead (the schedule then follows steps)")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--img-penalty", type=float, default=0.1,
                   help="weight of the penalty on image-feature mean squares above 1")
    t.add_argument("--mix", help='sampling weights, JSON, e.g. {"count": 0.5} (default '
                   + json.dumps(MIX) + ")")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--chunk", type=int, default=60, help="images per suite per rendered chunk")
    t.add_argument("--pool", type=int, default=8, help="chunks held")
    t.add_argument("--renew-every", type=int, default=40, help="steps between new chunks")
    t.add_argument("--eval-every", type=float, default=8.0, help="CPU minutes between evals")
    e = sub.add_parser("export")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--dtype", default="F32", choices=["F32", "BF16"])
    x = sub.add_parser("fixtures")
    x.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "default-models"))
    x.add_argument("--max-tokens", type=int, default=64)
    x.add_argument("models", nargs="+")
    h = sub.add_parser("ship")
    h.add_argument("src")
    h.add_argument("to")
    u = sub.add_parser("measure")
    u.add_argument("--work", required=True)
    u.add_argument("--seed", type=int, default=4242)
    u.add_argument("--n", type=int, default=100)
    u.add_argument("--meter")
    u.add_argument("models", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    {"check": cmd_check, "train": cmd_train, "export": cmd_export, "fixtures": cmd_fixtures,
     "ship": cmd_ship, "measure": cmd_measure}[a.cmd](a)


if __name__ == "__main__":
    main()
