"""Run every benchmark runner as its own process and report a side-by-side table.

    python benchmarks/run.py [--cases 1,2,3] [--skip-peers] [--reuse-peers] [--peers-only]
                             [--peer-python nannyml=PATH --peer-python evidently=PATH ...]

driftd, the scipy loop and the numpy sort floor run with driftd's interpreter (this one, or
``--driftd-python``); Evidently, NannyML, alibi-detect and Frouros with the peers venv
(``.peers/bin/python``, or ``--peers-python``), or each with its own (``--peer-python LIBRARY=PATH``:
Evidently's and NannyML's pins clash), when it exists. Each runner prints one JSON line;
the lines are collected into ``benchmarks/results/latest.json`` (peers alone also into
``benchmarks/results/peers.json``, which ``--reuse-peers`` reads instead of re-running them), and
a Markdown table with the ratios and the issue's targets is printed (``--markdown FILE`` also
writes it to a file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
RUNNERS = BENCH_DIR / "runners"
CASE1 = ["ks", "psi", "jensen_shannon", "wasserstein", "chi_square"]
#: A runner that takes longer than this is stopped and reported as "> N s (stopped)".
DEFAULT_TIMEOUT_S = 300


@dataclass(frozen=True)
class Job:
    """One runner invocation."""

    library: str
    script: str
    case: int
    measure: str
    peer: bool
    repeat: int = 1
    warmup: int = 0

    def command(self, python: str) -> list[str]:
        return [python, str(RUNNERS / self.script), "--case", str(self.case), "--measure", self.measure,
                "--repeat", str(self.repeat), "--warmup", str(self.warmup)]


def plan(cases: set[int]) -> list[Job]:
    """Every runner invocation for the chosen cases, driftd's side first."""
    jobs: list[Job] = []
    if 1 in cases:
        jobs.append(Job("numpy_sort_floor", "numpy_sort_floor.py", 1, "sort", False, repeat=5, warmup=1))
        jobs += [Job("driftd", "driftd.py", 1, m, False, repeat=5, warmup=1)
                 for m in [*CASE1, "all", "compare", "compare_ks_chi2", *(f"compare_{name}" for name in CASE1)]]
        jobs += [Job("scipy_loop", "scipy_loop.py", 1, m, False) for m in [*CASE1, "all"]]
        jobs += [Job("evidently", "evidently_runner.py", 1, m, True) for m in CASE1]
        jobs += [Job("nannyml", "nannyml_runner.py", 1, m, True) for m in ("ks", "jensen_shannon", "wasserstein",
                                                                            "chi_square")]
        jobs += [Job("nannyml", "nannyml_runner.py", 1, m, True, repeat=3, warmup=1) for m in ("ks_chi2", "ks_chi2_fit")]
        jobs += [Job("alibi_detect", "alibi_detect_runner.py", 1, m, True) for m in ("ks", "chi_square")]
        jobs.append(Job("frouros", "frouros_runner.py", 1, "ks", True))
    for case in sorted(cases & {2, 3}):
        repeat = 3 if case == 2 else 1
        jobs += [Job("driftd", "driftd.py", case, m, False, repeat=repeat, warmup=1 if case == 2 else 0)
                 for m in ("mmd_numpy", "mmd_torch")]
        jobs.append(Job("alibi_detect", "alibi_detect_runner.py", case, "mmd", True))
        if case == 2:
            jobs.append(Job("alibi_detect", "alibi_detect_runner.py", case, "mmd_default", True))
        jobs.append(Job("frouros", "frouros_runner.py", case, "mmd", True))
    return jobs


def run_job(job: Job, python: str, timeout_s: int) -> dict[str, Any]:
    """Run one runner; its JSON line, or a record saying why there is none."""
    started = time.perf_counter()
    try:
        done = subprocess.run(job.command(python), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"library": job.library, "case": job.case, "measure": job.measure, "seconds": None,
                "status": "timeout", "notes": f"> {timeout_s} s (stopped)"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    error = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"library": job.library, "case": job.case, "measure": job.measure, "seconds": None, "status": "error",
            "notes": f"exit {done.returncode} after {time.perf_counter() - started:.1f} s: {error[:300]}"}


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if value < 100 else f"{value:.0f}"


