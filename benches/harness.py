"""The benchmark harness: the release binary against what a user would run
instead, on the same files, in the same run, alternating, several
repetitions; medians, ratios and peak RSS, printed as the Markdown table the
README shows ("Benchmarks"). Run it with benches/run, which builds the
binary and installs the Python baselines and the S3 server.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINES = ROOT / "benches" / "baselines"
CONTRACTS = ROOT / "sql" / "models" / "sources" / "raw.yml"
DS = "2025-05-25"
FORMATS = {"contacts": "csv", "website_activity": "jsonl", "form_fills": "parquet"}
DATASETS = ["campaigns", "forms", "pages", "contacts", "form_fills", "website_activity"]
# Rows Faker makes per measurement: its rate per row is steady long before.
FAKER_ROWS = 20_000


@dataclass
class Sample:
    seconds: float
    peak_rss_mb: float
    stdout: str


@dataclass
class Result:
    """One row of the table: a piece of work, and each contender's samples."""

    stage: str
    scale_factor: float
    rows: int = 0
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, who: str, sample: Sample) -> None:
        self.samples.setdefault(who, []).append(sample)

    def median(self, who: str) -> float:
        return statistics.median(s.seconds for s in self.samples[who])

    def rss(self, who: str) -> float:
        return max(s.peak_rss_mb for s in self.samples[who])


