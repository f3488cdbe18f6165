"""GPU readiness check (issue 15): compiled Triton kernel tests, Triton vs torch at real model shapes, faiss-gpu
at 1e6 keys, sized SmolVLM2 ingest and ask on CUDA; writes gpu_check.json and gpu_check.md. Run gpu_check.sh.

Each part runs in its own process under what is left of the time budget: a slow or hung part is stopped and
recorded without losing the others, and each part starts with the GPU's memory free.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Fixed-cost parts first; the model runs take whatever budget is left.
PARTS = {
    "tests": "the kernel tests with compiled Triton against the torch references (TRITON_INTERPRET=0 pytest -m gpu)",
    "kernels": "Triton vs torch ms for pooling and cross-attention at SmolVLM2 and Qwen2.5-VL shapes",
    "faiss": "exact top-10 search over 1e6 keys of 384 dims: faiss-gpu vs faiss on the CPU",
    "models": "sized SmolVLM2-256M and 2.2B: ingest a generated 10-minute clip, ask over 1 h of memory",
}
NO_CUDA_EXIT = 3
MIN_PART_SECONDS = 10  # a part started with less left could not get past its imports and warm-up
# Answerer-space tokens of one 4-s clip at 1 fps, from the published configs:
# (model, time steps T, grid h, grid w, width D).
REAL_SHAPES = [
    ("smolvlm2-256m", 4, 8, 8, 576),    # 512-px image, 16-px patches = 32x32, pixel shuffle 4 -> 8x8
    ("smolvlm2-2.2b", 4, 9, 9, 2048),   # 384-px image, 14-px patches = 27x27, pixel shuffle 3 -> 9x9
    ("qwen2.5-vl-7b", 2, 9, 16, 3584),  # 448x252 frame: 16x9 merged patches; 2 frames per temporal patch
]
QUICK_SHAPES = [("tiny", 2, 4, 4, 64)]
CLIPS = 150  # a 10-minute video in 4-s clips: what one batched encoder call sees
# (models, clip seconds, memory minutes, caption tokens, answer tokens); "tiny" is the tiny preset.
MODEL_PLANS = {"full": (("smolvlm2-256m", "smolvlm2-2.2b"), 600, 60, 32, 16), "quick": (("tiny",), 20, 2, 4, 4)}


def build_parser() -> argparse.ArgumentParser:
    parts = "\n".join(f"  {name:8} {what}" for name, what in PARTS.items())
    p = argparse.ArgumentParser(
        prog="benchmarks/gpu_check.sh", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check longwatch on one CUDA GPU in a fixed time budget and write gpu_check.json and "
                    "gpu_check.md to --out. Installs and downloads nothing: run `scripts/setup.sh --dev` and "
                    "`.venv/bin/pip install -e '.[gpu]'` first.",
        epilog=f"parts, run in this order:\n{parts}\n\nexit codes: 0 every part that ran passed; 1 a part failed; "
               f"2 bad arguments; {NO_CUDA_EXIT} no CUDA device (and no --allow-cpu)")
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json, gpu_check.md and logs")
    p.add_argument("--quick", action="store_true", help="tiny shapes and models: a smoke test of the plumbing")
    p.add_argument("--skip", default="", help=f"comma list of parts not to run: {','.join(PARTS)}")
    p.add_argument("--budget-seconds", type=float, default=480.0,
                   help="stop cleanly after this many seconds and record what was not run (default 480)")
    p.add_argument("--allow-cpu", action="store_true",
                   help="without a CUDA device, run the --quick path on the CPU (tests the plumbing only)")
    # One part in a child process (what the orchestrator starts); not for people.
    p.add_argument("--run-part", choices=list(PARTS), help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if unknown := args.skip - set(PARTS):
        parser.error(f"--skip: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    if args.budget_seconds <= 0:
        parser.error(f"--budget-seconds must be > 0, got {args.budget_seconds:g}")
    return args


# --- the orchestrator ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_part:
        return run_part(args)
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print("gpu_check: no CUDA device visible to torch (torch.cuda.is_available() is False); nothing was run. "
              "Run this on a machine with an NVIDIA GPU and a CUDA build of torch, or pass --allow-cpu to test "
              "the plumbing with the --quick path on the CPU.", file=sys.stderr)
        return NO_CUDA_EXIT
    quick = args.quick or not cuda
    args.out.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(timezone.utc), time.monotonic()
    report = {"started": started.isoformat(timespec="seconds"), "argv": sys.argv[1:] if argv is None else argv,
              "quick": quick, "budget_seconds": args.budget_seconds, "environment": environment(torch), "parts": {}}
    for part in PARTS:
        left = args.budget_seconds - (time.monotonic() - t0)
        if part in args.skip:
            report["parts"][part] = {"status": "skipped", "reason": "--skip"}
        elif left < MIN_PART_SECONDS:
            report["parts"][part] = {"status": "not_run", "reason": f"the {args.budget_seconds:g}-s budget was "
                                     "spent before it could start"}
        else:
            print(f"gpu_check: {part} ({left:.0f} s of budget left)", file=sys.stderr, flush=True)
            report["parts"][part] = run_child(part, args.out, quick, left)
    report["elapsed_seconds"] = round(time.monotonic() - t0, 1)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    table = markdown(report)
    (args.out / "gpu_check.md").write_text(table)
    print(table)
    return 1 if any(p["status"] == "failed" for p in report["parts"].values()) else 0


def environment(torch) -> dict:
    versions = {}
    for dist in ("torch", "triton", "faiss-gpu-cu12", "faiss-gpu", "faiss-cpu", "transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    cuda = torch.cuda.is_available()
    return {"device": torch.cuda.get_device_name() if cuda else "cpu (--allow-cpu)",
            "cuda": torch.version.cuda if cuda else None, "python": sys.version.split()[0], "packages": versions}


def run_child(part: str, out: Path, quick: bool, seconds: float) -> dict:
    """Run one part in a child process for at most `seconds`; its result, or why there is none."""
    result_file, log = out / f"part-{part}.json", out / f"part-{part}.log"
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "longwatch.benchmarks.gpu_check", "--out", str(out), "--run-part", part,
           "--deadline", str(time.time() + seconds), *(["--quick"] if quick else [])]
    with open(log, "w") as sink:
        # Own process group: a stop at the budget also ends what the part started (pytest, ffmpeg). Compiled
        # Triton everywhere: an inherited TRITON_INTERPRET=1 would time and test the interpreter.
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONSAFEPATH": "1", "TRITON_INTERPRET": "0"})
        try:
            rc = proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            if result_file.exists():  # a part that saves as it goes keeps what it finished
                return {**json.loads(result_file.read_text()), "status": "partial",
                        "reason": f"stopped at the budget; results cover what finished before; log: {log.name}"}
            return {"status": "not_run", "reason": f"stopped at the budget before it finished; log: {log.name}"}
    kept = json.loads(result_file.read_text()) if result_file.exists() else {}  # what finished before a crash
    if rc == 0 and kept:
        return kept
    tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    return {**kept, "status": "failed", "reason": f"the {part} process exited with code {rc}: {tail}",
            "log": log.name}


def run_part(args: argparse.Namespace) -> int:
    deadline = args.deadline or time.time() + args.budget_seconds
    result = {"tests": part_tests, "kernels": part_kernels, "faiss": part_faiss, "models": part_models}[
        args.run_part](args.quick, deadline, args.out)
    save_part(args.out, args.run_part, result)
    return 0


def save_part(out: Path, part: str, result: dict) -> None:
    """Write a part's result whole (a rename), so a stop at the budget never leaves half a file."""
    tmp = out / f"part-{part}.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out / f"part-{part}.json")


