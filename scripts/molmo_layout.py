"""Tensor names and shapes of the vision side shared by every Molmo (0924) checkpoint
(molmo.md section 2.1), for the random-checkpoint generators in this directory."""


def vision_tensors(D, F, n_layers, d, proj_inner, patch_dim=588):
    """(name, shape) of the ViT (width D, MLP F, n_layers blocks), the pad embeddings, the 2x2
    attention pooling and the projector to the LLM width d (inner width proj_inner)."""
    v = "model.vision_backbone.image_vit."
    vis = [(v + "patch_embedding.weight", [D, patch_dim]), (v + "class_embedding", [D]),
           (v + "positional_embedding", [577, D]), (v + "pre_ln.weight", [D]),
           (v + "pre_ln.bias", [D])]
    for n in range(n_layers):
        p = f"{v}transformer.resblocks.{n}."
        for w in ("wq", "wk", "wv", "wo"):
            vis += [(p + f"attention.{w}.weight", [D, D]), (p + f"attention.{w}.bias", [D])]
        vis += [(p + "attention_norm.weight", [D]), (p + "attention_norm.bias", [D]),
                (p + "ffn_norm.weight", [D]), (p + "ffn_norm.bias", [D]),
                (p + "feed_forward.w1.weight", [F, D]), (p + "feed_forward.w1.bias", [F]),
                (p + "feed_forward.w2.weight", [D, F]), (p + "feed_forward.w2.bias", [D])]
    b = "model.vision_backbone."
    vis.append((b + "pad_embed", [2, 2 * D]))
    for w in ("wq", "wk", "wv"):
        vis += [(b + f"image_pooling_2d.{w}.weight", [D, 2 * D]),
                (b + f"image_pooling_2d.{w}.bias", [D])]
    vis += [(b + "image_pooling_2d.wo.weight", [D, D]), (b + "image_pooling_2d.wo.bias", [D]),
            (b + "image_projector.w1.weight", [proj_inner, D]),
            (b + "image_projector.w3.weight", [proj_inner, D]),
            (b + "image_projector.w2.weight", [d, proj_inner])]
    return vis
