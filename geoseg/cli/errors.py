"""Turn geoseg errors into one-line messages and exit code 2 (no tracebacks for bad input)."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import warnings

import click

from geoseg.errors import Cancelled, GeosegError, resume_of
from geoseg.interrupts import deliver

_json = False  # --progress json: every line on stderr is a JSON object (see say)


def say(stage: str, message: str | None = None, **fields) -> None:
    """One message on stderr: ``geoseg: <stage>: message`` (``geoseg: message`` for plain notes), or with
    ``--progress json`` one JSON object ``{"stage": ..., "message": ..., **fields}``, like the progress lines, so a
    program driving the CLI reads nothing but JSON there."""
    if _json:
        click.echo(json.dumps({"stage": stage, **({"message": message} if message is not None else {}), **fields}),
                   err=True)
    elif message is not None:
        click.echo(f"geoseg: {stage}: {message}" if stage in ("warning", "error") else f"geoseg: {message}", err=True)


def done(summary: dict, text: str) -> None:
    """The end of a command: ``{"stage": "done", **summary}`` with ``--progress json``, else ``text``."""
    if _json:
        click.echo(json.dumps({"stage": "done", **summary}), err=True)
    else:
        click.echo(text, err=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    say("warning", str(message))


class Terminated(BaseException):
    """SIGTERM arrived (e.g. the QGIS plugin's cancel): unwind so temporary outputs are removed."""


def _on_sigterm(signum, frame):
    deliver(Terminated)  # now, or once an output being committed is whole (geoseg.interrupts)


def _on_sigint(signum, frame):
    deliver(KeyboardInterrupt)


def handle_errors(fn=None, *, resume: str | None = None):
    """Decorate a CLI command: one-line errors, exit 2 for bad input, clean unwinding on SIGTERM/Ctrl-C.

    ``resume`` says what a rerun picks up after an interruption (e.g. "the finished tiles"); commands
    that cannot resume leave it out and the message says nothing about resuming.
    """
    if fn is None:
        return functools.partial(handle_errors, resume=resume)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _json
        warnings.showwarning = _show_warning
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        _json = kwargs.get("progress_mode") == "json"
        handlers = _install({signal.SIGTERM: _on_sigterm, signal.SIGINT: _on_sigint})
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Cancelled as exc:
            _stop("cancelled", str(exc), 130)
        except (Terminated, KeyboardInterrupt) as exc:
            how, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
            said = resume_of(exc)  # what the library kept, where it knows; else what the command can resume from
            hint = f"; {said}" if said else (f"; rerun the same command to resume from {resume}" if resume else "")
            _stop("cancelled", f"{how}{hint}", code)
        except GeosegError as exc:
            _stop("error", str(exc), 2)
        except BrokenPipeError:  # the reader went away (`geoseg ... | head`): stop quietly, like other Unix tools
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
            sys.exit(141)
        except MemoryError:
            _stop("error", "out of memory; lower --batch-size or --tile-size", 2)
        except Exception as exc:  # a bug: keep the message, offer the traceback
            if os.environ.get("GEOSEG_DEBUG"):
                raise
            _stop("error", f"internal error: {type(exc).__name__}: {exc} (set GEOSEG_DEBUG=1 for the traceback and "
                  "report it)", 1)
        finally:
            _install(handlers)  # the caller's again (a test runner's Ctrl-C; the executable's exit, see main)
            _json = False

    return wrapper


def _stop(kind: str, message: str, code: int) -> None:
    """Say why the command stops and exit with ``code``: ``geoseg: error: ...`` for errors, ``geoseg: ...`` for a
    cancel, or the JSON ``{"stage": "error"|"cancelled", "message", "exit_code"}`` with ``--progress json``."""
    if _json:
        say(kind, message, exit_code=code)
    elif kind == "error" and not message.startswith("internal error"):
        click.echo(f"geoseg: error: {message}", err=True)
    else:
        click.echo(f"geoseg: {message}", err=True)
    sys.exit(code)


def _install(handlers: dict) -> dict:
    """Set signal handlers (main thread only; elsewhere, as under some embedding hosts, leave them); the old ones."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
