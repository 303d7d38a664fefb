#!/usr/bin/env python3
"""The web console with a face model, in a real browser (headless Chromium through Selenium):
a photo of two people searched shows a box on each face and a card per face, and clicking a
face shows that face's matches; verify draws the faces of both photos and compares the one
clicked; choosing enrollment photos shows the face each would store, or why it would be
refused. Every answer shown is checked against the API's own answer for the same request,
and the browser's console must hold no error.

Run by Tests/EndToEndTests/FaceTests.swift against a server of dlib's face model in which
the two people of GROUP are enrolled (the larger as LARGE_ID, the smaller as SMALL_ID):
  console_faces_test.py BASE_URL ADMIN_KEY GROUP SMALL_CROP LARGE_ID SMALL_ID SCREENSHOT_DIR
SMALL_CROP is a photo of the smaller face alone. Exit status 0 when every check holds.
"""
import os
import sys

from console_test_support import api_call, browser_session, check
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

base, admin_key, group, small, large_id, small_id, shots = sys.argv[1:8]
group, small = os.path.abspath(group), os.path.abspath(small)
os.makedirs(shots, exist_ok=True)


def api(method, path, fields=None, files=None, key=None):
    return api_call(base, method, path, fields, files, key)


def top_match():
    return driver.find_element(By.CSS_SELECTOR, "#face-detail .matches li strong").text


with browser_session(shots, "console-faces-test") as session:
    driver, wait = session.driver, session.wait
    session.step = "load the page"
    driver.get(base + "/")
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#tabs button[data-view=search]")))

    session.step = "search a photo of two people"
    driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=search]").click()
    driver.find_element(By.CSS_SELECTOR, "#search-image input").send_keys(group)
    wait.until(EC.element_to_be_clickable((By.ID, "search-run"))).click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#search-result .faces .facebox")) == 2)
    status, expected = api("POST", "/v1/search?k=5", files={"image": group})
    check(status == 200 and len(expected["faces"]) == 2, f"search API {status} {expected}")
    cards = driver.find_elements(By.CSS_SELECTOR, "#search-result .facecards li")
    check(len(cards) == 2, f"{len(cards)} face cards for 2 faces")
    for card, face in zip(cards, expected["faces"]):
        check(face["decision"] in card.text and face["matches"][0]["identity"] in card.text,
              f"card {card.text!r} does not say {face['decision']} {face['matches'][0]['identity']}")
    check(top_match() == expected["faces"][0]["matches"][0]["identity"] == large_id, f"face 1 shows {top_match()!r}")
    # The boxes sit where the API's boxes are, scaled to the picture as shown.
    geometry = driver.execute_script("""
        const img = document.querySelector('#search-result .faces img');
        const box = document.querySelector('#search-result .facebox[data-face="1"]').getBoundingClientRect();
        const pic = img.getBoundingClientRect();
        return [(box.left - pic.left) * img.naturalWidth / pic.width, (box.top - pic.top) * img.naturalHeight / pic.height];""")
    second = expected["faces"][1]["box"]
    check(abs(geometry[0] - second["left"]) < 3 and abs(geometry[1] - second["top"]) < 3, f"face 2's box drawn at {geometry}, API {second}")

    session.step = "click the second face"
    driver.find_element(By.CSS_SELECTOR, "#search-result .facebox[data-face='1']").click()
    wait.until(lambda d: top_match() == expected["faces"][1]["matches"][0]["identity"])
    check(top_match() == small_id, f"face 2 shows {top_match()!r}, expected {small_id}")
    check("chosen" in cards[1].get_attribute("class"), "the second card is not marked as chosen")
    driver.save_screenshot(os.path.join(shots, "console-faces-search.png"))

    session.step = "verify the second face of the group against its crop"
    driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=verify]").click()
    driver.find_element(By.CSS_SELECTOR, "#verify-a input").send_keys(group)
    driver.find_element(By.CSS_SELECTOR, "#verify-b input").send_keys(small)
    wait.until(EC.element_to_be_clickable((By.ID, "verify-run"))).click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#verify-result .faces .facebox")) == 3)
    check("face 1 (the largest) compared" in driver.find_element(By.ID, "verify-result").text, "the summary does not say the largest face was compared")
    driver.find_element(By.CSS_SELECTOR, "#verify-result .faces .facebox[data-face='1']").click()
    wait.until(lambda d: "face 2 compared" in d.find_element(By.ID, "verify-result").text)
    status, expected = api("POST", "/v1/verify", fields={"face1": "1"}, files={"image1": group, "image2": small})
    verdict = driver.find_element(By.CSS_SELECTOR, "#verify-result .verdict").text
    check(status == 200 and expected["match"] and verdict.startswith("Match"), f"verdict {verdict!r}, API {status} {expected}")
    check(f"{expected['distance']:.3f}" in driver.find_element(By.ID, "verify-result").text, "the distance shown is not the API's")
    driver.save_screenshot(os.path.join(shots, "console-faces-verify.png"))

    session.step = "enrollment shows the face it would store"
    driver.find_element(By.ID, "key").send_keys(admin_key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    driver.find_element(By.CSS_SELECTOR, "#tabs button[data-view=gallery]").click()
    wait.until(EC.visibility_of_element_located((By.ID, "gallery-open")))
    driver.find_element(By.ID, "gallery-new").click()
    driver.find_element(By.ID, "enroll-images").send_keys(group)
    refused = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#enroll-preview figure.refused figcaption"))).text
    check("2 faces" in refused, f"the group photo's preview says {refused!r}")
    driver.find_element(By.ID, "enroll-images").send_keys(small)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#enroll-preview figure.ok"))
    stored = driver.find_element(By.CSS_SELECTOR, "#enroll-preview figure.ok")
    check("the face to be stored" in stored.text and len(stored.find_elements(By.CSS_SELECTOR, ".facebox")) == 1, f"preview {stored.text!r}")
    driver.save_screenshot(os.path.join(shots, "console-faces-enroll.png"))
print("console faces test passed: per-face search, pick a face, verify a chosen face, enrollment preview; no console errors")
