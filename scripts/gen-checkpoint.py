#!/usr/bin/python3
"""Writes a random-weight Molmo checkpoint in the released Molmo-7B-D layout (molmo.md §2.1):
config.json with vision_backbone/vit_layers, sharded safetensors + index, and the tokenizer,
preprocessor and generation configs of a golden checkpoint. Used to measure memory and speed on
a model bigger than the golden ones without downloading one; its answers are noise.

    scripts/gen-checkpoint.py OUT_DIR [--dtype BF16] [--golden ../shared/golden]

The default sizes give ~200M parameters (ViT 512 wide x 23 layers, LLM 1024 wide x 10 layers,
GQA 16/4 heads, FFN 2 x 2816), the vocabulary of the golden tokenizer (264 + 128 rows).
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np

from molmo_layout import vision_tensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dtype", default="BF16", choices=["BF16", "F32", "F16"])
    ap.add_argument("--golden", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "golden"))
    ap.add_argument("--d-model", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=5632, help="fused up+gate rows")
    ap.add_argument("--vit-dim", type=int, default=512)
    ap.add_argument("--vit-heads", type=int, default=8)
    ap.add_argument("--vit-layers", type=int, default=23)
    ap.add_argument("--vit-mlp", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    src = os.path.join(a.golden, "molmo-tiny-qwen2")
    os.makedirs(a.out, exist_ok=True)
    for f in ("tokenizer.json", "preprocessor_config.json", "generation_config.json"):
        shutil.copy(os.path.join(src, f), os.path.join(a.out, f))
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    d, D, ffn = a.d_model, a.vit_dim, a.ffn
    hd = d // a.heads
    kvd = a.kv_heads * hd
    cfg.update(hidden_size=d, num_hidden_layers=a.layers, num_attention_heads=a.heads,
               num_key_value_heads=a.kv_heads, intermediate_size=ffn,
               torch_dtype={"BF16": "bfloat16", "F32": "float32", "F16": "float16"}[a.dtype])
    vb = cfg["vision_backbone"]
    vb.update(image_emb_dim=D, image_num_heads=a.vit_heads, image_num_key_value_heads=a.vit_heads,
              image_num_layers=a.vit_layers, image_head_dim=D // a.vit_heads,
              image_mlp_dim=a.vit_mlp)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    E, F, np_ = cfg["embedding_size"], a.vit_mlp, 588

    llm, vis = [], []
    llm.append(("model.transformer.wte.embedding", [E, d]))
    llm.append(("model.transformer.wte.new_embedding", [128, d]))
    for l in range(a.layers):
        p = f"model.transformer.blocks.{l}."
        llm += [(p + "attn_norm.weight", [d]), (p + "att_proj.weight", [d + 2 * kvd, d]),
                (p + "att_proj.bias", [d + 2 * kvd]), (p + "attn_out.weight", [d, d]),
                (p + "ff_norm.weight", [d]), (p + "ff_proj.weight", [ffn, d]),
                (p + "ff_out.weight", [d, ffn // 2])]
    llm += [("model.transformer.ln_f.weight", [d]), ("model.transformer.ff_out.weight", [E, d])]
    vis += vision_tensors(D, F, a.vit_layers, d, ffn // 2, np_)

    rng = np.random.default_rng(a.seed)
    # three shards: embeddings + first half of the LLM, the rest of the LLM, the vision side
    half = 2 + 7 * (a.layers // 2)
    shards = [llm[:half], llm[half:], vis]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map, total, n_params = {}, 0, 0
    for fname, tensors in zip(names, shards):
        header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
        for name, shape in tensors:
            n = int(np.prod(shape))
            n_params += n
            if name.endswith(("norm.weight", "ln.weight", "ln_f.weight")):
                x = np.ones(n, np.float32) + rng.normal(0, 0.05, n).astype(np.float32)
            else:
                x = rng.normal(0, 0.02, n).astype(np.float32)
            if a.dtype == "BF16":
                raw = (x.view(np.uint32) >> 16).astype("<u2").tobytes()
            elif a.dtype == "F16":
                raw = x.astype("<f2").tobytes()
            else:
                raw = x.astype("<f4").tobytes()
            header[name] = {"dtype": a.dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
            off += len(raw)
            blobs.append(raw)
            weight_map[name] = fname
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(a.out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for raw in blobs:
                f.write(raw)
        total += off
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print(f"{a.out}: {n_params} parameters, {total} bytes of {a.dtype} data")


if __name__ == "__main__":
    main()