# --- the parts, each in its own process ----------------------------------------------------------------------
def _completion(rows: list, not_run: list[str]) -> dict:
    if not not_run:
        return {"status": "ok"}
    return {"status": "partial" if rows else "not_run", "reason": f"the budget ran out before: {', '.join(not_run)}"}


def part_tests(quick: bool, deadline: float, out: Path) -> dict:
    """pytest -m gpu over the kernel tests with the kernels compiled (run_child sets TRITON_INTERPRET=0; conftest
    only sets the interpreter when it is unset). Skips count as not verified: on a GPU every test must pass."""
    if find_spec("pytest") is None:
        return {"status": "unavailable", "reason": "pytest is not installed: run scripts/setup.sh --dev"}
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_kernels_*.py"))
    junit = out / "kernel-tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *files]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              timeout=max(1.0, deadline - time.time() - 2))
    except subprocess.TimeoutExpired:
        return {"status": "not_run", "reason": "stopped at the budget while pytest ran"}
    (out / "kernel-tests.log").write_text(proc.stdout + proc.stderr)
    if not junit.exists():
        return {"status": "failed", "reason": f"pytest exited {proc.returncode} without a report; see kernel-tests.log"}
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    counts = {"passed": total - skipped - failed, "failed": failed, "skipped": skipped,
              "command": "TRITON_INTERPRET=0 python -m pytest -m gpu " + " ".join(files)}
    if failed or proc.returncode not in (0, 5) or total == 0:
        return {"status": "failed", "reason": "see kernel-tests.log" if total else "no gpu tests collected", **counts}
    if skipped:
        why = {s.get("message", "") for s in suite.iter("skipped")}
        return {"status": "unavailable", "reason": "skipped: " + "; ".join(sorted(why)), **counts}
    return {"status": "ok", **counts}


