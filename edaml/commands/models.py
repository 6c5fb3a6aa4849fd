"""`edaml models`: what the registry holds and the operator's two levers, promote and rollback.

- `edaml models list [NAME] [--json]`: every version with its aliases and the gate's verdict
  (the version tags `gate_verdict` / `gate_reasons` the evaluation in Dagster writes).
- `edaml models promote NAME VERSION [--force] [--reason TEXT]`: move `@champion`; a version the
  gate rejected is refused unless `--force`, which is recorded (version tags and the lifecycle
  event's reasons).
- `edaml models rollback NAME`: move `@champion` back to the version it replaced (from the
  lifecycle topic, else the newest earlier version the gate passed); a `rolled_back` event.

The scorer follows `@champion` by itself (it polls the alias), so both take effect live.
Exit codes: 0 done, 1 a server could not be reached or failed, 3 refused (gate verdict),
4 no such model, version or previous champion. Usage errors exit 2 (as every command).
"""

from __future__ import annotations

import getpass
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edaml.settings import Settings

console = Console()
err_console = Console(stderr=True)

#: Version tags written by the gate in Dagster (orchestration.defs.promotion.gate).
VERDICT_TAG = "gate_verdict"
REASONS_TAG = "gate_reasons"
REJECTED = "rejected"
#: Version tags written here when an operator moves the champion.
FORCED_TAG = "promoted_by_cli_forced"
PROMOTED_BY_TAG = "promoted_by"
CHAMPION = "champion"

EXIT_SERVER, EXIT_REFUSED, EXIT_NOT_FOUND = 1, 3, 4

app = typer.Typer(
    name="models",
    help="Registered models: list versions and verdicts, promote, roll back.",
    no_args_is_help=True,
)


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class VersionRow:
    model: str
    version: str
    aliases: list[str]
    verdict: str
    reasons: str
    created: str
    run_id: str
    description: str


def _fail(exc: CliError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
    return typer.Exit(exc.code)


def _client() -> Any:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(Settings().tracking_uri)
    return MlflowClient()


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """An MLflow call; a missing model or version is CliError(4), an unreachable server (1)."""
    from mlflow.exceptions import MlflowException

    try:
        return fn(*args, **kwargs)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise CliError(f"{what}: not found", EXIT_NOT_FOUND) from None
        raise CliError(f"{what}: {exc.message}", EXIT_SERVER) from None
    except Exception as exc:
        raise CliError(
            f"{what}: MLflow at {Settings().tracking_uri} failed: {exc}", EXIT_SERVER
        ) from None


def version_rows(client: Any, name: str) -> list[VersionRow]:
    model = _call(f"model {name}", client.get_registered_model, name)
    aliases: dict[str, list[str]] = {}
    for alias, version in (getattr(model, "aliases", None) or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    versions = _call(f"versions of {name}", client.search_model_versions, f"name='{name}'")
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version)):
        tags = dict(mv.tags or {})
        verdict = tags.get(VERDICT_TAG, "")
        if tags.get(FORCED_TAG):
            verdict = f"{verdict or 'none'} (forced)"
        rows.append(
            VersionRow(
                model=name,
                version=str(mv.version),
                aliases=sorted(aliases.get(str(mv.version), [])),
                verdict=verdict or "-",
                reasons=tags.get(REASONS_TAG, ""),
                created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                run_id=mv.run_id or "",
                description=mv.description or "",
            )
        )
    return rows


@app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="One registered model (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Versions of each registered model with their aliases and the gate's verdict."""
    try:
        client = _client()
        names = (
            [name]
            if name
            else sorted(m.name for m in _call("models", client.search_registered_models))
        )
        rows = [r for n in names for r in version_rows(client, n)]
    except CliError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        return
    table = Table("model", "version", "aliases", "verdict", "created (UTC)", "gate reasons")
    for r in rows:
        table.add_row(
            r.model,
            r.version,
            ", ".join(f"@{a}" for a in r.aliases),
            r.verdict,
            r.created,
            r.reasons.replace("\n", "; ")[:120],
        )
    console.print(table if rows else "no registered models")


def _publish(event: Any) -> str | None:
    """Put a lifecycle event on mlops.model-lifecycle; the error text when Kafka is not there."""
    from features.contract import encode
    from streaming.kafka import make_producer

    s = Settings()
    try:
        producer = make_producer(s.bootstrap, **{"message.timeout.ms": 10_000})
        producer.produce(s.topics.model_lifecycle, encode(event), event.model_name.encode())
        left = producer.flush(15)
    except Exception as exc:
        return str(exc)
    return f"{left} event(s) not delivered to {s.bootstrap}" if left else None


def _event(name: str, version: str, action: str, previous: str, reasons: list[str]) -> Any:
    from features.contract import ModelLifecycleEvent

    return ModelLifecycleEvent.now(
        name,
        version,
        action,  # type: ignore[arg-type]
        actor=f"cli:{getpass.getuser()}",
        reasons=reasons,
        alias=CHAMPION,
        previous_version=previous,
    )


