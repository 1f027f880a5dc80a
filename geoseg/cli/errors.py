"""Turn geoseg errors into one-line messages and exit code 2 (no tracebacks for bad input)."""

from __future__ import annotations

import functools
import os
import signal
import sys
import warnings

import click

from geoseg.errors import Cancelled, GeosegError, resume_of


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"geoseg: warning: {message}", err=True)


class Terminated(BaseException):
    """SIGTERM arrived (e.g. the QGIS plugin's cancel): unwind so temporary outputs are removed."""


def _on_sigterm(signum, frame):
    raise Terminated()


def handle_errors(fn=None, *, resume: str | None = None):
    """Decorate a CLI command: one-line errors, exit 2 for bad input, clean unwinding on SIGTERM/Ctrl-C.

    ``resume`` says what a rerun picks up after an interruption (e.g. "the finished tiles"); commands
    that cannot resume leave it out and the message says nothing about resuming.
    """
    if fn is None:
        return functools.partial(handle_errors, resume=resume)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _show_warning
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Cancelled as exc:
            click.echo(f"geoseg: {exc}", err=True)
            sys.exit(130)
        except (Terminated, KeyboardInterrupt) as exc:
            how, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
            said = resume_of(exc)  # what the library kept, where it knows; else what the command can resume from
            hint = f"; {said}" if said else (f"; rerun the same command to resume from {resume}" if resume else "")
            click.echo(f"geoseg: {how}{hint}", err=True)
            sys.exit(code)
        except GeosegError as exc:
            click.echo(f"geoseg: error: {exc}", err=True)
            sys.exit(2)
        except BrokenPipeError:  # the reader went away (`geoseg ... | head`): stop quietly, like other Unix tools
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
            sys.exit(141)
        except MemoryError:
            click.echo("geoseg: error: out of memory; lower --batch-size or --tile-size", err=True)
            sys.exit(2)
        except Exception as exc:  # a bug: keep the message, offer the traceback
            if os.environ.get("GEOSEG_DEBUG"):
                raise
            click.echo(f"geoseg: internal error: {type(exc).__name__}: {exc} (set GEOSEG_DEBUG=1 for the traceback and report it)", err=True)
            sys.exit(1)

    return wrapper