def part_kernels(quick: bool, deadline: float, out: Path) -> dict:
    """Median ms of the torch and Triton paths on the ops the streaming encoder runs for a 10-minute video."""
    import torch

    from longwatch.benchmarks.kernels import compare
    from longwatch.kernels import cross_attention, pool_spatial, pool_temporal
    from longwatch.pipeline.config import PipelineConfig

    cfg = PipelineConfig()
    cuda = torch.cuda.is_available()
    device, sync = ("cuda", torch.cuda.synchronize) if cuda else ("cpu", None)
    if not cuda:
        torch.set_num_threads(1)  # process CPU time of one thread, as benchmarks/kernels.py measures it
    impls = ("torch", "triton") if cuda else ("torch",)  # the interpreter would time Python, not a kernel
    clips, repeats = (4, 3) if quick else (CLIPS, 15)
    mt, mh, mw = cfg.memory_grid
    rows, not_run = [], []
    for model, T, h, w, D in QUICK_SHAPES if quick else REAL_SHAPES:
        heads = D // 64  # the encoder's 64-dim heads
        for dtype in (torch.float32, torch.bfloat16):  # the encoder computes in fp32; bf16 is what GPUs favour
            name = str(dtype).removeprefix("torch.")
            if time.time() > deadline - 5:
                not_run.append(f"{model} {name}")
                continue
            x = torch.randn(clips * T, h, w, D, device=device, dtype=dtype)
            xt = torch.randn(clips, T, mh, mw, D, device=device, dtype=dtype)
            q = torch.randn(clips, heads, mt * mh * mw, 64, device=device, dtype=dtype)
            kv = torch.randn(clips, heads, T * h * w, 64, device=device, dtype=dtype)
            lens = torch.full((clips,), T * h * w, device=device)
            ops = {
                f"pool_spatial {clips * T}x({h}x{w})x{D} -> {cfg.detail_hw}":
                    lambda impl: pool_spatial(x, cfg.detail_hw, impl=impl),
                f"pool_temporal {clips}x{T}x({mh}x{mw})x{D} -> {mt}": lambda impl: pool_temporal(xt, mt, impl=impl),
                f"cross_attention {clips} clips x {heads} heads, {q.shape[2]} q x {T * h * w} keys, lse":
                    lambda impl: cross_attention(q, kv, kv, kv_lens=lens, impl=impl, return_lse=True),
            }
            for op, fn in ops.items():
                # Warm-up apart from the timing: compare() would count Triton's compile as a slow first call.
                outs = {impl: fn(impl) for impl in impls}
                ms = compare({impl: (lambda impl=impl: fn(impl)) for impl in impls}, repeats, sync)
                first = {impl: (o[0] if isinstance(o, tuple) else o).float() for impl, o in outs.items()}  # not lse
                diff = (first["triton"] - first["torch"]).abs().max().item() if cuda else None
                rows.append({"model": model, "op": op, "dtype": name, "torch_ms": ms["torch"],
                             "triton_ms": ms.get("triton"), "max_abs_diff": diff})
    return {**_completion(rows, not_run), "device": device, "repeats": repeats, "rows": rows, "not_run": not_run,
            "note": "" if cuda else "no CUDA device: torch path only, in process CPU time"}


