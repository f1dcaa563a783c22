"""The load generator, always in a second process: wrk when installed, else a small
Python keep-alive client (this module run as `python -m bench.load`, spec on stdin).

Either way the result is a dict: requests, seconds, rps, p50_ms, p99_ms, errors
(non-2xx/3xx answers plus socket errors) and the generator used.
"""

import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class RequestSpec:
    """One request, repeated: method, full URL (loopback), headers and body."""

    method: str
    url: str
    headers: dict = field(default_factory=dict)
    body: str = ""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


# --- wrk ----------------------------------------------------------------------------------

def lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_script(spec: RequestSpec) -> str:
    lines = [f"wrk.method = {lua_string(spec.method)}"]
    if spec.body:
        lines.append(f"wrk.body = {lua_string(spec.body)}")
    for name, value in spec.headers.items():
        lines.append(f"wrk.headers[ {lua_string(name)} ] = {lua_string(value)}")
    return "\n".join(lines) + "\n" + WRK_DONE


def run_wrk(spec: RequestSpec, connections: int, duration: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="tessera-wrk-") as tmp:
        script = Path(tmp) / "request.lua"
        script.write_text(wrk_script(spec))
        seconds = max(1, round(duration))
        result = subprocess.run(
            [wrk_path(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
             spec.url],
            capture_output=True, text=True, timeout=seconds + 60,
        )
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {result.stderr.strip() or result.stdout.strip()}")
    raw = json.loads(line[len("BENCHJSON "):])
    seconds = raw["duration_us"] / 1e6
    return {
        "generator": "wrk",
        "requests": raw["requests"],
        "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["status_errors"] + raw["socket_errors"],
    }


# --- the Python client ----------------------------------------------------------------------

def python_client(spec: RequestSpec, connections: int, duration: float) -> dict:
    """N threads, each with its own keep-alive http.client connection (reopened when the
    server closes it, as gunicorn's sync workers do after every response)."""
    parts = urlsplit(spec.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = spec.body.encode() if spec.body else None
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start = time.perf_counter()
    deadline = start + duration

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        own = latencies[slot]
        while True:
            began = time.perf_counter()
            if began >= deadline:
                break
            try:
                connection.request(spec.method, path, body=body, headers=spec.headers)
                response = connection.getresponse()
                response.read()
                if response.status >= 400:
                    errors[slot] += 1
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                connection.close()
                continue
            own.append(time.perf_counter() - began)
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 30)
    seconds = time.perf_counter() - start
    merged = sorted(x for own in latencies for x in own)
    return {
        "generator": "python",
        "requests": len(merged),
        "seconds": seconds,
        "rps": len(merged) / seconds if seconds else 0.0,
        "p50_ms": percentile(merged, 0.50) * 1000,
        "p99_ms": percentile(merged, 0.99) * 1000,
        "errors": sum(errors),
    }


def run_python_client(spec: RequestSpec, connections: int, duration: float) -> dict:
    """Run python_client in a second process, so the generator never shares our GIL."""
    payload = json.dumps({"spec": asdict(spec), "connections": connections, "duration": duration})
    result = subprocess.run([sys.executable, "-m", "bench.load"], input=payload, capture_output=True, text=True,
                            timeout=duration + 90, cwd=str(Path(__file__).resolve().parent.parent))
    if result.returncode != 0:
        raise RuntimeError(f"load client failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def run_load(spec: RequestSpec, connections: int, duration: float, generator: str = "auto") -> dict:
    """Drive `spec` for `duration` seconds over `connections` connections."""
    if generator == "wrk" or (generator == "auto" and wrk_path()):
        if not wrk_path():
            raise RuntimeError("wrk is not installed (apt-get install wrk)")
        return run_wrk(spec, connections, duration)
    return run_python_client(spec, connections, duration)


def main() -> None:
    job = json.load(sys.stdin)
    print(json.dumps(python_client(RequestSpec(**job["spec"]), job["connections"], job["duration"])))


if __name__ == "__main__":
    main()
