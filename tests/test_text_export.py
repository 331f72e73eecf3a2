"""The text tower round-trips through sentence-transformers: ``SentenceTransformer(folder)`` on
a folder from ``astrovlm encoders export-text`` gives ``AlignedEncoder.encode_text``'s vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astrovlm.cli import main

# Short and long (past the 128-token truncation), padded with blanks, accents and Greek, one word.
SENTENCES = [
    "a barred spiral galaxy seen face-on",
    "  M57, the Ring Nebula in Lyra  ",
    "ω Centauri, the brightest globular cluster; Andromède",
    "the spectrum of a quasar at redshift 2 with broad Lyman-alpha and C IV emission " * 12,
    "supernova",
]


@pytest.mark.slow
def test_sentence_transformers_gives_astrovlms_text_vectors(tmp_path, capsys):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from astrovlm.encoders import AlignedEncoder

    folder = tmp_path / "text-tower"
    assert main(["encoders", "export-text", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    encoder = AlignedEncoder.from_pretrained()
    assert summary["encoder_fingerprint"] == encoder.fingerprint
    assert json.loads((folder / "astrovlm.json").read_text())["encoder_fingerprint"] == encoder.fingerprint
    # only stock modules: loading runs none of astrovlm's code (no trust_remote_code)
    modules = json.loads((folder / "modules.json").read_text())
    assert all(m["type"].startswith("sentence_transformers.") for m in modules)

    model = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    assert model.max_seq_length == encoder.config["text_tower"]["max_length"]
    ours = encoder.encode_text(SENTENCES)
    theirs = model.encode(SENTENCES, convert_to_numpy=True, batch_size=2)
    assert theirs.shape == ours.shape == (len(SENTENCES), encoder.embed_dim)
    np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
    # the long sentence runs past the cut, so the agreement above shows both cut it alike
    assert len(model.tokenizer(SENTENCES[3])["input_ids"]) > model.max_seq_length


def test_the_head_folds_into_two_dense_layers_exactly():
    import torch

    from astrovlm.encoders.text_export import head_as_dense_layers
    from astrovlm.encoders.towers import ProjectionHead

    torch.manual_seed(0)
    head = ProjectionHead(384, 256).eval()
    layers = head_as_dense_layers(head)
    x = torch.randn(16, 384) * 3
    u = torch.nn.functional.layer_norm(x, (384,), layers["2_LayerNorm"]["norm.weight"],
                                       layers["2_LayerNorm"]["norm.bias"])
    h = torch.nn.functional.gelu(u @ layers["3_Dense"]["linear.weight"].T + layers["3_Dense"]["linear.bias"])
    y = h @ layers["4_Dense"]["linear.weight"].T + layers["4_Dense"]["linear.bias"]
    with torch.no_grad():
        torch.testing.assert_close(torch.nn.functional.normalize(y, dim=-1), head(x), atol=1e-5, rtol=0)