def part_faiss(quick: bool, deadline: float, out: Path) -> dict:
    """One VectorIndex (exact, as the bank builds it below its IVF threshold) over clustered unit keys; it
    searches a GPU replica when faiss sees a GPU. faiss.knn on the CPU gives the truth and the CPU times."""
    import faiss
    import numpy as np

    from longwatch.benchmarks.memory import clustered
    from longwatch.memory.index import IndexConfig, VectorIndex, gpu_count

    gpus = gpu_count()
    if gpus == 0 and not quick:
        return {"status": "unavailable", "reason": "faiss sees no GPU: install faiss-gpu (pip install "
                "'longwatch[gpu]', replacing faiss-cpu) and check nvidia-smi"}
    n, d, nq = (10_000, 64, 50) if quick else (1_000_000, 384, 200)
    x = clustered(n, d, seed=1, centers=min(4000, n // 10))
    q = clustered(nq, d, seed=2, centers=min(4000, n // 10))
    index = VectorIndex(d, IndexConfig(approx_threshold=10**12))
    build_s = _seconds(lambda: index.build(np.arange(n), x))
    first_s = _seconds(lambda: index.search(q[:1], 10))  # the first search copies the keys to the GPU
    single = [_seconds(lambda row=row: index.search(row[None], 10)) for row in q]  # one query per call, as an ask
    batch_ms = 1e3 * _seconds(lambda: index.search(q, 10))
    cpu_single = [_seconds(lambda row=row: faiss.knn(row[None], x, 10, metric=faiss.METRIC_INNER_PRODUCT))
                  for row in q[:20]]
    cpu_batch_ms = 1e3 * _seconds(lambda: faiss.knn(q, x, 10, metric=faiss.METRIC_INNER_PRODUCT))
    _, ids = index.search(q, 10)
    _, truth = faiss.knn(q, x, 10, metric=faiss.METRIC_INNER_PRODUCT)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), truth.tolist())]))
    return {"status": "ok", "keys": n, "dim": d, "queries": nq, "faiss_gpus": gpus,
            "searched_on": "gpu" if gpus else "cpu", "build_s": build_s, "first_search_s": first_s,
            "p50_ms": 1e3 * float(np.percentile(single, 50)), "p99_ms": 1e3 * float(np.percentile(single, 99)),
            "batch_ms": batch_ms, "cpu_p50_ms": 1e3 * float(np.percentile(cpu_single, 50)),
            "cpu_batch_ms": cpu_batch_ms, "recall_at_10": recall}


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def part_models(quick: bool, deadline: float, out: Path) -> dict:
    """Ingest a generated clip (OCR off: it runs on the CPU whatever the GPU) and ask over an hour of memory
    written as ingest would write it (benchmarks/query.py), per sized model; --quick uses the tiny preset."""
    import gc

    import torch

    from longwatch.benchmarks.query import QUESTIONS, ask_stats, fill_bank, make_video, timed_ask
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.config import PipelineConfig
    from longwatch.pipeline.core import Pipeline
    from longwatch.pipeline.models.registry import load_preset

    if shutil.which("ffmpeg") is None:
        return {"status": "unavailable", "reason": "needs the ffmpeg CLI to generate the clip (scripts/setup.sh)"}
    cuda = torch.cuda.is_available()
    names, clip_s, memory_min, caption_tokens, answer_tokens = MODEL_PLANS["quick" if quick else "full"]
    cfg = PipelineConfig(ocr=False, answer_tokens=answer_tokens, caption_tokens=caption_tokens)
    work = Path(tempfile.mkdtemp(prefix="models-", dir=out))
    rows: list[dict] = []

    def result(not_run: list[str]) -> dict:
        return {**_completion(rows, not_run), "device": "cuda" if cuda else "cpu", "rows": rows, "not_run": not_run,
                "ocr": False, "answer_tokens": answer_tokens, "caption_tokens": caption_tokens}

    try:
        video = make_video(work / "clip.mp4", clip_s)
        for i, name in enumerate(names):
            if time.time() > deadline - 30:
                return result(list(names[i:]))
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            models = load_preset("tiny", home=work) if name == "tiny" else load_preset(f"sized:{name}", svlm=name)
            row = {"model": name, "load_s": time.perf_counter() - t, "clip_seconds": clip_s}
            with MemoryBank(work / f"bank-{name}", durable=False) as bank:
                pipe = Pipeline(bank, models, cfg)
                t = time.perf_counter()
                report = pipe.ingest(str(video), "clip")
                row.update(ingest_s=time.perf_counter() - t, clips=report.clips_added, ingest_timings=report.timings)
                row["x_real_time"] = clip_s / row["ingest_s"]
                fill_bank(bank, "memory", memory_min, models, cfg)
                pipe.ask(QUESTIONS[0], ["memory"])  # warm-up, as benchmarks/query.py does
                stats = ask_stats([timed_ask(pipe, "memory", q) for q in QUESTIONS])
                row.update(memory_minutes=memory_min, ask_s=stats["seconds"], ask_prefill=stats["prefill"])
            if cuda:
                row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
            rows.append(row)
            save_part(out, "models", result(list(names[i + 1:])))  # kept if the budget stops the next model
            del models, pipe
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result([])


