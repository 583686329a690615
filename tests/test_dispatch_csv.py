"""The operators' CSV command against the real web server and a real worker."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import API_KEY, ROOT

CSV = """telefone,name,city
+5564999990001,Ana,Goiânia
123,Zé,Rio Verde
+5564999990003,Bia,
"""


def run_csv(base_env, url, csv_path, *args):
    env = {**os.environ, **base_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        ["flask", "--app", "wsgi", "dispatch-csv", str(csv_path), "--url", url, "--api-key", API_KEY, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_csv_campaign_is_sent_and_summarised(tmp_path, base_env, start_web, start_worker):
    url = start_web()
    start_worker()
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CSV, encoding="utf-8")
    result = run_csv(base_env, url, contacts, "--template", "Olá {{name}} de {{ city | sua cidade }}")
    assert result.returncode == 0, result.stderr
    assert "line 3: Invalid phone number format (recipient_phone)" in result.stderr
    assert "2 rows accepted, 1 refused" in result.stdout
    summary = result.stdout.splitlines()[-2:]
    assert summary[0].split() == ["status", "messages"]
    assert summary[1].split() == ["sent", "2"]

    again = run_csv(base_env, url, contacts, "--template", "Olá {{name}} de {{ city | sua cidade }}")
    assert "2 rows accepted, 1 refused, in 1 batch(es)" in again.stdout  # derived ids: the same batch
    assert again.stdout.splitlines()[-1].split() == ["sent", "2"]  # nothing sent twice


def test_a_csv_without_a_phone_column_is_refused(tmp_path, base_env):
    contacts = tmp_path / "c.csv"
    contacts.write_text("name\nAna\n", encoding="utf-8")
    result = run_csv(base_env, "http://127.0.0.1:9", contacts, "--template", "Oi")
    assert result.returncode != 0
    assert "no phone column" in result.stderr
