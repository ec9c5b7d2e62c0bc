"""The page at `/` in headless Chromium: type a text, press Classify, read the label and the bars."""

from __future__ import annotations

import pytest


def test_page_shows_the_label_for_a_typed_text(browser, service, trained):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import textfit

    text = "a gorgeous , witty , seductive movie ."
    expected = textfit.load(trained, precision="fp32").predict([text])[0]
    browser.get(f"{service}/")
    WebDriverWait(browser, 30).until(lambda d: "labels:" in d.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "text").send_keys(text)
    browser.find_element(By.ID, "classify").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "label").text != "")
    assert browser.find_element(By.ID, "label").text == expected["label"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#scores .row")
    assert {row.get_attribute("data-label") for row in rows} == {"negative", "positive"}
    shown = {row.get_attribute("data-label"): float(row.find_element(By.CLASS_NAME, "value").text) for row in rows}
    assert shown[expected["label"]] == pytest.approx(expected["scores"][expected["label"]], abs=1e-3)

    browser.find_element(By.ID, "text").send_keys("x" * 2100)  # over the service's max_chars
    browser.find_element(By.ID, "classify").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").text != "")
    assert "max_chars" in browser.find_element(By.ID, "error").text