# --- the table -----------------------------------------------------------------------------------------------
def _f(v, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def markdown(report: dict) -> str:
    env, parts = report["environment"], report["parts"]
    lines = [f"# gpu_check {report['started']}", "",
             f"Device: {env['device']}; CUDA {env['cuda']}; packages: "
             + ", ".join(f"{k} {v}" for k, v in env["packages"].items())
             + (" — **--quick shapes, not the real ones**" if report["quick"] else ""), "",
             "| part | status | note |", "|---|---|---|"]
    lines += [f"| {name} | {p['status']} | {p.get('reason', '')} |" for name, p in parts.items()]
    if (t := parts["tests"]).get("status") in ("ok", "failed", "unavailable") and "passed" in t:
        lines += ["", f"Kernel tests, compiled Triton: {t['passed']} passed, {t['failed']} failed, "
                      f"{t['skipped']} skipped (`{t['command']}`)"]
    if rows := parts["kernels"].get("rows"):
        lines += ["", f"Kernels on {parts['kernels']['device']}, median ms of {parts['kernels']['repeats']} "
                      "(torch / triton > 1: Triton faster)", "",
                  "| shapes of | op | dtype | torch ms | triton ms | torch / triton | max abs diff |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['op']} | {r['dtype']} | {_f(r['torch_ms'], '.3f')} | "
                  f"{_f(r['triton_ms'], '.3f')} | {_f(r['triton_ms'] and r['torch_ms'] / r['triton_ms'])} | "
                  f"{_f(r['max_abs_diff'], '.1e')} |" for r in rows]
    if (fa := parts["faiss"]).get("status") == "ok":
        lines += ["", f"faiss: {fa['keys']:,} keys x {fa['dim']}, exact top-10, searched on {fa['searched_on']}", "",
                  "| build s | first search s | p50 ms | p99 ms | batch of queries ms | CPU p50 ms | CPU batch ms "
                  "| recall@10 |", "|---|---|---|---|---|---|---|---|",
                  f"| {fa['build_s']:.1f} | {fa['first_search_s']:.2f} | {fa['p50_ms']:.2f} | {fa['p99_ms']:.2f} | "
                  f"{fa['batch_ms']:.1f} | {fa['cpu_p50_ms']:.2f} | {fa['cpu_batch_ms']:.1f} | "
                  f"{fa['recall_at_10']:.3f} |"]
    if rows := parts["models"].get("rows"):
        lines += ["", f"Models on {parts['models']['device']} (OCR off, caption {parts['models']['caption_tokens']} "
                      f"tokens, answer {parts['models']['answer_tokens']} tokens)", "",
                  "| model | load s | ingest s (clip s) | x real time | ask s over memory (min) | prefill tokens "
                  "| peak GPU MiB |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['load_s']:.1f} | {r['ingest_s']:.1f} ({r['clip_seconds']}) | "
                  f"{r['x_real_time']:.2f} | {r['ask_s']:.2f} ({r['memory_minutes']}) | {r['ask_prefill']:.0f} | "
                  f"{_f(r.get('peak_gpu_mib'), '.0f')} |" for r in rows]
    lines += ["", f"Elapsed {report['elapsed_seconds']} s of a {report['budget_seconds']:g}-s budget.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
