"""What every admin command shares: the bootstrap option, consoles, errors, progress.

Commands print their results on stdout and everything else (errors, warnings, progress
bars, summaries) on stderr, so their output can be piped. A failure prints
``Error: <NAME>: <message>`` (a Kafka error code, by Kafka's name and message) or
``Error: <what went wrong>`` and exits 1; a bad command line exits 2 (the CLI library's
usage errors).

Tables are drawn with rich. When stdout is not a terminal they are drawn 200 columns wide
(or `$COLUMNS`) so that pipes and files get unwrapped rows.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from broker import logs
from broker.admin.client import AdminClient
from broker.admin.errors import AdminError

__all__ = ["Bootstrap", "Timeout", "admin_client", "fail", "handle_errors", "out",
           "err", "parse_configs", "progress_bar"]

Bootstrap = Annotated[str, typer.Option(
    "--bootstrap-server", "-b", envvar="ODRADEK_BOOTSTRAP_SERVER",
    help="host:port[,host:port...] of the brokers to contact first.")]
Timeout = Annotated[float, typer.Option(
    "--request-timeout", help="Seconds to wait for each answer.", min=0.1)]

F = TypeVar("F", bound=Callable[..., Any])
#: The logger of the commands' own warnings ("New offset (5) is higher than...").
CLI_LOGGER = "odradek.cli"


def _width() -> int | None:
    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else 200


def out() -> Console:
    """The console for results (stdout)."""
    return Console(width=_width(), highlight=False, soft_wrap=False)


def err() -> Console:
    """The console for errors, warnings and summaries (stderr)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``Error: message`` on stderr; returns the `typer.Exit` to raise."""
    err().print(f"Error: {message}", markup=False)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn `AdminError` (and `KafkaError`) into ``Error: ...`` and exit status 1, and send
    the command's own warnings (the `odradek.cli` logger) to stderr."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logs.TextFormatter())
        cli_log = logging.getLogger(CLI_LOGGER)
        cli_log.addHandler(handler)
        cli_log.setLevel(logging.WARNING)
        cli_log.propagate = False
        try:
            return func(*args, **kwargs)
        except AdminError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader of our stdout went away (`| head`): stop quietly, as `cat` does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        finally:
            cli_log.removeHandler(handler)

    return wrapper  # type: ignore[return-value]


def admin_client(bootstrap: str, timeout_s: float = 30.0) -> AdminClient:
    return AdminClient(bootstrap, timeout_s=timeout_s)


def parse_configs(items: list[str] | None, what: str = "--config") -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; `AdminError` without a ``=``."""
    configs: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise AdminError(f"{what} expects name=value, got {item!r}")
        configs[name.strip()] = value
    return configs


@contextmanager
def progress_bar(show: bool, forced: bool, description: str, total: float | None,
                 unit: str = "records") -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr while the block runs; yields ``advance(n, **fields)``.

    `forced` (``--progress``) draws it even when stderr is not a terminal (then 100 columns
    wide), so that scripts and tests can see it; otherwise it is drawn only when `show`.
    """
    if not show:
        yield lambda *_args, **_kwargs: None
        return
    is_tty = sys.stderr.isatty()
    console = Console(stderr=True, force_terminal=True if forced else None,
                      width=None if is_tty else 100)
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if unit == "records":
        columns += [MofNCompleteColumn(), TextColumn("records")]
    else:
        columns += [TaskProgressColumn(), TextColumn("{task.fields[records]} records")]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, records=0)

        def advance(n: float = 1, **fields: Any) -> None:
            progress.update(task, advance=n, **fields)

        yield advance
        progress.refresh()
