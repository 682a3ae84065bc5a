"""The one error path of the `coconut` command: exit codes, one-line messages, the parser's own errors, logging.

Every expected failure (config, data, checkpoint, model or tokenizer loading, I/O, bad arguments) becomes one
line on stderr, `coconut COMMAND: what is wrong, and what to do`; the traceback only with `--debug`. No torch
import here: an error type is looked up only when its module is already loaded (an exception of a class whose
module was never imported cannot have been raised), so `coconut data ...` stays torch-free.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import threading
import traceback

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NONFINITE = 0, 1, 2, 3
EXIT_CODES = """exit codes (the same for every command):
  0  success
  1  unexpected failure (a bug: run again with --debug for the traceback, and report it)
  2  usage, config, data, checkpoint, model/tokenizer or I/O error (one line names the key, file or record)
  3  training stopped on a non-finite loss (lower optim.lr, set optim.grad_clip, or use trainer.precision=32-true)
  130, 143  stopped by Ctrl-C (SIGINT) or SIGTERM; a training run saves checkpoints/last.ckpt first"""

# (module, class): the expected failures, all exit 2. Lightning's MisconfigurationException is a setting it
# refuses (devices, strategy), so a config error as well.
EXPECTED = (
    ("coconut.config.checks", "ConfigError"),
    ("coconut.data_error", "DataError"),
    ("coconut.train.checkpoints", "CheckpointError"),
    ("coconut.analysis.report", "ReportError"),
    ("coconut.data.download", "DownloadError"),
    ("coconut.engine.alignment", "LatentInputError"),
    ("lightning.fabric.utilities.exceptions", "MisconfigurationException"),
)
NON_FINITE = ("coconut.train.module", "NonFiniteLossError")
INTERRUPTED = ("coconut.train.interrupt", "RunInterrupted")  # a signal stopped a run: 128 + the signal's number


def _loaded(module: str, name: str):
    return getattr(sys.modules.get(module), name, None)


def _is(err: BaseException, module: str, name: str) -> bool:
    cls = _loaded(module, name)
    return isinstance(cls, type) and isinstance(err, cls)


def one_line(text: str) -> str:
    """A message on one line: its lines joined (some libraries' messages span several)."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


# Where a path comes from, per command: what the user can change when a file cannot be read or written.
PATH_KEYS = {"train": "output_dir=, data.data_dir=, data.*_file=", "eval": "ckpt=, data.data_dir=, data.*_file=",
             "analyze": "ckpt=, output_dir=, data.data_dir=", "demo": "output_dir=, data.data_dir=",
             "report": "--out, RUN_DIR", "table": "output_dir="}


def describe(err: BaseException, command: str) -> tuple[int, str]:
    """(exit code, message) of a failure."""
    if _is(err, *NON_FINITE):
        return EXIT_NONFINITE, one_line(err)
    if _is(err, *INTERRUPTED) or isinstance(err, Terminated):
        return err.exit_code, one_line(err)
    if any(_is(err, module, name) for module, name in EXPECTED):
        return EXIT_USAGE, one_line(err)
    if isinstance(err, OSError) and not isinstance(err, ConnectionError):
        # An unwritable --out or output_dir, a folder where a file should be, a full disk: name the path.
        where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        what = err.strerror or one_line(err) or type(err).__name__
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            todo = "choose a path you can write to"
        elif err.errno == errno.ENOSPC:
            todo = "free some space or choose another disk"
        elif err.errno in (errno.ENOTDIR, errno.EEXIST):
            todo = "a file stands where a folder is needed; choose another path"
        else:
            todo = "check the path"
        keys = PATH_KEYS.get(command.split()[0])
        return EXIT_USAGE, f"{where + ': ' if where else ''}{what}; {todo}" + (f" ({keys})" if keys else "")
    text = one_line(err)
    return EXIT_FAILURE, (f"unexpected {type(err).__name__}{': ' + text if text else ''}; this is a bug: run "
                          "again with --debug for the traceback, and report it")


class Terminated(Exception):
    """SIGTERM outside a training run (which saves a checkpoint first: coconut.train.interrupt)."""

    exit_code = 128 + 15

    def __init__(self):
        super().__init__("stopped by SIGTERM")


def raise_terminated(signum, frame):
    """The SIGTERM handler of the command: stop like Ctrl-C does, through the one error path (exit 143)."""
    raise Terminated()


def quiet_thread_failures(debug: bool) -> None:
    """A background thread's I/O failure (TensorBoard's event writer when the run folder turns read-only or the disk
    fills) prints no traceback: the same error reaches the command at its next write and is reported there, in one
    line. Other failures in threads, and everything under --debug, print as before."""
    default = threading.__excepthook__

    def hook(args):
        if debug or not isinstance(args.exc_value, OSError):
            default(args)

    threading.excepthook = hook


def report(err: BaseException, command: str, debug: bool) -> int:
    """Print the failure (its traceback first under --debug) and return the exit code."""
    name = f"coconut {command}".strip()
    if isinstance(err, KeyboardInterrupt):
        _say(f"{name}: interrupted")
        return 130
    if isinstance(err, BrokenPipeError):
        _silence_stdout()
        if debug:
            traceback.print_exception(err)
        _say(f"{name}: the output was closed before all of it was written (a pipe such as `| head` stopped "
             "reading); write it to a file to keep all of it")
        return EXIT_USAGE
    code, message = describe(err, command)
    if debug:
        traceback.print_exception(err)
    _say(f"{name}: {message}")
    return code


def _say(line: str) -> None:
    """The one line on stderr, on a line of its own; a closed stderr as well leaves only the exit code to tell."""
    try:
        _close_progress_bars()
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def _close_progress_bars() -> None:
    """End the progress bars a failure left open (data generation, downloads): closing one ends its line, so the
    message does not land on it, and no frame is drawn after the message."""
    std = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(std, "tqdm", None), "_instances", ())):
        # A Ctrl-C inside the bar's constructor, after its first frame but before it set its clock, leaves a bar
        # that close() does not end (it thinks nothing was drawn): its line is ended here.
        drawn_half_built = getattr(bar, "sp", None) is not None and not hasattr(bar, "last_print_t")
        bar.close()
        if drawn_half_built:
            bar.fp.write("\n")


