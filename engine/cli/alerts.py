"""``riskstream alerts tail``: follow the alert stream with a Redis consumer group.

Delivery: at-least-once per consumer group, nothing lost across restarts.

* The group (``--group``) remembers what it has been given; a new group starts at the end
  of the stream, or at its beginning with ``--from-start``.
* An alert is acknowledged (``XACK``) only after it was printed. If the command dies
  between the two, the alert stays *pending* for this consumer (``--consumer``) and is
  printed again first thing at the next start with the same consumer name.
* Alerts pending for another consumer of the group for longer than ``--claim-idle-ms`` (a
  crashed tail under another name) are claimed (``XAUTOCLAIM``) and printed too.
* ``--kinds`` filters what is printed; filtered-out alerts are acknowledged as handled.

Several tails in one group share the alerts (each printed once by one of them); tails in
different groups each see every alert.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import typer

from engine.alerts import Alert
from engine.cli.app import command_group, load_settings

ALERTS_STREAM = "riskstream:alerts"

alerts_app = command_group("alerts", "Follow the alert stream (riskstream:alerts).")

Entry = tuple[str, dict[str, str]]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _entries(reply: Any) -> list[Entry]:
    """Entries of an XREADGROUP / XAUTOCLAIM reply as ``(id, {field: value})`` text."""
    out: list[Entry] = []
    for item in reply or ():
        entry_id, fields = item
        if fields is None:  # an entry deleted (trimmed) while pending
            out.append((_text(entry_id), {}))
            continue
        out.append((_text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
    return out


@dataclass
class Follower:
    """The consumer-group mechanics of the tail (see the module docstring), without printing."""

    client: Any
    group: str
    consumer: str
    stream: str = ALERTS_STREAM
    from_start: bool = False
    claim_idle_ms: int = 60_000
    batch: int = 100

    def ensure_group(self) -> bool:
        """Create the group if missing (``True`` if it was created)."""
        from redis.exceptions import ResponseError

        try:
            self.client.xgroup_create(
                self.stream, self.group, id="0" if self.from_start else "$", mkstream=True
            )
            return True
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise

    def own_pending(self, limit: int | None = None) -> list[Entry]:
        """Entries delivered to this consumer earlier and never acknowledged."""
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: "0"}, count=limit or self.batch
        )
        return _entries(reply[0][1]) if reply else []

    def claim_stale(self, limit: int | None = None) -> list[Entry]:
        """Entries another consumer of the group left pending longer than ``claim_idle_ms``."""
        if self.claim_idle_ms <= 0:
            return []
        reply = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self.claim_idle_ms,
            "0-0",
            count=limit or self.batch,
        )
        return _entries(reply[1])

    def read_new(self, block_ms: int, limit: int | None = None) -> list[Entry]:
        reply = self.client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=limit or self.batch,
            block=block_ms,
        )
        return _entries(reply[0][1]) if reply else []

    def ack(self, entry_id: str) -> None:
        self.client.xack(self.stream, self.group, entry_id)

    def follow(
        self,
        handle: Callable[[str, dict[str, str]], bool],
        *,
        count: int | None = None,
        idle_timeout_s: float | None = None,
        block_ms: int = 1000,
    ) -> int:
        """Hand every entry to ``handle`` (``True`` if it was shown), ack it, until done.

        Stops after ``count`` shown entries, or after ``idle_timeout_s`` without any new
        entry; otherwise runs until interrupted. Returns the number shown.
        """
        self.ensure_group()
        shown = 0
        last_activity = time.monotonic()
        last_claim = 0.0

        def take(entries: Iterable[Entry]) -> bool:
            nonlocal shown, last_activity
            for entry_id, fields in entries:
                if handle(entry_id, fields):
                    shown += 1
                self.ack(entry_id)
                last_activity = time.monotonic()
                if count is not None and shown >= count:
                    return True
            return False

        def limit() -> int | None:
            # With --count, never take more than will be shown: nothing is left pending.
            return None if count is None else min(self.batch, count - shown)

        while True:  # first what this consumer was given and never acknowledged
            pending = self.own_pending(limit())
            if not pending:
                break
            if take(pending):
                return shown
        while True:
            now = time.monotonic()
            if now - last_claim >= max(self.claim_idle_ms / 1000.0, 1.0):
                last_claim = now
                if take(self.claim_stale(limit())):
                    return shown
            if take(self.read_new(block_ms, limit())):
                return shown
            if idle_timeout_s is not None and time.monotonic() - last_activity >= idle_timeout_s:
                return shown


# --- printing ------------------------------------------------------------------------------

_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def render(alert: Alert, entry_id: str) -> Any:
    """A readable block for one alert (rich renderable)."""
    from rich.table import Table
    from rich.text import Text

    head = Text()
    head.append(alert.fields()["ts"], style="dim")
    head.append("  ")
    head.append(f"{alert.severity.upper():<8}", style=_SEVERITY_STYLE.get(alert.severity, ""))
    head.append(f" {alert.kind}", style="bold")
    head.append(f"  {alert.subject}", style="bold magenta")
    head.append(f"  value {alert.value:.6g} > threshold {alert.threshold:.6g}")
    head.append(f"  {alert.model}@{alert.model_version}", style="dim")
    head.append(f"  [{alert.alert_id}]", style="dim")
    if not alert.attributions:
        return head
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="cyan")
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_column(justify="left")
    largest = max(abs(a.shap) for a in alert.attributions) or 1.0
    for a in alert.attributions:
        width = max(1, round(12 * abs(a.shap) / largest))
        bar = Text("█" * width, style="red" if a.shap > 0 else "blue")
        value = (
            "missing"
            if a.value is None
            else (f"{a.value:.6g}" if isinstance(a.value, float) else str(a.value))
        )
        table.add_row(a.feature, f"= {value}", f"{a.shap:+.4f}", bar)
    from rich.console import Group
    from rich.padding import Padding

    return Group(head, Padding(table, (0, 0, 0, 4)))


@alerts_app.command("tail")
def tail(
    group: str = typer.Option(
        "riskstream-tail", help="Consumer group (remembers what it was given)."
    ),
    consumer: str | None = typer.Option(
        None,
        help="Consumer name; keep it across restarts to get unacknowledged alerts again "
        "(default: tail-<hostname>).",
    ),
    from_start: bool = typer.Option(
        False,
        "--from-start",
        help="A new group starts at the beginning of the stream (default: new alerts only).",
    ),
    kinds: str | None = typer.Option(
        None, help="Only these kinds, comma-separated (e.g. credit_pd,credit_el)."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="One JSON document per line instead of text."
    ),
    count: int | None = typer.Option(None, min=1, help="Exit after printing this many alerts."),
    timeout: float | None = typer.Option(
        None, min=0.0, help="Exit after this many seconds without a new alert."
    ),
    claim_idle_ms: int = typer.Option(
        60_000,
        min=0,
        help="Take over alerts another consumer left unacknowledged this long (0: never).",
    ),
    stream: str = typer.Option(ALERTS_STREAM, help="The Redis Stream to follow."),
) -> None:
    """Follow riskstream:alerts through a consumer group: XREADGROUP, print, XACK; resumes where it stopped."""
    import redis

    from engine.errors import ConfigError, ServiceUnavailableError
    from engine.sinks.redis import sync_client_from_settings

    client = sync_client_from_settings(load_settings())
    wanted = {k.strip() for k in kinds.split(",") if k.strip()} if kinds else None
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)

    def handle(entry_id: str, fields: dict[str, str]) -> bool:
        try:
            alert = Alert.from_fields(fields)
        except (KeyError, ValueError, TypeError) as exc:
            console.print(f"[dim]{entry_id}: not an alert entry ({exc}); skipped[/dim]")
            return False
        if wanted is not None and alert.kind not in wanted:
            return False
        if json_output:
            print(orjson.dumps({"stream_id": entry_id, **alert.to_json()}).decode(), flush=True)
        else:
            console.print(render(alert, entry_id))
        return True

    follower = Follower(
        client,
        group=group,
        consumer=consumer or f"tail-{socket.gethostname()}",
        stream=stream,
        from_start=from_start,
        claim_idle_ms=claim_idle_ms,
    )
    try:
        follower.follow(handle, count=count, idle_timeout_s=timeout)
    except redis.exceptions.AuthenticationError as exc:
        raise ConfigError(f"Redis refused the credentials: {exc}") from None
    except (redis.exceptions.ConnectionError, OSError) as exc:
        raise ServiceUnavailableError(f"Redis is unreachable: {exc}") from None
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
