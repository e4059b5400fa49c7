"""A warm stage host: one process that has done the stages' heavy imports and forks a child per command.

A demo round spends most of its wall time starting processes: each ``dvc repro`` imports DVC, and
each stage DVC runs imports torch and transformers again before its first line of work (about 2 s
and 5 s on 2 cores, bench/round/). The rounds flow starts one host (:func:`running`) and points
``RLINT_STAGE_HOST`` at its Unix socket. A ``dvc repro`` the flow runs, and every ``rlint <stage>``
that DVC runs under it, then becomes a light client (:func:`forward`): it sends its argv, working
directory and environment, and passes its own stdin, stdout and stderr over the socket. The host
forks a child, which takes those descriptors, that directory and that environment, and runs the
command's entry point (``rlint.cli.main`` or ``dvc.cli.main``) as the process would have. The client
exits with the child's exit code. So every stage is still its own ``dvc repro`` and its own command,
writing the bytes it writes alone (tests/test_stage_host.py), and a command run by hand, without
the variable, runs in its own process as before.

Lifetime: a child whose client goes away (killed, interrupted) is killed with its process group;
the host stops its children and exits when the process that started it is gone, so a killed flow
leaves nothing running. What the host imported at its start is what its children run: a code
change during a flow takes effect at the next flow run (DVC still sees it in the stages' deps).

    python -m rlint.stage_host serve --socket PATH   # the host (the flow starts it)
    python -m rlint.stage_host run dvc repro ...     # a client: through the host when RLINT_STAGE_HOST is set

(``python -P``: the host's imports resolve as the ``rlint`` console command's do, not from the working directory.)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rlint.stage_graph import COMMANDS  # the standard library only

HOST_ENV = "RLINT_STAGE_HOST"  # the host's socket path; set: `rlint` and `python -m rlint.stage_host run` forward to it
CLIENT_STARTED_ENV = "RLINT_CLIENT_STARTED"  # in a child: its client's process start (CLOCK_BOOTTIME seconds)
PROGRAMS = {"rlint": ("rlint.cli", "main"), "dvc": ("dvc.cli", "main")}
# what the host imports before its first child: the stage commands' modules and what they import on their first call
PRELOAD = ("rlint.cli", "rlint.config", "rlint.data", "rlint.checkpoints", "rlint.engine", *(f"rlint.stages.{name}" for name in COMMANDS),
           "torch", "transformers", "transformers.models.llama.modeling_llama", "accelerate", "pyarrow.parquet", "polars",
           "dvc.cli", "dvc.repo", "dvc.repo.reproduce", "dvc.stage", "dvc.output", "dvc.dependency")
_HEADER = struct.Struct("!I")
_STDIO = (0, 1, 2)


class HostError(RuntimeError):
    """The host could not be started (it exited, or did not answer in time)."""


# -- the client ----------------------------------------------------------------------------------
def process_start() -> float | None:
    """This process's start time in ``CLOCK_BOOTTIME`` seconds (``/proc/self/stat``); None without /proc."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def forward(address: str, program: str, argv: list[str]) -> int | None:
    """Run ``program argv`` in a child of the host at ``address`` with this process's stdio, directory and
    environment; its exit code (128 + N for a child killed by signal N), or None when no host answers there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        return None
    with sock:
        request = json.dumps({"program": program, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                              "started": process_start()}).encode()
        socket.send_fds(sock, [_HEADER.pack(len(request)) + request], list(_STDIO))
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(64)
            if not chunk:  # the host went away before the child ended
                print(f"rlint: the stage host at {address} stopped before `{program} {' '.join(argv)}` ended", file=sys.stderr)
                return 1
            answer += chunk
    return int(answer.split()[-1])


def _entry(program: str):
    module, name = PROGRAMS[program]
    return getattr(importlib.import_module(module), name)


def host_environment() -> dict[str, str]:
    """What the rlint CLI sets before its stages load (third-party logging, offline hubs, no progress bars): the host
    sets it before its imports, as libraries read some of it at import; a value already in the environment wins."""
    from rlint.cli import OFFLINE_ENV, QUIET_ENV  # rlint.cli imports the standard library only

    return {**QUIET_ENV, **OFFLINE_ENV, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def main_or_forward(program: str, argv: list[str]) -> int:
    """``program argv`` through the host named by ``RLINT_STAGE_HOST``, or in this process where none is set or answers."""
    address = os.environ.get(HOST_ENV)
    if address:
        code = forward(address, program, argv)
        if code is not None:
            return code
    return _entry(program)(argv) or 0


# -- the host ------------------------------------------------------------------------------------
def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, len(_STDIO))
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the client closed the connection mid-request")
        data += chunk
    (size,) = _HEADER.unpack_from(data)
    return json.loads(data[_HEADER.size:_HEADER.size + size]), fds


def _run_child(request: dict, fds: list[int]) -> int:
    """In the forked child: take the client's stdio, directory and environment, then run its command."""
    os.setpgid(0, 0)  # its own process group: the host stops it and whatever it started together
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    for target, fd in zip(_STDIO, fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own descriptors, never closed here
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if request.get("started") is not None:
        os.environ[CLIENT_STARTED_ENV] = str(request["started"])
    program, argv = request["program"], list(request["argv"])
    sys.argv = [program, *argv]
    try:
        code = _entry(program)(argv)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - the traceback goes to the client's stderr, as the process would print it
        import traceback

        traceback.print_exc()
        code = 1
    return int(code or 0)


def _child_main(request: dict, fds: list[int], closing: list[socket.socket]) -> None:
    for sock in closing:
        sock.close()
    code = 1
    try:
        code = _run_child(request, fds)
    finally:
        import atexit

        atexit._run_exitfuncs()  # what the command registered (its libraries' clean-up), as a normal exit runs them
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _stop_group(pid: int, grace: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    return
            except ChildProcessError:
                return
            time.sleep(0.05)


def _watch(conn: socket.socket, pid: int, children: dict, label: str) -> None:
    """Wait for child ``pid``; send its exit code to the client, or stop it when the client goes away first."""
    conn.settimeout(0.05)
    status, started = None, time.monotonic()
    try:
        while status is None:
            try:
                done, raw = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by the host stopping
                return
            if done:
                status = os.waitstatus_to_exitcode(raw)
                break
            try:
                if conn.recv(1) == b"":  # the client is gone: its child goes too
                    _stop_group(pid)
                    print(f"stage host: child {pid} `{label}` stopped: its client went away", flush=True)
                    return
            except socket.timeout:
                continue
        code = status if status >= 0 else 128 - status
        with contextlib.suppress(OSError):
            conn.sendall(f"exit {code}\n".encode())
        print(f"stage host: child {pid} `{label}` exited {code} after {time.monotonic() - started:.2f}s", flush=True)
    finally:
        children.pop(pid, None)
        conn.close()


def preload(modules=PRELOAD) -> list[str]:
    """Import ``modules`` (those that are not installed are skipped); the names imported."""
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except ImportError:
            continue
    return loaded


def serve(address: str, parent: int | None = None, modules=PRELOAD) -> None:
    """Listen on the Unix socket ``address`` and fork a child per request, until SIGTERM or until process
    ``parent`` (default: the one that started this host) is gone; then stop every child and remove the socket."""
    for key, value in host_environment().items():
        os.environ.setdefault(key, value)
    parent = os.getppid() if parent is None else parent
    started = time.monotonic()
    loaded = preload(modules)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address + ".tmp")
    listener.listen(16)
    os.rename(address + ".tmp", address)  # the path appears when the host accepts: running() waits for it
    listener.settimeout(0.5)
    children: dict[int, socket.socket] = {}
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print(f"stage host ready on {address}: {len(loaded)} modules imported in {time.monotonic() - started:.1f}s", flush=True)
    try:
        while not stopping.is_set() and os.getppid() == parent:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError) as err:
                print(f"stage host: a bad request: {err}", file=sys.stderr, flush=True)
                conn.close()
                continue
            pid = os.fork()  # in the main thread: the child is this thread, with every import done
            if pid == 0:
                _child_main(request, fds, [listener, conn])
            for fd in fds:
                os.close(fd)
            children[pid] = conn
            label = " ".join([request["program"], *request["argv"]])
            threading.Thread(target=_watch, args=(conn, pid, children, label), daemon=True, name=f"rlint-host-child-{pid}").start()
    finally:
        listener.close()
        for pid in list(children):
            _stop_group(pid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)