def measure(cmd: list[str], env: dict[str, str], work: Path) -> Sample:
    """Runs one process; its wall time and its peak RSS (from wait4, so the
    figure is the process's own, not the harness's)."""
    out, err = work / "stdout", work / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 65):
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.read_text()[-2000:]}")
    return Sample(seconds, usage.ru_maxrss / 1024, out.read_text())


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.python = sys.executable
        self.results: list[Result] = []
        self.rows = 0

    def env(self, root: Path, sf: float, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PIPELINE_LANDING_URL=f"file://{root}/landing",
            PIPELINE_LAKE_URL=f"file://{root}/lake",
            PIPELINE_METADATA_URL=f"sqlite://{root}/metadata.db",
            PIPELINE_WAREHOUSE_URL=f"duckdb://{root}/warehouse.duckdb",
            SCALE_FACTOR=str(sf),
            PIPELINE_LOG="warn",
        )
        env.update(extra)
        return env

    def bin(self, *args: str) -> list[str]:
        return [self.args.binary, *args, "--ds", DS]

    def baseline(self, script: str, *args: object) -> list[str]:
        return [self.python, str(BASELINES / script), *map(str, args)]

    def alternate(self, result: Result, contenders: dict[str, list[str]], env, setup=None) -> None:
        """Each contender once per repetition, the order rotated."""
        names = list(contenders)
        for rep in range(self.args.repeats):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for who in order:
                if setup:
                    setup(who)
                result.add(who, measure(contenders[who], env, self.work))
        self.results.append(result)
        print(f"  {result.stage}: " + ", ".join(f"{w} {result.median(w):.2f}s" for w in names), flush=True)

    def scale(self, sf: float) -> None:
        root = self.work / f"sf{sf}"
        env = self.env(root, sf)
        print(f"scale factor {sf}", flush=True)
        generated = [measure(self.bin("generate", d), env, self.work) for d in DATASETS]
        self.rows = sum(json.loads(g.stdout)["rows_out"] for g in generated)
        raw = root / "landing" / "raw-data"
        self.generate(sf, root, env)
        for dataset, ext in FORMATS.items():
            self.validate(sf, root, env, dataset, raw / dataset / f"ds={DS}" / f"{dataset}_{DS}.{ext}")
        for d in DATASETS:
            measure(self.bin("validate", d), env, self.work)
        self.upload(sf, root, env)
        self.load_transform(sf, root, env)
        self.run(sf, root)

    def generate(self, sf: float, root: Path, env) -> None:
        contacts = root / "landing" / "raw-data" / "contacts"
        result = Result("generate contacts", sf)
        faker_rows = FAKER_ROWS if not self.args.smoke else 500
        self.alternate(
            result,
            {
                "binary": self.bin("generate", "contacts", "--force"),
                "faker": self.baseline("faker_contacts.py", faker_rows, self.work / "faker.csv", DS),
            },
            env,
            setup=lambda who: shutil.rmtree(contacts, ignore_errors=True) if who == "binary" else None,
        )
        result.rows = int(json.loads(result.samples["binary"][-1].stdout)["rows_out"])
        result.faker_rows = faker_rows

    def validate(self, sf: float, root: Path, env, dataset: str, raw: Path) -> None:
        result = Result(f"validate {dataset} ({raw.suffix[1:]})", sf)
        out = self.work / "baseline-out"
        contenders = {
            "binary": self.bin("validate", dataset, "--force"),
            "duckdb": self.baseline("duckdb_validate.py", CONTRACTS, dataset, root / "landing", DS, out),
            "polars floor": self.baseline("polars_floor.py", raw, out / "floor.parquet"),
        }
        if raw.stat().st_size <= self.args.pandas_max_mb << 20:
            contenders["pandas"] = self.baseline("pandas_validate.py", CONTRACTS, dataset, raw, DS, out)
        out.mkdir(exist_ok=True)
        self.alternate(result, contenders, env)
        result.rows = int(json.loads(result.samples["binary"][-1].stdout)["rows_in"])
        result.bytes = raw.stat().st_size

    def upload(self, sf: float, root: Path, env) -> None:
        server = S3Server(self.args.s3s_fs, self.work / "s3")
        try:
            result = Result("upload 6 datasets to S3 (s3s-fs)", sf, self.rows)
            landing = root / "landing"
            slices = [p for p in landing.rglob("*.parquet") if "raw-data" not in p.parts]
            result.bytes = sum(p.stat().st_size for p in slices)
            aws = str(Path(self.python).parent / "aws")
            for rep in range(self.args.repeats):
                bucket = server.bucket(f"rep{rep}")
                s3_env = {**env, **server.env(), "PIPELINE_LAKE_URL": f"s3://{bucket}"}
                samples = [measure(self.bin("upload", d), s3_env, self.work) for d in DATASETS]
                result.add("binary", combined(samples))
                cli = [aws, "s3", "cp", "--recursive", "--quiet", "--exclude", "*", "--include", "*-data/*.parquet"]
                cli += ["--exclude", "raw-data/*", str(landing), f"s3://{server.bucket(f'cli{rep}')}"]
                result.add("aws s3 cp", measure(cli, {**env, **server.env()}, self.work))
            self.results.append(result)
            print(f"  {result.stage}: binary {result.median('binary'):.2f}s, aws {result.median('aws s3 cp'):.2f}s")
        finally:
            server.stop()

    def load_transform(self, sf: float, root: Path, env) -> None:
        result = Result("load 6 datasets + transform", sf, self.rows)
        for d in DATASETS:
            measure(self.bin("upload", d), env, self.work)
        for rep in range(self.args.repeats):
            warehouse = root / f"warehouse{rep}.duckdb"
            wh_env = {**env, "PIPELINE_WAREHOUSE_URL": f"duckdb://{warehouse}"}
            samples = [measure([self.args.binary, "setup"], wh_env, self.work)]
            samples += [measure(self.bin("load", d), wh_env, self.work) for d in DATASETS]
            samples.append(measure(self.bin("transform"), wh_env, self.work))
            result.add("binary", combined(samples))
            warehouse.unlink()
        self.results.append(result)
        print(f"  {result.stage}: binary {result.median('binary'):.2f}s")

    def run(self, sf: float, _root: Path) -> None:
        result = Result("run --ds (generate, validate, upload, load, transform)", sf, self.rows)
        for rep in range(self.args.repeats):
            fresh = self.work / f"run-sf{sf}-{rep}"
            sample = measure(self.bin("run"), self.env(fresh, sf), self.work)
            result.add("binary", sample)
            result.timings = task_timings(sample.stdout)
            shutil.rmtree(fresh)
        self.results.append(result)
        print(f"  {result.stage}: binary {result.median('binary'):.2f}s, {result.rss('binary'):.0f} MB")

    def memory(self, sf: float) -> None:
        """Peak RSS of validate on a big website_activity file, at two limits."""
        root = self.work / f"memory-sf{sf}"
        env = self.env(root, sf)
        print(f"memory: scale factor {sf}", flush=True)
        for d in ["campaigns", "pages", "contacts", "website_activity"]:
            measure(self.bin("generate", d), env, self.work)
        raw = root / "landing/raw-data/website_activity" / f"ds={DS}" / f"website_activity_{DS}.jsonl"
        result = Result("validate website_activity (jsonl), memory", sf)
        result.bytes = raw.stat().st_size
        for limit in ["4GiB", "1GiB"]:
            sample = measure(
                self.bin("validate", "website_activity", "--force", "--memory-limit", limit), env, self.work
            )
            result.add(f"binary --memory-limit {limit}", sample)
            result.rows = int(json.loads(sample.stdout)["rows_in"])
        out = self.work / "baseline-out"
        out.mkdir(exist_ok=True)
        duckdb = self.baseline("duckdb_validate.py", CONTRACTS, "website_activity", root / "landing", DS, out)
        result.add("duckdb", measure(duckdb, env, self.work))
        self.results.append(result)
        shutil.rmtree(root)
        print("  " + ", ".join(f"{w} {result.median(w):.1f}s {result.rss(w):.0f} MB" for w in result.samples))


