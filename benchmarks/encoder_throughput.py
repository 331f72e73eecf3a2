"""Encoder throughput: images/s, spectra/s and texts/s through the public encoding API,
against the bare backbone forward pass on the same items in the same run.

What each side does, per modality (same items, same batch size, same torch threads):

- **image**: ours is ``AlignedEncoder.encode_images`` on decoded images (PIL, as a reader
  hands them over): square-on-sky crop, resize, tensor, EfficientNet-Lite0, the projection
  head, normalisation, numpy. The bare side is ``image_backbone`` alone on the
  already-made (B, 3, 224, 224) tensors. A third figure, ours from the files on disk
  (decoding included), is reported beside them.
- **spectrum**: ours is ``encode_spectra`` on ``Spectrum`` objects: resampling onto the
  tower's log-wavelength grid, normalisation, mask, the 1-D CNN, the head. The bare side is
  the CNN (``spectrum_tower``) alone on the already-gridded (B, 2, pixels) tensors.
- **text**: ours is ``encode_text`` (tokenising included); the bare side is MiniLM's forward
  pass on the already-tokenised batches.

Ours and bare alternate for ``--repeats`` rounds after one warm-up round; the figure is the
median rate over the rounds, and ``*_vs_backbone`` is ours / bare (the issue's target is at
least 0.8).

    python benchmarks/encoder_throughput.py
    python benchmarks/encoder_throughput.py --repeats 5 --batch-size 32
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from astrovlm.config import sample_dir  # noqa: E402
from astrovlm.data.readers import read_spectrum  # noqa: E402
from astrovlm.data.records import SkyDataset  # noqa: E402
from astrovlm.encoders.model import AlignedEncoder  # noqa: E402
from astrovlm.encoders.preprocess import image_to_tensor, load_rgb, spectrum_to_tensor  # noqa: E402


def rate(n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


@torch.inference_mode()
def in_batches(fn, items, size: int) -> None:
    for i in range(0, len(items), size):
        fn(items[i:i + size])


def compare(name: str, n: int, ours, bare, repeats: int, figures: dict, extra: dict | None = None) -> None:
    """Alternate ours and bare (plus any extra variants of ours) and keep the median rates."""
    runs = {"ours": ours, "bare": bare, **(extra or {})}
    for fn in runs.values():      # warm-up: lazy inits, allocator, caches
        fn()
    rates = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            rates[k].append(rate(n, fn))
    med = {k: statistics.median(v) for k, v in rates.items()}
    figures[f"{name}_per_s"] = round(med["ours"], 1)
    figures[f"{name}_backbone_per_s"] = round(med["bare"], 1)
    figures[f"{name}_vs_backbone"] = round(med["ours"] / med["bare"], 3)
    for k in extra or {}:
        figures[f"{name}_{k}_per_s"] = round(med[k], 1)
        figures[f"{name}_{k}_vs_backbone"] = round(med[k] / med["bare"], 3)
    figures[f"{name}_n"] = n
    print(f"{name}: ours {med['ours']:.1f}/s, bare backbone {med['bare']:.1f}/s "
          f"({med['ours'] / med['bare']:.3f}x)", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="encoder folder (default: shipped)")
    ap.add_argument("--dataset", help="dataset folder (default: the sample sky)")
    ap.add_argument("--images", type=int, default=256, help="images timed per round")
    ap.add_argument("--spectra", type=int, default=495, help="spectra timed per round")
    ap.add_argument("--texts", type=int, default=512, help="texts timed per round")
    ap.add_argument("--batch-size", type=int, default=32, help="images per batch (spectra and texts: 64)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    ds = SkyDataset(args.dataset or sample_dir())
    enc = AlignedEncoder.from_pretrained(args.model)
    figures = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "encoder": enc.fingerprint}

    # --- images ----------------------------------------------------------------------------
    paths = [ds.path(r.path) for r in ds.images[:args.images]]
    decoded = [load_rgb(p) for p in paths]
    pixels = torch.stack([image_to_tensor(im) for im in decoded])
    bs = args.batch_size
    compare("image", len(decoded),
            ours=lambda: enc.encode_images(decoded, batch_size=bs),
            bare=lambda: in_batches(enc.image_backbone, pixels, bs),
            extra={"from_files": lambda: enc.encode_images(paths, batch_size=bs)},
            repeats=args.repeats, figures=figures)

    # --- spectra ---------------------------------------------------------------------------
    spectra = [read_spectrum(ds.path(r.path)) for r in ds.spectra[:args.spectra]]
    grid = enc.spectrum_grid
    gridded = torch.stack([spectrum_to_tensor(s, grid=grid) for s in spectra])
    compare("spectrum", len(spectra),
            ours=lambda: enc.encode_spectra(spectra, batch_size=64),
            bare=lambda: in_batches(enc.spectrum_tower, gridded, 64),
            repeats=args.repeats, figures=figures)

    # --- texts -----------------------------------------------------------------------------
    texts = [p.text[:400] for p in ds.passages[:args.texts]]
    tok, net, max_len = enc.text_backbone.tokenizer, enc.text_backbone.net, enc.text_backbone.max_length
    batches = [tok(texts[i:i + 64], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
               for i in range(0, len(texts), 64)]

    @torch.inference_mode()
    def bare_text():
        for b in batches:
            net(**b)

    compare("text", len(texts),
            ours=lambda: enc.encode_text(texts, batch_size=64),
            bare=bare_text, repeats=args.repeats, figures=figures)

    figures["target_vs_backbone"] = 0.8
    write_results("encoder_throughput", figures, n=len(decoded) + len(spectra) + len(texts))


if __name__ == "__main__":
    main()