def _seconds(record: dict[str, Any]) -> str:
    if record.get("status") == "timeout":
        return record["notes"]
    if record.get("seconds") is None:
        return record.get("status", "-")
    return _fmt(record["seconds"])


def _find(records: list[dict[str, Any]], library: str, case: int, measure: str) -> dict[str, Any] | None:
    return next((r for r in records if (r["library"], r["case"], r["measure"]) == (library, case, measure)), None)


def _driftd_for(record: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The driftd record a row is compared with."""
    if record["case"] == 1:
        measure = "all" if record["measure"] in ("all", "sort") else record["measure"]
        return _find(records, "driftd", 1, measure)
    return _find(records, "driftd", record["case"], "mmd_numpy")


def ratio_text(record: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """"<library> / driftd = N.Nx" for a peer row."""
    base = _driftd_for(record, records)
    if record["library"] == "driftd" or not base or not base.get("seconds"):
        return ""
    if record["library"] == "numpy_sort_floor":
        return f"driftd all / sort = {base['seconds'] / record['seconds']:.1f}x" if record.get("seconds") else ""
    label = f"{record['library']} / driftd {base['measure']}"
    if record.get("status") == "timeout" and base.get("seconds"):
        return f"{label} > {float(record['notes'].split()[1]) / base['seconds']:.0f}x"
    if not record.get("seconds"):
        return ""
    text = f"{label} = {record['seconds'] / base['seconds']:.1f}x"
    if record.get("cpu_seconds") and base.get("cpu_seconds"):
        text += f" (CPU {record['cpu_seconds'] / base['cpu_seconds']:.1f}x)"
    return text


def table(records: list[dict[str, Any]]) -> str:
    """The Markdown table of every record."""
    lines = ["| library | case | measure | seconds (wall) | CPU s | peak MiB (+during call) | p-value | ratio vs driftd |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"driftd": 0, "numpy_sort_floor": 1, "scipy_loop": 2, "evidently": 3, "nannyml": 4, "alibi_detect": 5,
             "frouros": 6}
    for r in sorted(records, key=lambda r: (r["case"], order.get(r["library"], 9), r["measure"])):
        peak = "-" if r.get("peak_rss_mib") is None else f"{r['peak_rss_mib']:.0f} (+{r.get('peak_delta_mib') or 0:.0f})"
        if r.get("children_peak_rss_mib"):
            peak += f"; children {r['children_peak_rss_mib']:.0f}"
        p_value = "-" if r.get("p_value") is None else f"{r['p_value']:.4f}"
        lines.append(f"| {r['library']} | {r['case']} | {r['measure']} | {_seconds(r)} | {_fmt(r.get('cpu_seconds'))} "
                     f"| {peak} | {p_value} | {ratio_text(r, records)} |")
    return "\n".join(lines)


def _check(label: str, ok: bool | None, detail: str) -> str:
    mark = "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return f"- [{mark}] {label}: {detail}"


def _speedup(records: list[dict[str, Any]], library: str, case: int, measures: list[str], target: float) -> str:
    """Check that driftd is ``target`` times faster than ``library`` on each measure both have."""
    parts, oks = [], []
    for measure in measures:
        peer, ours = _find(records, library, case, measure), _find(records, "driftd", case, measure)
        if not peer or not ours or not ours.get("seconds") or not peer.get("seconds"):
            continue
        ratio = peer["seconds"] / ours["seconds"]
        oks.append(ratio >= target)
        parts.append(f"{measure} {ratio:.1f}x")
    if not parts:
        return _check(f"case {case}: >= {target:g}x faster than {library}", None, "not measured")
    return _check(f"case {case}: >= {target:g}x faster than {library}", all(oks), ", ".join(parts))


def _compare_checks(records: list[dict[str, Any]], floor: dict[str, Any] | None) -> list[str]:
    """Issue 15: ``compare()`` (summary included) against the scipy loop and the sort floor."""
    ours, loop = _find(records, "driftd", 1, "compare"), _find(records, "scipy_loop", 1, "all")
    if not ours or not ours.get("seconds"):
        return [_check("case 1: compare()", None, "not measured")]
    out = []
    if loop and loop.get("seconds"):
        ratio = loop["seconds"] / ours["seconds"]
        out.append(_check("case 1: compare() >= 5x faster than scipy_loop", ratio >= 5,
                          f"{loop['seconds']:.3f} s / {ours['seconds']:.3f} s = {ratio:.1f}x"))
        if loop.get("peak_delta_mib") is not None and ours.get("peak_delta_mib") is not None:
            out.append(f"  (memory added during the call: compare() {ours['peak_delta_mib']} MiB, "
                       f"scipy_loop {loop['peak_delta_mib']} MiB)")
    out.extend(_evidently_checks(records, ours))
    nanny, pair = _find(records, "nannyml", 1, "ks_chi2"), _find(records, "driftd", 1, "compare_ks_chi2")
    together = _find(records, "nannyml", 1, "ks_chi2_fit")
    if together and pair and together.get("seconds") and pair.get("seconds"):
        ratio = together["seconds"] / pair["seconds"]
        detail = (f"fit + calculate {together['seconds']:.3f} s / {pair['seconds']:.3f} s = {ratio:.1f}x "
                  f"(CPU {together['cpu_seconds']:.3f} s / {pair['cpu_seconds']:.3f} s = "
                  f"{together['cpu_seconds'] / pair['cpu_seconds']:.1f}x)")
        if nanny and nanny.get("seconds"):
            detail += (f"; calculate alone (fit untimed) {nanny['seconds']:.3f} s = "
                       f"{nanny['seconds'] / pair['seconds']:.1f}x")
        out.append(_check("case 1: compare() >= 3x faster than nannyml (KS + chi2, one chunk)", ratio >= 3, detail))
    elif nanny and pair and nanny.get("seconds") and pair.get("seconds"):
        whole = nanny["seconds"] + (nanny.get("setup_seconds") or 0.0)
        out.append(_check("case 1: compare() >= 3x faster than nannyml (KS + chi2, one chunk)",
                          whole / pair["seconds"] >= 3,
                          f"fit + calculate {whole:.3f} s / {pair['seconds']:.3f} s = {whole / pair['seconds']:.1f}x "
                          f"(calculate alone {nanny['seconds'] / pair['seconds']:.1f}x)"))
    if floor and floor.get("seconds"):
        ratio = ours["seconds"] / floor["seconds"]
        cpu = (f" (CPU {ours['cpu_seconds']:.3f} s / {floor['cpu_seconds']:.3f} s = "
               f"{ours['cpu_seconds'] / floor['cpu_seconds']:.1f}x)" if ours.get("cpu_seconds") else "")
        out.append(_check("case 1: compare() within 4x of sorting the window", ratio <= 4,
                          f"{ours['seconds']:.3f} s / {floor['seconds']:.3f} s = {ratio:.1f}x{cpu}"))
    return out


def _evidently_checks(records: list[dict[str, Any]], ours: dict[str, Any]) -> list[str]:
    """Issue 15: ``compare()`` with each measure against Evidently's report with that stattest (>= 20x), and
    ``compare()`` with all five against Evidently's five reports together."""
    parts, oks, total = [], [], 0.0
    for measure in CASE1:
        peer, mine = _find(records, "evidently", 1, measure), _find(records, "driftd", 1, f"compare_{measure}")
        if not peer or not peer.get("seconds"):
            return [_check("case 1: compare() >= 20x faster than evidently", None,
                           f"evidently {measure} not measured")]
        total += peer["seconds"]
        if mine and mine.get("seconds"):
            oks.append(peer["seconds"] / mine["seconds"] >= 20)
            parts.append(f"{measure} {peer['seconds']:.2f} s / {mine['seconds']:.3f} s = "
                         f"{peer['seconds'] / mine['seconds']:.0f}x")
    parts.append(f"all five: {total:.1f} s (five reports) / {ours['seconds']:.3f} s = {total / ours['seconds']:.0f}x")
    oks.append(total / ours["seconds"] >= 20)
    return [_check("case 1: compare() >= 20x faster than evidently (per stattest, and all five)", all(oks),
                   "; ".join(parts))]


def checks(records: list[dict[str, Any]]) -> str:
    """The issue's targets, checked against the records."""
    out = []
    cases = {r["case"] for r in records}
    if 1 in cases:
        out.append(_speedup(records, "scipy_loop", 1, ["all"], 5))
        out.append(_speedup(records, "evidently", 1, CASE1, 20))
        out.append(_speedup(records, "nannyml", 1, CASE1, 4))
        floor, ours = _find(records, "numpy_sort_floor", 1, "sort"), _find(records, "driftd", 1, "all")
        if floor and ours and floor.get("seconds") and ours.get("seconds"):
            ratio = ours["seconds"] / floor["seconds"]
            out.append(_check("case 1: driftd (all five measures) within 3x of sorting the window", ratio <= 3,
                              f"{ours['seconds']:.3f} s / {floor['seconds']:.3f} s = {ratio:.1f}x"))
            ks = _find(records, "driftd", 1, "ks")
            if ks and ks.get("seconds"):
                out.append(f"  (KS alone: {ks['seconds'] / floor['seconds']:.1f}x the sort)")
        else:
            out.append(_check("case 1: within 3x of the sort floor", None, "not measured"))
        out.extend(_compare_checks(records, floor))
    if 2 in cases:
        for backend in ("mmd_numpy", "mmd_torch"):
            ours, peer = _find(records, "driftd", 2, backend), _find(records, "alibi_detect", 2, "mmd")
            if ours and peer and ours.get("seconds") and peer.get("seconds"):
                ratio = peer["seconds"] / ours["seconds"]
                out.append(_check(f"case 2: >= 10x faster than alibi-detect PyTorch (driftd {backend})", ratio >= 10,
                                  f"{ratio:.1f}x"))
        p_values = {f"{r['library']} {r['measure']}": r["p_value"] for r in records
                    if r["case"] == 2 and r.get("p_value") is not None}
        if p_values:
            # Two independent 100-permutation estimates of the same p differ by about
            # sqrt(2 p (1 - p) / 100); allow three of those.
            p_mid = sum(p_values.values()) / len(p_values)
            noise = 3 * (2 * p_mid * (1 - p_mid) / 100) ** 0.5
            listed = ", ".join(f"{name} {p:.4f}" for name, p in p_values.items() if not name.endswith("default"))
            same_kernel = [p for name, p in p_values.items() if not name.endswith("default")]
            ok = (max(same_kernel) - min(same_kernel)) <= noise if len(same_kernel) > 1 else None
            out.append(_check("case 2: p-values agree within permutation noise (same kernel)", ok,
                              f"{listed}; 3-sigma noise of the difference {noise:.3f}"))
    if 3 in cases:
        for backend in ("mmd_numpy", "mmd_torch"):
            ours = _find(records, "driftd", 3, backend)
            if ours and ours.get("seconds"):
                ok = ours["seconds"] < 20 and (ours.get("peak_rss_mib") or 0) < 4096
                out.append(_check(f"case 3: driftd {backend} under 20 s and 4 GiB", ok,
                                  f"{ours['seconds']:.2f} s, peak {ours.get('peak_rss_mib')} MiB"))
            else:
                out.append(_check(f"case 3: driftd {backend} under 20 s and 4 GiB", None,
                                  ours["notes"] if ours else "not measured"))
    return "\n".join(out)


def main() -> None:
    """Run, collect, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="1,2,3", help="comma-separated case numbers")
    parser.add_argument("--skip-peers", action="store_true", help="run only driftd, the scipy loop and the sort floor")
    parser.add_argument("--reuse-peers", action="store_true",
                        help="take the peers' records from benchmarks/results/peers.json instead of running them")
    parser.add_argument("--peers-only", action="store_true", help="run only the peers (writes peers.json)")
    parser.add_argument("--driftd-python", default=sys.executable, help="interpreter of driftd's venv")
    parser.add_argument("--peers-python", default=str(REPO_ROOT / ".peers" / "bin" / "python"),
                        help="interpreter of the peers venv")
    parser.add_argument("--peer-python", action="append", default=[], metavar="LIBRARY=PATH",
                        help="interpreter for one peer library (repeatable; peers whose pins clash get a venv each, "
                             "e.g. nannyml=/path/a/bin/python evidently=/path/b/bin/python)")
    parser.add_argument("--libraries", help="comma-separated libraries to run (default: all)")
    parser.add_argument("--measures", help="comma-separated measures to run (default: all)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, help="seconds before a runner is stopped")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    cases = {int(part) for part in args.cases.split(",")}
    # Generate the data once, before any runner, so none of them times the generation.
    subprocess.run([args.driftd_python, str(BENCH_DIR / "data.py"), "--cases", args.cases], check=True,
                   stdout=subprocess.DEVNULL)
    interpreters = dict(item.split("=", 1) for item in args.peer_python)
    peers_available = Path(args.peers_python).exists() or any(Path(path).exists() for path in interpreters.values())
    run_peers = not (args.skip_peers or args.reuse_peers) and peers_available
    records: list[dict[str, Any]] = []
    peer_records: list[dict[str, Any]] = []
    for job in plan(cases):
        if job.peer and not run_peers:
            continue
        if args.peers_only and not job.peer:
            continue
        if args.libraries and job.library not in args.libraries.split(","):
            continue
        if args.measures and job.measure not in args.measures.split(","):
            continue
        python = interpreters.get(job.library, args.peers_python) if job.peer else args.driftd_python
        if job.peer and not Path(python).exists():
            continue
        print(f"... {job.library} case {job.case} {job.measure}", file=sys.stderr, flush=True)
        record = run_job(job, python, args.timeout)
        print(f"    {_seconds(record)}{' s' if record.get('seconds') else ''}  {record.get('notes', '')}",
              file=sys.stderr, flush=True)
        (peer_records if job.peer else records).append(record)

    RESULTS_DIR.mkdir(exist_ok=True)
    peers_file = RESULTS_DIR / "peers.json"
    if args.reuse_peers and peers_file.exists():
        peer_records = [r for r in json.loads(peers_file.read_text())["records"] if r["case"] in cases]
    elif peer_records:
        # New records replace the stored ones of the same library, case and measure.
        stored = json.loads(peers_file.read_text())["records"] if peers_file.exists() else []
        fresh = {(r["library"], r["case"], r["measure"]) for r in peer_records}
        _write(peers_file, [r for r in stored if (r["library"], r["case"], r["measure"]) not in fresh] + peer_records)
    if not peers_available and not args.skip_peers:
        print(f"peers venv not found at {args.peers_python}: peers skipped", file=sys.stderr)
    all_records = records + peer_records
    if not args.peers_only:
        _write(RESULTS_DIR / "latest.json", all_records)
    report = f"{table(all_records)}\n\nTargets (issues 3 and 15):\n{checks(all_records)}\n"
    print(report)
    if args.markdown:
        args.markdown.write_text(report)


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records with when and where they were taken (atomically)."""
    document = {"taken": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": f"{platform.machine()}, "
                f"{os.cpu_count()} cpu, Python {platform.python_version()}", "records": records}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
