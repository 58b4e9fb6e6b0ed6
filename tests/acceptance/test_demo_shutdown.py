"""`./scripts/demo` stopped with Ctrl-C in a terminal, as a user does it.

The demo runs in a pseudo-terminal: the ^C written to it is turned into SIGINT
by the terminal driver, for every process of the foreground group, as a real
terminal does. The demo must say what it stops, stop the web server and the
worker first (the worker drains its running job), Redis last, and print it all.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.servers import ROOT, free_port

pytestmark = pytest.mark.fault

CTRL_C = b"\x03"
READY = "Ctrl-C stops everything."
STOPPED_WITHIN = 25  # seconds: a hang guard (it took ~30 s, and failed the job)


class Terminal:
    """A command in a pseudo-terminal; its output read as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: session leader, the pty its terminal
            # A terminal's shell starts with Ctrl-C's default action, whoever
            # started the tests: run as `cmd &` by a script (or a CI runner),
            # they inherit SIGINT ignored, a bash script cannot trap it then,
            # and the demo never heard its Ctrl-C.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGQUIT, signal.SIG_DFL)
            os.chdir(ROOT)
            os.execve(argv[0], argv, env)
        self.text = ""

    def read_until(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.text)) is None:
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} within {timeout} s:\n{self.text}"
            if not self.read(min(left, 0.5)):
                raise AssertionError(f"ended before {pattern!r}:\n{self.text}")
        return found

    def read(self, timeout: float) -> bool:
        """Read what is there; False once the terminal is closed."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: every process holding the terminal is gone
            return False
        self.text += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.read(0.2):
            assert time.monotonic() < deadline, f"still running:\n{self.text}"
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Stop whatever is left: Ctrl-C, then SIGKILL to the whole session
        (the demo's processes have process groups of their own)."""
        if not self.done():
            os.write(self.fd, CTRL_C)
            deadline = time.monotonic() + STOPPED_WITHIN
            while not self.done() and time.monotonic() < deadline:
                self.read(0.2)
        for pid in session_members(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not self.done():
            os.waitpid(self.pid, 0)
        os.close(self.fd)

    def done(self) -> bool:
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            return True


def zombie(pid: int) -> bool:
    """Ended, not yet reaped (the demo's orphaned log pipes wait for init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def session_members(sid: int) -> list[int]:
    """The processes of session `sid` (the demo and all it started)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    members.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return members


@pytest.fixture
def demo(tmp_path: Path):
    env = demo_env(tmp_path)
    yield from run_in_terminal([str(ROOT / "scripts" / "demo")], env)


@pytest.fixture
def piped_demo(tmp_path: Path):
    """The demo with its output piped, as `./scripts/demo | tee demo.log`."""
    command = f"{ROOT / 'scripts' / 'demo'} 2>&1 | cat"
    yield from run_in_terminal(["/bin/bash", "-c", command], demo_env(tmp_path))


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        PORT=str(free_port()),
        REDIS_PORT=str(free_port()),
        DEMO_RUN_DIR=str(tmp_path / "run"),
        DATABASE_PATH=str(tmp_path / "demo.sqlite3"),
        TERM="dumb",
    )
    return env


def run_in_terminal(argv: list[str], env: dict[str, str]) -> Iterator[Terminal]:
    terminal = Terminal(argv, env)
    terminal.port = env["PORT"]  # type: ignore[attr-defined]
    terminal.env = env  # type: ignore[attr-defined]
    yield terminal
    terminal.close()


def start_report(port: str, steps: int, delay: float) -> str:
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None
        answer = client.post(
            "/jobs/report/",
            json={"steps": steps, "delay": delay},
            headers={"X-CSRFToken": token.group(1), "Referer": base + "/"},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])


def test_ctrl_c_stops_the_demo_in_order_and_lets_the_running_job_finish(demo):
    demo.read_until(re.escape(READY), timeout=120)
    job = start_report(demo.port, steps=4, delay=0.5)  # 2 s of work
    demo.read_until(rf"Task id={job} \S+ state=RUNNING", timeout=20)
    pressed = time.monotonic()
    os.write(demo.fd, CTRL_C)  # the terminal's SIGINT, to its foreground group
    assert demo.wait(STOPPED_WITHIN) == 130  # as an interrupted command exits
    took = time.monotonic() - pressed
    print(f"[measured] Ctrl-C with a 2 s job running: demo gone in {took:.1f} s")
    after = demo.text[demo.text.index(READY) :]
    order = [
        after.index("stopping the web server and the worker"),
        after.index(f"Task id={job} path=webproject.tasks.report state=SUCCESSFUL"),
        after.index("stopping redis-server"),
        after.index("demo stopped"),
    ]
    assert order == sorted(order), after
    assert "[worker]" in after[order[0] :]  # the worker's last lines still shown
    for symptom in ("Connection refused", "Task was destroyed", "Traceback"):
        assert symptom not in after, after


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_demo_refuses_a_redis_port_that_is_taken(own_redis):
    other = own_redis()  # someone else's Redis, with data of its own
    other.client().set("theirs", "untouched")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["REDIS_PORT"] = str(other.port)
    done = run([str(ROOT / "scripts" / "demo"), "--smoke"], env)
    assert done.returncode == 1
    assert f"port {other.port} (REDIS_PORT) is taken" in done.stderr
    assert other.client().dbsize() == 1  # nothing written into it


def test_the_demo_refuses_a_web_port_that_is_taken(tmp_path: Path):
    env = demo_env(tmp_path)
    with socket.socket() as other:  # someone else's web server on PORT
        other.bind(("127.0.0.1", int(env["PORT"])))
        other.listen()
        done = run([str(ROOT / "scripts" / "demo"), "--smoke"], env)
    assert done.returncode == 1
    assert f"port {env['PORT']} (PORT) is taken" in done.stderr
    assert "starting redis-server" not in done.stderr  # refused before anything ran


def test_ctrl_c_with_the_output_piped_stops_everything(piped_demo):
    piped_demo.read_until(re.escape(READY), timeout=120)
    by_hand = re.search(
        r"\n +(REDIS_URL=\S+ \.venv/bin/python manage\.py .+)\n", piped_demo.text
    )
    assert by_hand is not None, piped_demo.text
    typed = run(["/bin/bash", "-c", by_hand.group(1)], piped_demo.env)
    assert typed.stdout.strip().splitlines()[-1:] == ["5"], typed  # works as printed
    os.write(piped_demo.fd, CTRL_C)  # ends `cat` too: the demo's output is gone
    piped_demo.wait(STOPPED_WITHIN)
    assert [pid for pid in session_members(piped_demo.pid) if not zombie(pid)] == []
    client = redis.Redis(
        port=int(piped_demo.env["REDIS_PORT"]), socket_connect_timeout=1
    )
    with pytest.raises(redis.ConnectionError):
        client.ping()  # before: redis-server left running, orphaned