@contextlib.contextmanager
def running(cwd: str | Path, env: dict[str, str] | None = None, timeout: float = 180.0, log_path: Path | None = None):
    """A host started in ``cwd`` with ``env`` (default: this process's) while the block runs; yields the environment
    its clients need (``RLINT_STAGE_HOST``). Raises HostError when it does not start."""
    folder = tempfile.mkdtemp(prefix="rlint-host-")
    address = os.path.join(folder, "host.sock")
    env = {**host_environment(), **(env if env is not None else os.environ)}
    env.pop(HOST_ENV, None)
    output = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-P", "-m", "rlint.stage_host", "serve", "--socket", address, "--parent", str(os.getpid())],
                               cwd=str(cwd), env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(address):
            if process.poll() is not None:
                raise HostError(f"the stage host exited with {process.returncode} before it was ready" + (f" (log: {log_path})" if log_path else ""))
            if time.monotonic() > deadline:
                raise HostError(f"the stage host was not ready after {timeout:.0f}s")
            time.sleep(0.05)
        yield {HOST_ENV: address}
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if output is not subprocess.DEVNULL:
            output.close()
        with contextlib.suppress(OSError):
            os.unlink(address)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        import argparse

        parser = argparse.ArgumentParser(prog="python -m rlint.stage_host serve")
        parser.add_argument("--socket", required=True)
        parser.add_argument("--parent", type=int, default=None)
        args = parser.parse_args(argv[1:])
        serve(args.socket, args.parent)
        return 0
    if argv[:1] == ["run"] and len(argv) > 1 and argv[1] in PROGRAMS:
        return main_or_forward(argv[1], argv[2:])
    print("usage: python -m rlint.stage_host serve --socket PATH [--parent PID] | run {rlint,dvc} ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
