"""Training-step speed and loss parity of number formats on the CPU: fp32 vs bf16, channels_last on/off.

Every variant trains its own copy of the same initial network on the same batches (same seed, same
order), and the variants' steps are **interleaved** (variant A step 1, B step 1, …, A step 2, …) so a
slow spell of a shared machine hits them all alike. Printed side by side: median seconds per step after
warm-up, steps/s relative to fp32, and the mean loss of the last ``--tail`` steps (parity: bf16 must land
where fp32 does). Also measured: how long each step waits for its batch from the data pipeline (decode +
augmentation in ``--workers`` loader processes) relative to the step itself.

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py --steps 40 --threads 1 --md docs/bench_train.md

Defaults: the shipped architecture and recipe (configs/synth_resnet18_ibn.yaml: half-width ResNet-18-IBN,
64-d embeddings, batch 8 at 320×192, Adam at 1e-3 with gradient clipping at 10), synthetic summer frames.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ibntrack.data.dataset import MOTDataset
from ibntrack.data.mot import load_sequences
from ibntrack.data.synth import generate_sequence
from ibntrack.fileio import atomic_write_text
from ibntrack.losses.total import LossConfig, MotLoss
from ibntrack.nn import build_model
from ibntrack.precision import autocast, cpu_has_native_bf16
from ibntrack.sizes import INPUT_MULTIPLE, parse_size
from ibntrack.training.train import TrainModule


def make_data(root: Path, frames: int, size: tuple[int, int], input_hw: tuple[int, int]) -> MOTDataset:
    for seed in range(2):
        generate_sequence(
            root, "summer", frames=frames, objects=16, size=size, seed=seed, classes=("pedestrian",)
        )
    seqs = load_sequences(root)
    return MOTDataset(seqs, input_size=input_hw, augment=True, seed=0)


def build(num_ids: int, arch: str, width: float) -> TrainModule:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=1, emb_dim=64, width=width, head_conv=64)
    loss = MotLoss(LossConfig(), num_ids=num_ids, emb_dim=64)
    return TrainModule(model, loss)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--tail", type=int, default=10, help="loss parity: mean of the last n steps")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--input", default="320x192", help="network input WxH")
    p.add_argument("--arch", default="resnet18-ibn")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="loader processes for the data-wait measurement")
    p.add_argument("--variants", default="fp32,bf16,fp32+cl,bf16+cl")
    p.add_argument("--md", type=Path, help="write the markdown table here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    w, h = parse_size(args.input, multiple=INPUT_MULTIPLE)
    variants = args.variants.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        ds = make_data(
            Path(tmp), frames=max(60, args.steps * args.batch // 2), size=(640, 360), input_hw=(h, w)
        )
        base = build(ds.num_ids, args.arch, args.width)
        runs = {}
        for v in variants:
            module = copy.deepcopy(base)
            cl = v.endswith("+cl")
            if cl:
                module = module.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(module.parameters(), lr=1e-3)
            runs[v] = {"module": module, "opt": opt, "cl": cl, "prec": v.split("+")[0], "t": [], "loss": []}

        # the batches, decoded once (their decode time is measured below, not here)
        loader = DataLoader(
            ds, batch_size=args.batch, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        batches = []
        for images, targets in loader:
            batches.append((images, targets))
            if len(batches) == args.steps:
                break
        while len(batches) < args.steps:
            batches += batches[: args.steps - len(batches)]

        for step, (images, targets) in enumerate(batches):
            for r in runs.values():
                x = images.contiguous(memory_format=torch.channels_last) if r["cl"] else images
                r["module"].train()
                t0 = time.perf_counter()
                with autocast(r["prec"], "cpu"):
                    loss, _ = r["module"](x, targets)
                r["opt"].zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(r["module"].parameters(), 10.0)
                r["opt"].step()
                r["t"].append(time.perf_counter() - t0)
                r["loss"].append(float(loss.detach()))
            print(
                f"step {step + 1}: "
                + "  ".join(f"{v} {r['t'][-1]:.2f}s {r['loss'][-1]:.3f}" for v, r in runs.items()),
                flush=True,
            )

        # data pipeline: time to produce each batch with `workers` processes while a step runs
        wait = measure_data_wait(ds, runs[variants[-1]], args)

    ref = statistics.median(runs[variants[0]]["t"][args.warmup :])
    lines = [
        f"Training step, {args.arch} width {args.width}, batch {args.batch} at {w}×{h}, "
        f"{args.threads} thread(s), "
        f"{args.steps} interleaved steps (median after {args.warmup} warm-up); CPU native bf16: "
        f"{cpu_has_native_bf16()}.",
        "",
        f"| variant | s/step | steps/s vs {variants[0]} | loss, mean of last {args.tail} steps |",
        "|---|---:|---:|---:|",
    ]
    for v, r in runs.items():
        t = statistics.median(r["t"][args.warmup :])
        lines.append(f"| {v} | {t:.3f} | {ref / t:.2f}× | {statistics.mean(r['loss'][-args.tail :]):.4f} |")
    lines += [
        "",
        f"Data pipeline ({args.workers} loader process(es), augmentation on): the step waited for its batch "
        f"{wait['wait_ms']:.1f} ms on average (median {wait['wait_median_ms']:.1f} ms) against a "
        f"{wait['step_ms']:.0f} ms step — {100 * wait['fraction']:.1f} % of the step time.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        atomic_write_text(args.md, text)


def measure_data_wait(ds: MOTDataset, run: dict, args: argparse.Namespace, steps: int = 12) -> dict:
    """Trains ``steps`` more steps straight from a DataLoader and times the wait for each batch."""
    loader = DataLoader(
        ds,
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        generator=torch.Generator().manual_seed(1),
        persistent_workers=False,
    )
    waits, steps_t = [], []
    it = iter(loader)
    for i in range(steps):
        t0 = time.perf_counter()
        images, targets = next(it)
        t1 = time.perf_counter()
        x = images.contiguous(memory_format=torch.channels_last) if run["cl"] else images
        with autocast(run["prec"], "cpu"):
            loss, _ = run["module"](x, targets)
        run["opt"].zero_grad(set_to_none=True)
        loss.backward()
        run["opt"].step()
        t2 = time.perf_counter()
        if i >= 2:  # the first batches include the workers' start-up
            waits.append(t1 - t0)
            steps_t.append(t2 - t1)
    return {
        "wait_ms": 1e3 * statistics.mean(waits),
        "wait_median_ms": 1e3 * statistics.median(waits),
        "step_ms": 1e3 * statistics.mean(steps_t),
        "fraction": sum(waits) / max(sum(steps_t), 1e-9),
    }


if __name__ == "__main__":
    main()