def _silence_stdout() -> None:
    """Point stdout at the null device: the interpreter flushes it at exit, and what is still buffered for a closed
    pipe would fail a second time there (the idiom of Python's docs on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a file descriptor
        pass


class HelpFormatter(argparse.HelpFormatter):
    """One help column for every command and option (argparse starts it at 24 characters, so a longer name
    pushes its help to the next line while the others stay beside theirs); a description of one paragraph is
    wrapped to the terminal, a text laid out in lines (the options and exit-code tables) is kept as written."""

    def __init__(self, prog, indent_increment=2, max_help_position=32, width=None):
        super().__init__(prog, indent_increment, max_help_position, width)

    def add_argument(self, action):
        super().add_argument(action)
        # argparse measures the sub-commands at the section's indent but prints them one step further in, so the
        # longest name (quickstart) would push its help to the next line.
        if action.help is not argparse.SUPPRESS and hasattr(action, "_get_subactions"):
            longest = max((len(self._format_action_invocation(a)) for a in action._get_subactions()), default=0)
            self._action_max_length = max(self._action_max_length,
                                          longest + self._current_indent + self._indent_increment)

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse prints the whole usage first) and exit code 2; each parser
    records itself as `_parser`, so the innermost sub-command's parser reports what follows the parse."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(_parser=self)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


class _StandardStream(logging.StreamHandler):
    """A handler that writes to the current sys.stdout or sys.stderr (tests and wrappers swap them)."""

    def __init__(self, name: str):
        self._which = name
        super().__init__()

    @property
    def stream(self):
        return getattr(sys, self._which)

    @stream.setter
    def stream(self, _):  # StreamHandler.__init__ sets it; the current one is always read instead
        pass

    def handleError(self, record):
        """A closed stdout (`coconut train ... | head`) goes up to the error path as one line, like a print's,
        instead of logging's own traceback on stderr."""
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            raise  # the BrokenPipeError that emit() is handling
        super().handleError(record)


def configure_logging(debug: bool = False) -> logging.Logger:
    """The project's logger `coconut`, configured once: its progress on stdout, warnings on stderr.

    The root logger is left alone, so Lightning's own lines (it has its handler) print once, not twice. The
    libraries' lines that say nothing about the run are filtered one by one (coconut.train.quiet), except under
    --debug."""
    from coconut.train import quiet  # imports neither torch nor Lightning

    quiet.configure(debug)
    logger = logging.getLogger("coconut")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    if not any(getattr(h, "coconut_cli", False) for h in logger.handlers):
        out, err = _StandardStream("stdout"), _StandardStream("stderr")
        out.addFilter(lambda record: record.levelno < logging.WARNING)
        err.setLevel(logging.WARNING)
        out.setFormatter(logging.Formatter("%(message)s"))
        err.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        for handler in (out, err):
            handler.coconut_cli = True
            logger.addHandler(handler)
    return logger
