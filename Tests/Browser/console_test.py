#!/usr/bin/env python3
"""The web console in a real browser (Debian's chromium and chromedriver, headless, driven by
Selenium), as a user works it: load the page, verify two images, search one, type the admin
key, enroll an identity from an image file, see its thumbnail, open it, delete it. Every
answer shown is checked against the API's own answer for the same request, the browser's
console must hold no error, and a screenshot of each view is written.

Run by Tests/EndToEndTests/ConsoleTests.swift against a server it starts:
  console_test.py BASE_URL ADMIN_KEY IMAGE_A IMAGE_B IMAGE_C SCREENSHOT_DIR
IMAGE_A and IMAGE_B are two photos of one enrolled identity, IMAGE_C one of another.
Exit status 0 when every check holds; otherwise the failed check on stderr.
"""
import os
import sys
import uuid

from console_test_support import api_call, browser_session, check
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

base, admin_key, image_a, image_b, image_c, shots = sys.argv[1:7]
# The browser takes only absolute paths for a file input.
image_a, image_b, image_c = (os.path.abspath(p) for p in (image_a, image_b, image_c))
os.makedirs(shots, exist_ok=True)


def api(method, path, fields=None, files=None, key=None):
    """The API's answer to the request the console makes, for comparison."""
    return api_call(base, method, path, fields, files, key)


with browser_session(shots, "console-test") as session:
    driver, wait = session.driver, session.wait
    session.step = "load the page"
    driver.get(base + "/")
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#tabs button[data-view=verify]")))
    check(driver.title == "Doppel console", f"title {driver.title!r}")

    session.step = "verify two images"
    driver.find_element(By.CSS_SELECTOR, "#verify-a input").send_keys(image_a)
    driver.find_element(By.CSS_SELECTOR, "#verify-b input").send_keys(image_c)
    wait.until(EC.element_to_be_clickable((By.ID, "verify-run"))).click()
    verdict = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#verify-result .verdict"))).text
    status, expected = api("POST", "/v1/verify", files={"image1": image_a, "image2": image_c})
    check(status == 200, f"verify API {status}")
    check(verdict.startswith("Match") == expected["match"], f"verdict {verdict!r} but the API says match={expected['match']}")
    shown = driver.find_element(By.ID, "verify-result").text
    check(f"{expected['distance']:.3f}" in shown, f"distance {expected['distance']:.3f} not shown in {shown!r}")
    driver.save_screenshot(os.path.join(shots, "console-verify.png"))

    session.step = "search one image"
    driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=search]").click()
    driver.find_element(By.CSS_SELECTOR, "#search-image input").send_keys(image_b)
    wait.until(EC.element_to_be_clickable((By.ID, "search-run"))).click()
    first = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#search-result .matches li strong"))).text
    status, expected = api("POST", "/v1/search?k=5", files={"image": image_b})
    check(status == 200 and expected["matches"], f"search API {status} {expected}")
    check(first == expected["matches"][0]["identity"], f"top match {first!r}, API {expected['matches'][0]['identity']!r}")
    decision = driver.find_element(By.CSS_SELECTOR, "#search-result .verdict").text
    check(decision == expected["decision"], f"decision {decision!r}, API {expected['decision']!r}")
    driver.save_screenshot(os.path.join(shots, "console-search.png"))

    session.step = "the gallery is locked without the admin key"
    driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=gallery]").click()
    check(driver.find_element(By.ID, "gallery-locked").is_displayed(), "the gallery shows without a key")

    session.step = "type the admin key"
    driver.find_element(By.ID, "key").send_keys(admin_key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait.until(EC.visibility_of_element_located((By.ID, "gallery-open")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery-grid .card"))
    check(driver.execute_script("return sessionStorage.getItem('doppel.key')") == admin_key, "the key is not in session storage")
    check(driver.execute_script("return localStorage.length") == 0, "something was written to local storage")

    session.step = "enroll an identity with an image file"
    new_id = "browser-" + uuid.uuid4().hex[:8]
    driver.find_element(By.ID, "gallery-new").click()
    driver.find_element(By.ID, "enroll-id").send_keys(new_id)
    driver.find_element(By.ID, "enroll-name").send_keys("Made by the browser test")
    driver.find_element(By.ID, "enroll-images").send_keys(image_c)
    driver.find_element(By.CSS_SELECTOR, "#enroll-form button[type=submit]").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "identity-result"), f"Enrolled “{new_id}”"))
    status, stored = api("GET", f"/v1/identities/{new_id}", key=admin_key)
    check(status == 200 and len(stored["samples"]) == 1, f"the API does not hold {new_id}: {status} {stored}")

    session.step = "see its thumbnail"
    check(new_id in driver.find_element(By.CSS_SELECTOR, "#identity h2").text, "the new identity is not the one opened")
    wait.until(lambda d: d.execute_script(
        "const i = document.querySelector('#identity .sample img'); return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0"))
    driver.find_element(By.ID, "gallery-prefix").send_keys(new_id)
    card = f"#gallery-grid .card[data-id='{new_id}'] img"
    # The filter applies after a pause in typing: then only the new identity is left.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery-grid .card")) == 1)
    wait.until(lambda d: d.execute_script(f"const i = document.querySelector(\"{card}\"); return i && i.complete && i.naturalWidth > 0"))
    driver.save_screenshot(os.path.join(shots, "console-gallery.png"))

    session.step = "delete it"
    driver.find_element(By.ID, "delete-identity").click()
    wait.until(EC.alert_is_present()).accept()
    wait.until(EC.invisibility_of_element_located((By.ID, "identity")))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"#gallery-grid .card[data-id='{new_id}']"))
    status, _ = api("GET", f"/v1/identities/{new_id}", key=admin_key)
    check(status == 404, f"{new_id} still answers {status} after the delete")

    session.step = "the model view"
    driver.find_element(By.ID, "gallery-prefix").clear()
    driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=model]").click()
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#model-info dl")))
    status, model = api("GET", "/v1/model")
    shown = driver.find_element(By.ID, "model-info").text
    check(model["id"] in shown, "the model id is not shown")
    whitening = ((model.get("recipe") or {}).get("recipe") or {}).get("whitening")
    check(bool(whitening) == ("whitened" in shown), f"whitening {whitening} but the model view says: {shown}")
    driver.save_screenshot(os.path.join(shots, "console-model.png"))
print("console test passed: verify, search, key, enroll, thumbnail, delete, model; no console errors")
