"""`flask --app wsgi dispatch-csv contacts.csv --template "Olá {{name}}"`: a campaign from a CSV file.

For operators: it reads the file, posts it to the running API in bulk (several requests when it
has more rows than BULK_MAX_MESSAGES), reports bad rows by line number, shows a progress bar until
every batch finishes, then a summary by status. External ids come from a column, or are derived
from the file name and the line number, so running the same file twice sends nothing twice.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path

import click
import requests
from flask import Flask

from dispatcher.api import context

PHONE_COLUMNS = ("phone", "recipient_phone", "telefone", "celular", "whatsapp")


def _rows(path: Path, phone_column: str | None, id_column: str | None, campaign: str):
    """(line number, bulk row) for each data line of the CSV."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        phone = phone_column or next((c for c in columns if c.strip().lower() in PHONE_COLUMNS), None)
        if phone not in columns:
            raise click.UsageError(
                f"no phone column in {path.name} (columns: {', '.join(columns)}); name one with --phone-column"
            )
        if id_column and id_column not in columns:
            raise click.UsageError(f"no column {id_column!r} in {path.name}")
        for line, record in enumerate(reader, start=2):
            external_id = record[id_column] if id_column else f"{campaign}_line_{line}"
            variables = {k: v for k, v in record.items() if k not in (phone, id_column) and k is not None}
            yield line, {"recipient_phone": record[phone] or "", "external_id": external_id, "variables": variables}


def _post(session: requests.Session, url: str, body: dict) -> dict:
    answer = session.post(f"{url}/v1/messages/bulk", json=body, timeout=120)
    if answer.status_code != 200:
        raise click.ClickException(f"the API answered {answer.status_code}: {answer.text[:500]}")
    return answer.json()


def register(app: Flask) -> None:
    @app.cli.command("dispatch-csv")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--template", help='Message text, with {{column}} placeholders, e.g. "Olá {{name}}".')
    @click.option("--phone-column", help=f"Column with the phone number (default: the first of {PHONE_COLUMNS}).")
    @click.option("--id-column", help="Column with each row's external_id (default: <campaign>_line_<n>).")
    @click.option("--campaign", help="Prefix of derived external ids (default: the file name).")
    @click.option("--message-column", help="Column with each row's own text (wins over --template).")
    @click.option("--callback-url", help="Where status events for these messages go.")
    @click.option("--sender", help="The sending number or instance.")
    @click.option("--url", help="The API's address (default: http://127.0.0.1:$PORT).")
    @click.option("--api-key", envvar="DISPATCH_API_KEY", help="Default: the first key of API_KEY.")
    @click.option("--no-wait", is_flag=True, help="Post and exit, without following the batches.")
    def dispatch_csv(
        csv_file,
        template,
        phone_column,
        id_column,
        campaign,
        message_column,
        callback_url,
        sender,
        url,
        api_key,
        no_wait,
    ):
        """Send a campaign from CSV_FILE: one message per row, every other column a template variable."""
        settings = context.services().settings
        url = (url or f"http://127.0.0.1:{settings.port}").rstrip("/")
        session = requests.Session()
        session.headers["X-API-Key"] = api_key or settings.api_keys[0].key
        rows = list(_rows(csv_file, phone_column, id_column, campaign or csv_file.stem))
        if message_column:
            for _, row in rows:
                row["message_body"] = row["variables"].pop(message_column, "")
        if not template and not message_column:
            raise click.UsageError("give --template or --message-column")
        batches, accepted, bad = [], 0, 0
        for start in range(0, len(rows), settings.bulk_max_messages):
            part = rows[start : start + settings.bulk_max_messages]
            body = {"messages": [row for _, row in part], **({"template": template} if template else {})}
            body.update({k: v for k, v in {"callback_url": callback_url, "sender": sender}.items() if v})
            answer = _post(session, url, body)
            accepted += answer["accepted"]
            if answer["batch_id"]:
                batches.append(answer["batch_id"])
            for result in answer["results"]:
                if "error" in result:
                    bad += 1
                    line = part[result["index"]][0]
                    click.echo(f"line {line}: {result['error']} ({result.get('field', '')})", err=True)
        click.echo(f"{accepted} rows accepted, {bad} refused, in {len(batches)} batch(es): {' '.join(batches)}")
        if no_wait or not batches:
            return
        counts = _follow(session, url, batches)
        click.echo(f"{'status':<12}{'messages':>10}")
        for status, count in sorted(counts.items()):
            click.echo(f"{status:<12}{count:>10}")


def _follow(session: requests.Session, url: str, batches: list[str]) -> Counter:
    """Show a progress bar until every batch has finished; return the messages by status."""

    def poll() -> list[dict]:
        return [session.get(f"{url}/v1/batches/{batch_id}", timeout=10).json() for batch_id in batches]

    states = poll()
    total = sum(state["total"] for state in states)
    with click.progressbar(length=total, label="sending", show_eta=True, show_pos=True) as bar:
        done = 0
        while True:
            finished = sum(round(state["progress"] * state["total"]) for state in states)
            bar.update(finished - done)
            done = finished
            if all(state["state"] in ("completed", "canceled") for state in states):
                break
            time.sleep(0.5)
            states = poll()
    counts: Counter = Counter()
    for state in states:
        counts.update(state["counts"])
    return counts
