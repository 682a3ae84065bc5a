"""A closed stdout (`coconut ... | head`) and Ctrl-C during a plain command: one line on stderr, no traceback, a
clear exit code (2 and 130), and no half-written output file."""

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

ENV = {**os.environ, "TQDM_DISABLE": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def test_a_closed_stdout_is_one_line_and_exit_2(tmp_path):
    """The reader is gone before the first byte is written (a `| head -1` that has already quit)."""
    child = subprocess.Popen([sys.executable, "-m", "coconut", "train", "demo_coconut", "--dry-run"], cwd=tmp_path,
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.close()
    err = child.stderr.read()
    code = child.wait(timeout=120)
    assert "Traceback" not in err and "unexpected" not in err and "Exception ignored" not in err, err
    assert err.count("\n") == 1 and err.startswith("coconut train: the output was closed before all of it was "
                                                   "written"), err
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_a_closed_stdout_under_logging_reaches_the_error_path(monkeypatch):
    """Progress lines go through the `coconut` logger: a closed stdout there is raised to the command's error path
    like a print's, not printed as logging's own traceback."""
    from coconut.cli.errors import configure_logging, report

    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    configure_logging()
    monkeypatch.setattr(sys, "stdout", Closed())
    with pytest.raises(BrokenPipeError) as caught:
        logging.getLogger("coconut.train").info("a progress line")
    monkeypatch.undo()
    assert report(caught.value, "train", debug=False) == 2


def test_ctrl_c_while_generating_data_is_one_line_exit_130_and_writes_nothing(tmp_path):
    """SIGINT in the middle of generating a large set: the command says it was interrupted, and --out is absent."""
    # The generator announces itself on stdout, so that the signal lands inside it, not in the imports.
    # Ctrl-C as a terminal delivers it: in the full suite the child has been seen ignoring SIGINT (an ignored
    # signal is inherited across exec, and Python then installs no handler), so the test gives it Python's own.
    script = ("import signal, sys\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "import coconut.data.generators as generators\n"
              "real = generators.generate\n"
              "def announced(*args, **kwargs):\n"
              "    print('generating', flush=True)\n"
              "    return real(*args, **kwargs)\n"
              "generators.generate = announced\n"
              "from coconut.cli.main import main\n"
              "sys.exit(main(['data', 'prosqa', '--n', '2000000', '--out', 'x.json']))\n")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "generating\n", child.stderr.read()
        # Until the progress bar has moved: the signal lands in the generating loop, not in the lazy imports
        # before it (on a loaded machine half a second may not reach the loop).
        seen, deadline = b"", time.monotonic() + 60
        while b"q/s]" not in seen and time.monotonic() < deadline:
            seen += os.read(child.stderr.fileno(), 4096)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        err = seen.decode() + err
    finally:
        if child.poll() is None:
            child.kill()
    *bar, last = err.rstrip("\n").split("\n")  # the generator's progress bar (stderr), ended, then the one line
    assert last == "coconut data prosqa: interrupted", err[-2000:]
    assert all(frame.startswith("prosqa:") for line in bar for frame in line.split("\r") if frame), err[-2000:]
    assert child.returncode == 130
    assert list(tmp_path.iterdir()) == [], "an interrupted command leaves no output file"


def test_an_io_failure_in_a_background_thread_prints_no_traceback(capsys):
    """TensorBoard's writer thread meets the read-only folder first; the command reports the same error itself."""
    import threading

    from coconut.cli.errors import quiet_thread_failures

    previous = threading.excepthook
    try:
        quiet_thread_failures(debug=False)
        for failure in (PermissionError(13, "Permission denied", "runs/x/tensorboard/events"), ValueError("a bug")):
            def fail(failure=failure):
                raise failure

            thread = threading.Thread(target=fail)
            thread.start()
            thread.join()
        err = capsys.readouterr().err
        assert "PermissionError" not in err and "ValueError: a bug" in err, "only the I/O failure is silenced"
        quiet_thread_failures(debug=True)
        thread = threading.Thread(target=lambda: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        thread.start()
        thread.join()
        assert "No space left on device" in capsys.readouterr().err, "--debug shows every traceback"
    finally:
        threading.excepthook = previous


def test_sigterm_outside_training_is_one_line_and_exit_143(tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "coconut", "data", "prosqa", "--n", "2000000", "--out",
                              str(tmp_path / "x.json")], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # past the imports, generating
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 143, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "coconut data prosqa: stopped by SIGTERM"
    assert list(tmp_path.iterdir()) == [], "no output, whole or part"


@pytest.mark.parametrize("half_built", [False, True])
def test_the_failure_line_starts_on_a_line_of_its_own_after_a_progress_bar(half_built, capsys):
    """A Ctrl-C can land inside tqdm's constructor after its first frame and before it sets its clock: close() then
    writes nothing, and the message would follow the frame on the same line."""
    import io

    from tqdm.auto import tqdm

    from coconut.cli.errors import report

    out = io.StringIO()
    bar = tqdm(total=10, file=out, disable=False, mininterval=0)
    if half_built:
        del bar.last_print_t  # where the interrupt left it
    assert report(KeyboardInterrupt(), "data prosqa", debug=False) == 130
    assert out.getvalue().endswith("\n") and "\r" in out.getvalue()
    assert capsys.readouterr().err == "coconut data prosqa: interrupted\n"