def combined(samples: list[Sample]) -> Sample:
    """Several processes one after the other, as one piece of work."""
    return Sample(sum(s.seconds for s in samples), max(s.peak_rss_mb for s in samples), "")


def task_timings(stdout: str) -> str:
    """Where `run`'s time went, task by task, from its metrics."""
    tasks = json.loads(stdout.strip().splitlines()[-1]).get("tasks", [])
    totals: dict[str, float] = {}
    for t in tasks:
        totals[t["task"]] = totals.get(t["task"], 0) + t.get("duration_ms", 0) / 1000
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1]))


class S3Server:
    """s3s-fs on a free port of 127.0.0.1, serving a temp directory."""

    def __init__(self, binary: str, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [binary, "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--access-key", "bench", "--secret-key", "bench-secret", str(root)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        sys.exit("s3s-fs did not start")

    def bucket(self, name: str) -> str:
        (self.root / name).mkdir()
        return name

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def table(results: list[Result], args: argparse.Namespace) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        >> 20
    )
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}), {mem} GiB, {platform.system()} {platform.release()}.",
        f"Command: `{' '.join(args.command)}`; medians of {args.repeats}, peak RSS is the largest.",
        "",
        "| work | scale factor | rows | binary s | binary peak MB "
        "| alternative | alt s | alt peak MB | binary speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        binary = next(w for w in r.samples if w.startswith("binary"))
        mine = [r.stage, f"{r.scale_factor:g}", f"{r.rows:,}", f"{r.median(binary):.2f}", f"{r.rss(binary):.0f}"]
        others = [w for w in r.samples if w != binary]
        if not others:
            note = getattr(r, "timings", "")
            lines.append("| " + " | ".join(mine + [note and f"per task (s): {note}", "", "", ""]) + " |")
        for i, who in enumerate(others):
            if who == "faker":
                speedup = (r.median(who) / r.faker_rows) / (r.median(binary) / max(r.rows, 1))
                name, ratio = f"Faker row by row ({r.faker_rows:,} rows)", f"{speedup:,.0f}x per row"
            else:
                name, ratio = who, f"{r.median(who) / r.median(binary):.2f}x"
            first = mine if i == 0 else [""] * len(mine)
            lines.append("| " + " | ".join(first + [name, f"{r.median(who):.2f}", f"{r.rss(who):.0f}", ratio]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--s3s-fs", required=True)
    parser.add_argument("--scale-factors", default="1,10,100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-scale-factor", type=float, default=0, help="0: no memory stage")
    parser.add_argument("--pandas-max-mb", type=int, default=512, help="skip pandas on larger files")
    parser.add_argument("--smoke", action="store_true", help="tiny data, one repetition")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    args.command = os.environ.get("BENCH_COMMAND", "benches/harness.py").split()
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        for sf in [float(s) for s in args.scale_factors.split(",")]:
            bench.scale(sf)
            shutil.rmtree(Path(tmp) / f"sf{sf}")
        if args.memory_scale_factor:
            bench.memory(args.memory_scale_factor)
        print()
        print(table(bench.results, args))
        if args.json:
            Path(args.json).write_text(json.dumps([r.__dict__ for r in bench.results], default=lambda o: o.__dict__))


if __name__ == "__main__":
    main()