def _move_champion(
    client: Any, name: str, version: str, action: str, reasons: list[str], tags: dict[str, str]
) -> tuple[str, str | None]:
    rows = {r.version: r for r in version_rows(client, name)}
    previous = next((v for v, r in rows.items() if CHAMPION in r.aliases), "")
    _call(f"{name} v{version}", client.set_registered_model_alias, name, CHAMPION, version)
    for key, value in tags.items():
        _call(f"{name} v{version}", client.set_model_version_tag, name, version, key, value)
    problem = _publish(_event(name, version, action, previous, reasons))
    return previous, problem


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version number to serve.")],
    force: Annotated[
        bool, typer.Option("--force", help="Promote even though the gate rejected it.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the lifecycle event).")] = "",
) -> None:
    """Point @champion at VERSION; the scorer swaps to it live."""
    try:
        client = _client()
        rows = {r.version: r for r in version_rows(client, name)}
        row = rows.get(version)
        if row is None:
            raise CliError(
                f"{name} has no version {version} (versions: {', '.join(rows) or 'none'})",
                EXIT_NOT_FOUND,
            )
        rejected = row.verdict.startswith(REJECTED)
        if rejected and not force:
            why = row.reasons.replace("\n", "; ") or "no reasons recorded"
            raise CliError(
                f"{name} v{version} failed its gate ({why}); use --force to promote it anyway",
                EXIT_REFUSED,
            )
        reasons = [f"promoted by hand{': ' + reason if reason else ''}"]
        tags = {PROMOTED_BY_TAG: f"cli:{getpass.getuser()}"}
        if rejected:
            reasons.append(f"forced past the gate's verdict: {row.reasons.replace(chr(10), '; ')}")
            tags[FORCED_TAG] = datetime.now(UTC).isoformat(timespec="seconds")
        previous, problem = _move_champion(client, name, version, "promoted", reasons, tags)
    except CliError as exc:
        raise _fail(exc) from None
    console.print(
        f"{name}: @champion v{previous or '-'} -> v{version}"
        + (" (forced past a rejected gate)" if rejected else ""),
        highlight=False,
    )
    if problem:
        err_console.print(f"[yellow]warning:[/yellow] lifecycle event not published: {problem}")


def previous_champion(name: str, current: str, timeout: float = 10.0) -> str | None:
    """The version `current` replaced, from the latest lifecycle event that made it champion."""
    from confluent_kafka import TopicPartition

    from features.contract import ContractError, ModelLifecycleEvent, parse_event
    from streaming.kafka import make_consumer, watermarks

    s = Settings()
    topic = s.topics.model_lifecycle
    consumer = make_consumer(
        s.bootstrap, f"edaml-models-{uuid.uuid4().hex[:8]}", **{"socket.timeout.ms": 5000}
    )
    found: str | None = None
    try:
        ends = {
            p: hi for p, (lo, hi) in watermarks(consumer, topic, timeout=timeout).items() if hi > lo
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout
        best_ts = -1
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                value, part, off = msg.value(), msg.partition(), msg.offset()
                if msg.error() is not None or value is None or part is None or off is None:
                    continue
                if off + 1 >= ends.get(part, 0):
                    ends.pop(part, None)
                try:
                    e = parse_event(value)
                except ContractError:
                    continue
                if (
                    isinstance(e, ModelLifecycleEvent)
                    and e.model_name == name
                    and e.version == current
                    and e.action in ("promoted", "rolled_back")
                    and e.previous_version
                    and e.ts_ms > best_ts
                ):
                    best_ts, found = e.ts_ms, e.previous_version
            for tp in consumer.position([TopicPartition(topic, p) for p in list(ends)]):
                if tp.offset >= ends[tp.partition]:
                    ends.pop(tp.partition, None)
    finally:
        consumer.close()
    return found


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the lifecycle event).")] = "",
) -> None:
    """Point @champion back at the version the current champion replaced."""
    try:
        client = _client()
        rows = {r.version: r for r in version_rows(client, name)}
        current = next((v for v, r in rows.items() if CHAMPION in r.aliases), None)
        if current is None:
            raise CliError(f"{name} has no @champion to roll back", EXIT_NOT_FOUND)
        try:
            target = previous_champion(name, current)
        except Exception:
            target = None  # no Kafka: fall back on the registry alone
        if target is None or target not in rows:
            earlier = [
                v
                for v, r in rows.items()
                if int(v) < int(current) and not r.verdict.startswith(REJECTED)
            ]
            target = earlier[-1] if earlier else None
        if target is None:
            raise CliError(
                f"{name} v{current} replaced no earlier version: nothing to roll back to",
                EXIT_NOT_FOUND,
            )
        reasons = [f"rolled back by hand from v{current}{': ' + reason if reason else ''}"]
        _previous, problem = _move_champion(
            client, name, target, "rolled_back", reasons, {PROMOTED_BY_TAG: "cli:rollback"}
        )
    except CliError as exc:
        raise _fail(exc) from None
    console.print(f"{name}: @champion v{current} -> v{target} (rolled back)", highlight=False)
    if problem:
        err_console.print(f"[yellow]warning:[/yellow] lifecycle event not published: {problem}")


def register(root: typer.Typer) -> None:
    root.add_typer(app)
