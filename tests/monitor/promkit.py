"""A real Prometheus stack on loopback for tests and benchmarks: Debian's prometheus,
prometheus-node-exporter (textfile collector) and prometheus-pushgateway.

Each daemon gets a random 127.0.0.1 port and its own config and data directory under ``root``;
``Stack.stop()`` (or leaving the ``with`` block) terminates them. Prometheus scrapes and evaluates
every ``interval_s`` so that a test sees a series or an alert within seconds.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

EXES = {
    "prometheus": "prometheus",
    "node": "prometheus-node-exporter",
    "pushgateway": "prometheus-pushgateway",
}


def exe(name: str) -> str:
    path = shutil.which(EXES[name]) or f"/usr/bin/{EXES[name]}"
    if not Path(path).exists():
        raise RuntimeError(f"{EXES[name]} is not installed: run scripts/setup.sh")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout_s} s")


@dataclass
class Stack:
    root: Path
    rules: str = ""
    interval_s: float = 1.0
    pushgateway: bool = True
    # More scrape jobs (Prometheus config dicts), e.g. a benchmark's simulated site boxes.
    extra_jobs: list[dict[str, Any]] = field(default_factory=list)
    # node_exporter reads *.prom files from here (the monitor's --prometheus target).
    textfile_dir: Path = field(init=False)
    urls: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.textfile_dir = self.root / "textfile"

    def start(self) -> Stack:
        self.textfile_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, args: list[str], ready: str) -> None:
        log = (self.root / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [exe(name), *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        self.procs[name] = proc
        _wait_ready(self.urls[name] + ready, proc, EXES[name])

    def _start_all(self) -> None:
        port = free_port()
        self.urls["node"] = f"http://127.0.0.1:{port}"
        self._spawn(
            "node",
            [
                f"--web.listen-address=127.0.0.1:{port}",
                # Only the textfile collector: nothing about this machine's own interfaces.
                "--collector.disable-defaults",
                "--collector.textfile",
                f"--collector.textfile.directory={self.textfile_dir}",
            ],
            "/metrics",
        )
        jobs = [
            {
                "job_name": "node",
                "static_configs": [{"targets": [self.urls["node"].removeprefix("http://")]}],
            }
        ]
        if self.pushgateway:
            port = free_port()
            self.urls["pushgateway"] = f"http://127.0.0.1:{port}"
            self._spawn(
                "pushgateway",
                [
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--persistence.file={self.root / 'pushgateway.store'}",
                ],
                "/-/ready",
            )
            jobs.append(
                {
                    "job_name": "pushgateway",
                    # Keep the pushed job/instance (the site) instead of the Pushgateway's own.
                    "honor_labels": True,
                    "static_configs": [
                        {"targets": [self.urls["pushgateway"].removeprefix("http://")]}
                    ],
                }
            )
        jobs += self.extra_jobs
        interval = f"{int(self.interval_s * 1000)}ms"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "scrape_configs": jobs,
        }
        if self.rules:
            (self.root / "diag.rules.yml").write_text(self.rules, encoding="utf-8")
            config["rule_files"] = [str(self.root / "diag.rules.yml")]
        # JSON is YAML: Prometheus reads it as its config file.
        (self.root / "prometheus.yml").write_text(json.dumps(config, indent=1), encoding="utf-8")
        port = free_port()
        self.urls["prometheus"] = f"http://127.0.0.1:{port}"
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        self._spawn(
            "prometheus",
            [
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=2h",
            ],
            "/-/ready",
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- Prometheus HTTP API ---

    def query(self, expr: str, timeout_s: float = 30) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.urls['prometheus']}/api/v1/query", params={"query": expr}, timeout=timeout_s
        )
        r.raise_for_status()
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self,
        expr: str,
        ok: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout_s: float = 60,
    ) -> list[dict[str, Any]]:
        """Queries ``expr`` until ``ok(result)``; the last result, or AssertionError."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if ok(result):
                return result
            time.sleep(self.interval_s / 2)
        raise AssertionError(f"{expr!r} not as expected after {timeout_s} s: {result}")

    def alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.urls['prometheus']}/api/v1/alerts", timeout=10)
        r.raise_for_status()
        found: list[dict[str, Any]] = r.json()["data"]["alerts"]
        return found

    def own_metrics(self, name: str) -> list[float]:
        """The values of one family of Prometheus's own /metrics, whatever their labels."""
        text = httpx.get(f"{self.urls['prometheus']}/metrics", timeout=10).text
        return [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + " ", name + "{"))
        ]

    def own_metric(self, name: str) -> float:
        """One series of Prometheus's own /metrics (e.g. its resident memory)."""
        found = self.own_metrics(name)
        if not found:
            raise RuntimeError(f"no {name} in Prometheus's own metrics")
        return found[0]

    def memory_bytes(self) -> float:
        return self.own_metric("process_resident_memory_bytes")
