"""`textfit report`: the findings printed again, and the card as one self-contained HTML page in a browser."""

from __future__ import annotations

import json

from tests.conftest import run_textfit


def test_report_prints_what_the_run_found(trained):
    result = run_textfit("report", trained)
    assert result.returncode == 0, result.stderr
    assert "kept: step" in result.stdout and "95% intervals: accuracy" in result.stdout
    assert "misclassified evaluation examples" in result.stdout
    findings = json.loads((trained / "metrics.json").read_text())["findings"]
    assert [line[9:] for line in result.stdout.splitlines() if line.startswith("finding: ")] == findings
    assert ("no findings" in result.stdout) == (not findings)


def test_report_refuses_a_folder_without_a_run(tmp_path):
    result = run_textfit("report", tmp_path)
    assert result.returncode != 0 and "not a model folder (no config.json)" in result.stderr


def test_html_card_renders_with_its_pictures_in_chromium(trained_copy, browser):
    result = run_textfit("report", trained_copy, "--html")
    assert result.returncode == 0, result.stderr
    page = trained_copy / "card.html"
    html = page.read_text()
    assert 'src="data:image/png;base64,' in html and 'src="training_curves.png"' not in html  # self-contained
    browser.get(page.as_uri())
    assert browser.title == trained_copy.name
    headings = [h.text for h in browser.find_elements("css selector", "h2, h3")]
    assert "Training results" in headings and "Pictures" in headings
    images = browser.find_elements("css selector", "img")
    assert len(images) == 3
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 200 for img in images)
    assert len(browser.find_elements("css selector", "table tr")) >= 4  # the results and per-class tables
