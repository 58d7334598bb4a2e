"""Uploads decoded in a process of their own, under limits the kernel enforces.

decode.py's header checks refuse what they know to be costly, but they read the header, and
Pillow then decodes the whole file: a file written to disagree with those readers, or a cost
nobody has thought of yet, would be paid by the worker. So each worker (uWSGI's or
Gunicorn's) hands its uploads to one decode process of its own, a plain Python with Pillow and
numpy (~40 MB, none of dlib), which decodes them one at a time under two kernel limits:

- CPU: an ITIMER_PROF timer armed for each upload, whose SIGPROF ends the process once it has
  spent DECODE_CPU_SECONDS on it (the kernel counts the time, and delivers a signal that no
  Python handler catches: the default action, which is to terminate);
- memory: RLIMIT_AS, its address space at start plus DECODE_MEMORY_MB, so an allocation past
  it fails (MemoryError, or the process dies).

An upload that reaches either gets 413 (the photo costs too much to decode), the process is
replaced before the next upload, and the worker, which only waited on a pipe, goes on serving.
The pixels come back through the pipe (a photo reduced for detection: a few MB). Each reply
carries what the decode cost (CPU, peak memory), for the benchmarks and the fuzz test.

The photo's bytes and pixels never leave memory; a replaced process leaves nothing behind (no
core dumps: RLIMIT_CORE is 0).
"""

import ctypes
import dataclasses
import fcntl
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback

import numpy as np

from face_rec.decode import ImageError, Photo, load_photo

log = logging.getLogger(__name__)

# worker -> decoder: upload bytes, max pixels, min side (0: none), CPU limit in microseconds.
REQUEST = struct.Struct("<QQQQ")
# decoder -> worker: status (0: pixels follow, else an HTTP status and a message follow),
# flags (RETIRING: the process exits after this reply; OVER_LIMIT: the memory limit refused an
# allocation), width, height, scale, rows, columns, CPU microseconds, peak kB over the
# process's idle size, message bytes.
REPLY = struct.Struct("<HHIIIIIQQI")
RETIRING, OVER_LIMIT = 1, 2
# A decode process is replaced after this many uploads, or once its idle size grew this much.
MAX_UPLOADS_PER_PROCESS = 1000
MAX_IDLE_GROWTH_KB = 64 * 1024
PIPE_BYTES = 1024 * 1024
TOO_COSTLY = ("the photo costs too much to decode (over {cpu:g} s of CPU or {memory} MB of memory): send it "
              "smaller, or as a plain JPEG")


@dataclasses.dataclass(frozen=True)
class DecodeCost:
    """What one upload's decode cost the decode process: its CPU seconds and its peak memory
    over its idle size, as it measured them; the limits themselves when it was ended for them."""

    cpu_s: float
    peak_mb: float
    over_limit: bool = False


class DecodeProcess:
    """The worker's side: one decode process, started on first use in the process that uses
    it (a uWSGI worker, not the master it was forked from), replaced when it dies."""

    def __init__(self, cpu_seconds, memory_mb):
        self.cpu_seconds, self.memory_mb = cpu_seconds, memory_mb
        self.last_cost = None  # DecodeCost of the last upload
        self._process, self._owner = None, None
        self._lock = threading.Lock()

    @property
    def pid(self):
        """The decode process's pid (it is started if need be)."""
        with self._lock:
            return self._running().pid

    def load_photo(self, data, max_pixels, min_side=None):
        """decode.load_photo in the decode process: a Photo, or ImageError (413 when the decode
        went over a limit)."""
        if not data:
            raise ImageError("the uploaded file is empty")
        with self._lock:
            process = self._running()
            self.last_cost = None
            try:
                _write(process.stdin, REQUEST.pack(len(data), max_pixels, min_side or 0,
                                                   round(self.cpu_seconds * 1e6)), data)
                reply = REPLY.unpack(_read(process.stdout, REPLY.size))
            except (BrokenPipeError, EOFError):
                self._gone(process)
                self.last_cost = DecodeCost(self.cpu_seconds, self.memory_mb, over_limit=True)
                raise ImageError(TOO_COSTLY.format(cpu=self.cpu_seconds, memory=self.memory_mb), status=413) \
                    from None
            status, flags, width, height, scale, rows, columns, cpu_us, peak_kb, message_size = reply
            self.last_cost = DecodeCost(cpu_us / 1e6, peak_kb / 1024, over_limit=bool(flags & OVER_LIMIT))
            if flags & OVER_LIMIT:
                log.warning("a decode went over its memory limit (%d MB): 413", self.memory_mb)
            if status:
                message = _read(process.stdout, message_size).decode()
            else:
                pixels = np.empty((rows, columns, 3), np.uint8)
                _read_into(process.stdout, memoryview(pixels).cast("B"))
            if flags & RETIRING:
                self._retire(process)
        if status:
            raise ImageError(message, status=status)
        return Photo(pixels, width, height, scale)

    def close(self):
        with self._lock:
            if self._process is not None and self._owner == os.getpid():
                self._retire(self._process)
            self._process = None

    def _running(self):
        if self._owner != os.getpid():
            # Inherited through a fork (uWSGI's workers from the master): the parent's, not ours.
            if self._process is not None:
                for pipe in (self._process.stdin, self._process.stdout):
                    pipe.close()
            self._process, self._owner = None, os.getpid()
        if self._process is None or self._process.poll() is not None:
            self._process = _start(self.memory_mb)
        return self._process

    def _gone(self, process):
        """The process died on an upload: say how, and start afresh next time."""
        try:
            code = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        reason = {-signal.SIGPROF: "its CPU limit", -signal.SIGKILL: "SIGKILL (memory?)"}.get(code, f"exit {code}")
        log.warning("the decode process died on an upload: %s; over %g s of CPU or %d MB", reason,
                    self.cpu_seconds, self.memory_mb)
        self._close_pipes(process)
        self._process = None

    def _retire(self, process):
        process.stdin.close()  # the process exits on end of input
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._close_pipes(process)
        self._process = None

    @staticmethod
    def _close_pipes(process):
        for pipe in (process.stdin, process.stdout):
            if not pipe.closed:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass


def python_executable():
    """The venv's Python: under uWSGI, sys.executable is uwsgi itself."""
    candidate = os.path.join(sys.prefix, "bin", "python3")
    return candidate if os.access(candidate, os.X_OK) else sys.executable


def _start(memory_mb):
    # -I: no user site, no PYTHON* variables, no script folder; the app's own folder is named.
    library = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    boot = "import sys; sys.path.insert(0, sys.argv[1]); from face_rec.decode_process import serve; serve(int(sys.argv[2]))"
    # One malloc arena: the process has one thread, and RLIMIT_AS counts every arena reserved.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1"}
    process = subprocess.Popen([python_executable(), "-I", "-c", boot, library, str(memory_mb)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=env, close_fds=True, bufsize=0)
    for pipe in (process.stdin, process.stdout):
        # 1 MB pipes (the most an unprivileged process may ask for) instead of 64 KB: a photo's
        # pixels cross in tens of writes, not hundreds of context switches.
        try:
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass
    return process


# --- The decode process's side ----------------------------------------------------------------

def serve(memory_mb):
    """Decode uploads from standard input, one at a time, until it closes (the worker is gone)."""
    import resource  # noqa: PLC0415 (only the decode process sets limits on itself)

    # SIGPROF's default action ends the process: what ITIMER_PROF sends past the CPU limit.
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is for the worker
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a photo is never dumped to disk
    idle_kb = _status_kb("VmSize")
    limit = (idle_kb + memory_mb * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer.raw, sys.stdout.buffer.raw
    trim = _malloc_trim()
    idle_rss = _status_kb("VmRSS")
    for served in range(1, MAX_UPLOADS_PER_PROCESS + 1):
        try:
            size, max_pixels, min_side, cpu_us = REQUEST.unpack(_read(stdin, REQUEST.size))
            data = _read(stdin, size)
        except EOFError:
            return
        _reset_peak()
        before = _status_kb("VmRSS")
        started = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, cpu_us / 1e6)
        retiring, over_limit = served == MAX_UPLOADS_PER_PROCESS, False
        try:
            photo = load_photo(data, max_pixels, min_side or None)
            pixels = np.ascontiguousarray(photo.pixels)
            status, message = 0, b""
        except ImageError as error:
            status, message, photo, pixels = error.status, str(error).encode(), None, None
        except MemoryError:
            # RLIMIT_AS refused an allocation: the upload needs more than the limit allows.
            status, photo, pixels = 413, None, None
            message = TOO_COSTLY.format(cpu=cpu_us / 1e6, memory=memory_mb).encode()
            retiring = over_limit = True
        except Exception:  # a bug of ours, not the photo's cost: said as such, and the process replaced
            traceback.print_exc()
            status, message, photo, pixels = 400, b"the image cannot be read", None, None
            retiring = True
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        cpu = time.process_time() - started
        peak = max(0, _status_kb("VmHWM") - before)
        del data
        # malloc keeps what an upload freed for the next one (faster), unless that is a lot:
        # then it goes back to the kernel, and a process that still holds too much is replaced.
        result_kb = pixels.nbytes // 1024 if pixels is not None else 0
        if _status_kb("VmRSS") - idle_rss - result_kb > MAX_IDLE_GROWTH_KB:
            trim()
            retiring = retiring or _status_kb("VmRSS") - idle_rss - result_kb > MAX_IDLE_GROWTH_KB
        shape = pixels.shape if pixels is not None else (0, 0, 3)
        header = REPLY.pack(status, RETIRING * retiring | OVER_LIMIT * over_limit, photo.width if photo else 0,
                            photo.height if photo else 0, photo.scale if photo else 0, shape[0], shape[1],
                            round(cpu * 1e6), peak, len(message))
        try:
            _write(stdout, header, message if status else memoryview(pixels).cast("B"))
        except BrokenPipeError:
            return
        if retiring:
            return
        del photo, pixels


def _malloc_trim():
    try:
        libc = ctypes.CDLL(None)
        return lambda: libc.malloc_trim(0)
    except (OSError, AttributeError):
        return lambda: None


def _status_kb(key):
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(key.encode() + b":"):
                return int(line.split()[1])
    return 0


def _reset_peak():
    """VmHWM back to the current size, so it says what this upload took at its peak."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


# --- The pipe ---------------------------------------------------------------------------------

def _write(pipe, *parts):
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[pipe.write(view):]


def _read(pipe, size):
    buffer = bytearray(size)
    _read_into(pipe, memoryview(buffer))
    return bytes(buffer)


def _read_into(pipe, view):
    while view:
        count = pipe.readinto(view)
        if not count:
            raise EOFError("the other end of the pipe is gone")
        view = view[count:]
