#!/usr/bin/env python3
"""Browser test of `tr0n serve`: headless Chromium (Debian's chromium and
chromium-driver, driven by python3-selenium) loads the page, types a prompt,
submits, waits for the images and the plot, checks the error state, and saves
a screenshot.

    demo_test.py TOOL MODELS_DIR PREFIX SCREENSHOT.png [extra `tr0n serve` flags]

Exit status 77 (CTest: skipped) when Chromium or Selenium is missing.
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77


def main():
    tool, models, prefix, screenshot = sys.argv[1:5]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        print("skipped: python3-selenium is not installed")
        return SKIP
    browser = shutil.which("chromium")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not browser or not os.path.exists(driver_path):
        print("skipped: chromium and chromium-driver are not installed")
        return SKIP

    m = lambda name: os.path.join(models, prefix + name)
    server = subprocess.Popen(
        [tool, "serve", "--generator", m("generator.ts.pt"), "--encoder", m("clip_image.ts.pt"),
         "--text-encoder", m("clip_text.ts.pt"), "--translator", m("text_translator.pt"),
         "--energy", "neg_cosine", "--invert", "--port", "0", *sys.argv[5:]],
        stdout=subprocess.PIPE, text=True)
    driver = None
    try:
        ready, _, _ = select.select([server.stdout], [], [], 60)
        line = server.stdout.readline() if ready else ""
        assert line.startswith("listening on http://"), f"the server did not start: {line!r}"
        url = line.split()[-1]

        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.set_page_load_timeout(30)
        driver.get(url)
        wait = WebDriverWait(driver, 60, poll_frequency=0.05)
        assert "Type a prompt" in driver.find_element(By.ID, "status").text  # the empty state

        def fill(element_id, value):
            box = driver.find_element(By.ID, element_id)
            box.clear()
            box.send_keys(value)

        n = 8
        fill("prompt", "a photo of a dark sneaker")
        fill("n", str(n))
        fill("steps", "10")
        start = time.monotonic()
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid img")) == n)
        to_images = time.monotonic() - start
        wait.until(lambda d: d.find_element(By.ID, "plot").get_attribute("data-series") == "2")
        loaded = driver.execute_script(
            "return Array.from(document.querySelectorAll('#grid img'))"
            ".every(i => i.complete && i.naturalWidth > 0)")
        assert loaded, "an image did not decode"
        inked = driver.execute_script(
            "const c = document.getElementById('plot');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let k = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++; return k;")
        assert inked > 500, f"the plot is nearly empty ({inked} pixels drawn)"
        captions = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#grid figcaption")]
        assert all(c.startswith("E ") for c in captions), captions
        status = driver.find_element(By.ID, "status").text
        assert f"{n} images" in status, status
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        driver.save_screenshot(screenshot)
        print(f"images in {to_images:.3f} s after the click; plot pixels {inked}; status: {status}")
        print(f"screenshot: {screenshot}")

        # The error state: an unknown word is named, and the grid stays.
        fill("prompt", "a photo of a red sneaker")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: "error" in d.find_element(By.ID, "status").get_attribute("class"))
        message = driver.find_element(By.ID, "status").text
        assert "unknown word 'red'" in message, message
        assert len(driver.find_elements(By.CSS_SELECTOR, "#grid img")) == n
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise AssertionError("the server did not stop on SIGTERM within 30 s")
    assert code == 0, f"the server exited with {code}"
    print("browser test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
