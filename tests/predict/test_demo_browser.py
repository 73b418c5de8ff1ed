"""The web demo end to end in a real headless Chromium: upload, type labels, see tags and maps."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
from drawing import draw_images

from ramlico.predict.demo import build_app, parse_labels, tag_image
from ramlico.predict.predictor import load_predictor

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
LABELS = ["red circle", "blue square"]


def test_parse_labels():
    assert parse_labels(" cat, dog,,\nsofa ") == ["cat", "dog", "sofa"]


def test_one_request_gives_tags_probabilities_and_one_overlay_per_label(tmp_path):
    predictor = load_predictor("clip_zeroshot_demo", device="cpu")
    (path, _), = draw_images(tmp_path, 1, seed=21)
    tags, probs, overlays = tag_image(predictor, str(path), ", ".join(LABELS), threshold=0.01)
    pred = predictor(path, LABELS, threshold=0.01)[0]
    assert tags == ", ".join(f"{t} ({probs[t]:.2f})" for t in pred.tags) and pred.tags
    assert set(probs) == set(LABELS) and len(overlays) == 2
    assert overlays[0][0].size == (256, 256)  # the 64 px input is enlarged for the page
    with pytest.raises(ValueError, match="at least one label"):
        tag_image(predictor, str(path), " , ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    (CHROMIUM is None or DRIVER is None) and not os.environ.get("CI"),
    reason="needs Debian's chromium + chromium-driver (.ci/run installs them; CI never skips)",
)
def test_demo_in_headless_chromium(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    predictor = load_predictor("clip_zeroshot_demo", device="cpu")
    (path, _), = draw_images(tmp_path, 1, seed=22)
    expected = predictor(path, LABELS, threshold=0.01)[0]
    app = build_app(predictor, ["green star"])
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    opts = webdriver.ChromeOptions()
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", "--disable-dev-shm-usage")  # fmt: skip
    for arg in flags:
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=opts)
    try:
        driver.get(f"http://127.0.0.1:{port}")
        wait = WebDriverWait(driver, 90)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#image input[type=file]"))
        driver.find_element(By.CSS_SELECTOR, "#image input[type=file]").send_keys(str(path))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#image img"))  # upload shown
        labels = driver.find_element(By.CSS_SELECTOR, "#labels textarea")
        labels.clear()
        labels.send_keys(", ".join(LABELS))
        threshold = driver.find_element(By.CSS_SELECTOR, "#threshold input")
        threshold.clear()
        threshold.send_keys("0.01")
        driver.find_element(By.CSS_SELECTOR, "#submit").click()

        def tags_text(d):
            return d.find_element(By.CSS_SELECTOR, "#tags textarea").get_attribute("value")

        wait.until(tags_text)
        shown = tags_text(driver)
        assert [t.rsplit(" (", 1)[0] for t in shown.split(", ")] == expected.tags
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#heatmaps img")) >= 2)
        images = driver.find_elements(By.CSS_SELECTOR, "#heatmaps img")
        # the overlays loaded (a broken image has naturalWidth 0)
        assert all(int(img.get_attribute("naturalWidth")) == 256 for img in images[:2])
    finally:
        driver.quit()
        app.close()
