"""The pages in a real browser: Debian's headless Chromium, driven by Selenium through
chromium-driver (no browser is downloaded), against the site through nginx on each host
(uWSGI on Debian 12, Gunicorn on Debian 13). Upload obama2.jpg with the form using the keyboard, see Obama first beside the face
from the photo, open the cast and a member, send a photo with no face; at a desktop's and a
phone's width. Screenshots go to screenshots/ (gitignored; the Gunicorn host's to
screenshots/gunicorn/) for people to look at."""

import base64
import io
import os
import pathlib

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# Waits for the page after a form's submit: the old page's heading may go stale mid-check.
NAVIGATING = (StaleElementReferenceException,)

ROOT = pathlib.Path(__file__).resolve().parents[3]
SHOTS = pathlib.Path(os.environ.get("FACE_REC_SCREENSHOTS", ROOT / "screenshots"))
DESKTOP, PHONE, SMALL_PHONE = (1280, 900), (390, 844), (360, 740)


@pytest.fixture(scope="module")
def browser(server):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    # --hide-scrollbars: as on a phone, where scrollbars overlay the page; a desktop's 15 px
    # scrollbar would narrow the layout and crop the screenshots' right edge.
    for argument in ("--headless=new", "--hide-scrollbars", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_window_size(*DESKTOP)
    driver.face_rec_shots = SHOTS if server.name == "uwsgi" else SHOTS / server.name
    driver.face_rec_shots.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shoot(driver, name, size=DESKTOP):
    """A whole-page screenshot at this window size (Chromium's own, beyond the viewport)."""
    driver.set_window_size(*size)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (driver.face_rec_shots / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
    driver.set_window_size(*DESKTOP)


def images_loaded(driver):
    """Every <img> on the page decoded (a broken thumbnail has naturalWidth 0)."""
    return driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 40), i.complete && i.naturalWidth > 0])")


def assert_fits_phones(driver):
    """No horizontal scrolling at a phone's width, nor at a small phone's."""
    widths = {}
    for size in (PHONE, SMALL_PHONE):
        driver.set_window_size(*size)
        widths[size[0]] = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    driver.set_window_size(*DESKTOP)
    assert all(scroll <= client for scroll, client in widths.values()), widths


def test_upload_with_the_keyboard_and_see_obama_first(browser, base_url, photos):
    browser.get(base_url + "/")
    shoot(browser, "1-home")
    shoot(browser, "1-home-phone", PHONE)
    def press(*keys):  # as a keyboard does: to whatever has the focus
        ActionChains(browser).send_keys(*keys).perform()

    # The first Tab stop is the skip link.
    press(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    # A file is chosen in the system's dialog, which a test cannot drive: the path goes in
    # directly. From the file field on: Tab to the cast list, pick the cast by typing, Tab to
    # the button, Enter.
    file_field = browser.find_element(By.NAME, "image")
    file_field.send_keys(str(photos / "obama2.jpg"))
    browser.execute_script("arguments[0].focus()", file_field)
    press(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("name") == "cast"
    press("Presidents")
    press(Keys.TAB)
    assert browser.switch_to.active_element.text == "Match"
    press(Keys.ENTER)
    WebDriverWait(browser, 60, ignored_exceptions=NAVIGATING).until(lambda d: "found" in d.find_element(By.TAG_NAME, "h1").text)
    face = browser.find_element(By.CSS_SELECTOR, "section.face")
    assert face.find_element(By.CSS_SELECTOR, "img.crop").get_attribute("src").startswith("data:image/jpeg")
    first = face.find_element(By.CSS_SELECTOR, "ol.matches li")
    assert "Barack Obama" in first.text and "likely match" in first.text
    assert first.find_element(By.TAG_NAME, "img").get_attribute("src").endswith("/thumbs/presidents/obama/obama.jpg.webp")
    assert all(ok for _, ok in images_loaded(browser)), images_loaded(browser)
    assert_fits_phones(browser)
    shoot(browser, "2-result")
    shoot(browser, "2-result-phone", PHONE)


def test_browse_the_cast_and_a_member(browser, base_url):
    browser.get(base_url + "/")
    browser.find_element(By.LINK_TEXT, "Casts").click()
    assert_fits_phones(browser)
    shoot(browser, "3-casts-phone", PHONE)
    browser.find_element(By.LINK_TEXT, "Presidents").click()
    cards = browser.find_elements(By.CSS_SELECTOR, "ul.cards li")
    assert {card.find_element(By.TAG_NAME, "a").text for card in cards} == {"Barack Obama", "Joe Biden"}
    assert all(ok for _, ok in images_loaded(browser)), images_loaded(browser)
    assert all("/thumbs/" in card.find_element(By.TAG_NAME, "img").get_attribute("src") for card in cards)
    assert_fits_phones(browser)
    shoot(browser, "3-cast")
    shoot(browser, "3-cast-phone", PHONE)
    browser.find_element(By.LINK_TEXT, "Joe Biden").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Joe Biden"
    assert all(ok for _, ok in images_loaded(browser)), images_loaded(browser)
    assert_fits_phones(browser)
    shoot(browser, "4-member")
    shoot(browser, "4-member-phone", PHONE)


def test_a_photo_with_no_face_shows_the_error_page(browser, base_url, tmp_path):
    blank = tmp_path / "wall.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 190, 170)).save(buffer, "JPEG")
    blank.write_bytes(buffer.getvalue())
    browser.get(base_url + "/")
    browser.find_element(By.NAME, "image").send_keys(str(blank))
    browser.find_element(By.CSS_SELECTOR, "form.upload button").click()
    WebDriverWait(browser, 60, ignored_exceptions=NAVIGATING).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "No face found")
    assert "(HTTP 422)" in browser.find_element(By.CSS_SELECTOR, "p.error").text
    shoot(browser, "5-no-face")
