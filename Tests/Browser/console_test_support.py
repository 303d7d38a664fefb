"""What the browser tests share: headless Chromium (Debian's chromium and chromedriver) with
its console log kept, the API's own answer to a request the console makes, and a check."""
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait


class Session:
    """A browser test in progress: the driver, a 20-second wait, and the step it is at."""

    def __init__(self, driver, wait):
        self.driver, self.wait, self.step = driver, wait, "start"


@contextlib.contextmanager
def browser_session(shots, name):
    """Runs a browser test's steps: at the end the browser's console must hold no error; a
    failed step is reported by name with a screenshot (SHOTS/NAME-failure.png) and exit 1."""
    driver, wait = start_browser()
    session = Session(driver, wait)
    try:
        yield session
        session.step = "the browser console holds no error"
        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
        check(not errors, f"browser console errors: {errors}")
    except Exception as error:  # noqa: BLE001 - report which step failed, with a screenshot
        driver.save_screenshot(os.path.join(shots, f"{name}-failure.png"))
        print(f"{name} failed at '{session.step}': {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        driver.quit()


def start_browser():
    """A headless Chromium and a 20-second wait on it."""
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--disable-extensions", "--no-first-run"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingOptions", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    return driver, WebDriverWait(driver, 20)


def api_call(base, method, path, fields=None, files=None, key=None):
    """The API's answer to the request the console makes, for comparison."""
    boundary = "doppel-" + uuid.uuid4().hex
    body = b""
    for name, value in (fields or {}).items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, path_ in (files or {}).items():
        with open(path_, "rb") as f:
            data = f.read()
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{os.path.basename(path_)}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    headers = {}
    if files or fields:
        body += f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    else:
        body = None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def check(condition, message):
    """Stops the test with `message` when `condition` does not hold."""
    if not condition:
        raise AssertionError(message)
