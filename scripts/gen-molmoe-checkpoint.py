#!/usr/bin/python3
"""Writes a random-weight checkpoint with MolmoE-1B-0924's shapes (molmo.md §1.1, §2.2): the
OLMo-style config.json of ../shared/golden/molmo-tiny-olmoe with the released sizes (d_model
2048, 16 heads, 64 experts of width 1024, top 8, vocabulary 50280 / embedding 50304 + 128, ViT-L
1024 wide), fewer LLM and ViT layers by default so the file stays a few GB, sharded BF16
safetensors, and the released MolmoE-1B tokenizer (../shared/golden/tokenizer/molmoe-1b). Used
to measure decode speed against memory bandwidth without the 29 GB download; its answers are
noise. Weights are slices of one pool of random values (the router and norms fully random), so
writing 3 GB takes seconds.

    scripts/gen-molmoe-checkpoint.py OUT_DIR [--layers 4] [--vit-layers 9] [--experts 64]
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
    ap.add_argument("--golden", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "golden"))
    ap.add_argument("--layers", type=int, default=4, help="LLM layers (released: 16)")
    ap.add_argument("--vit-layers", type=int, default=9, help="ViT layers (released: 23)")
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    d, H, f, X = 2048, 16, 1024, a.experts
    D, F, V, E = 1024, 4096, 50280, 50304
    os.makedirs(a.out, exist_ok=True)
    tiny = os.path.join(a.golden, "molmo-tiny-olmoe")
    shutil.copy(os.path.join(tiny, "preprocessor_config.json"), a.out)
    shutil.copy(os.path.join(a.golden, "tokenizer", "molmoe-1b", "tokenizer.json"), a.out)
    with open(os.path.join(a.out, "generation_config.json"), "w") as fp:
        json.dump({"eos_token_id": 50279, "pad_token_id": 1}, fp)
    with open(os.path.join(tiny, "config.json")) as fp:
        cfg = json.load(fp)
    cfg.update(d_model=d, n_heads=H, n_kv_heads=None, n_layers=a.layers, mlp_ratio=1,
               moe_num_experts=X, moe_top_k=a.top_k, vocab_size=V, embedding_size=E,
               pad_token_id=1)
    cfg["vision_backbone"].update(image_emb_dim=D, image_num_heads=16, image_head_dim=64,
                                  image_num_key_value_heads=16, image_mlp_dim=F,
                                  image_num_layers=a.vit_layers)
    with open(os.path.join(a.out, "config.json"), "w") as fp:
        json.dump(cfg, fp, indent=2)

    shards = []
    vis = vision_tensors(D, F, a.vit_layers, d, f)
    shards.append(vis)
    t = "model.transformer."
    shards.append([(t + "wte.embedding", [E, d]), (t + "wte.new_embedding", [128, d]),
                   (t + "ln_f.weight", [d]), ("lm_head.weight", [E, d])])
    for l in range(a.layers):
        p = f"{t}blocks.{l}."
        s = [(p + "attn.attn_norm.weight", [d]), (p + "attn.q_norm.weight", [d]),
             (p + "attn.k_norm.weight", [d]), (p + "attn.att_proj.weight", [3 * d, d]),
             (p + "attn.attn_out.weight", [d, d]), (p + "mlp.ff_norm.weight", [d]),
             (p + "mlp.gate.weight", [X, d])]
        for e in range(X):
            q = f"{p}mlp.experts.{e}."
            s += [(q + "gate_proj.weight", [f, d]), (q + "up_proj.weight", [f, d]),
                  (q + "down_proj.weight", [d, f])]
        shards.append(s)

    rng = np.random.default_rng(a.seed)
    pool = (rng.normal(0, 0.02, 1 << 24).astype(np.float32).view(np.uint32) >> 16).astype("<u2")
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map, total, n_params = {}, 0, 0
    for fname, tensors in zip(names, shards):
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in tensors:
            n = int(np.prod(shape))
            header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + 2 * n]}
            off += 2 * n
            weight_map[name] = fname
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(a.out, fname), "wb") as fp:
            fp.write(struct.pack("<Q", len(h)))
            fp.write(h)
            for name, shape in tensors:
                n = int(np.prod(shape))
                n_params += n
                if name.endswith(("norm.weight", "ln.weight", "ln_f.weight")):
                    x = np.ones(n, np.float32) + rng.normal(0, 0.05, n).astype(np.float32)
                    raw = (x.view(np.uint32) >> 16).astype("<u2")
                elif name.endswith(("bias", "mlp.gate.weight")) or n <= (1 << 20):
                    x = rng.normal(0, 0.02 if "gate" not in name else 1.0, n).astype(np.float32)
                    raw = (x.view(np.uint32) >> 16).astype("<u2")
                else:  # a random window of the pool, repeated as needed
                    start = int(rng.integers(0, pool.size))
                    reps = (start + n + pool.size - 1) // pool.size
                    raw = np.tile(pool, reps)[start:start + n] if reps > 1 else pool[start:start + n]
                fp.write(raw.tobytes())
        total += off
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as fp:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fp, indent=2)
    print(f"{a.out}: {n_params} parameters, {total} bytes of BF16 data")


if __name__ == "__main__":
    main()
