"""Headless Chromium from Debian through /usr/bin/chromedriver, as the browser tests use it."""

import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def chromium(size, logs=False):
    """A driver with a fresh profile and a window of `size` ("W,H"); with `logs`, the browser's
    console log is kept for `driver.get_log("browser")`."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--window-size={size}",
        f"--user-data-dir={tempfile.mkdtemp(prefix='wagate-chromium-')}",
    ]:
        opts.add_argument(flag)
    if logs:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
