"""Real-browser check of the dashboard (#17): headless Chromium through /usr/bin/chromedriver.

Against a running release gateway (GW, KEY from the environment) and a real webhook receiver
started here (http.server on 127.0.0.1 port 0: 500 until told otherwise, then 200; it records
every body). Sets up a session whose webhook gives up after one retry and a group with two
participants through the API, then, each step asserted: a wrong key shows the API's 401 message;
the right key shows the session and its group; the group's participants with roles and pn and
its invite link; a dead delivery with its last error; retry once the receiver answers 200 takes
it out of the dead list and the receiver gets it; a rename made through the API appears in the
events tail, filtered and expandable; a restart goes through the confirmation dialog; Tab
reaches real controls with a visible focus and Enter opens a tab; a phone-sized window has no
horizontal overflow in any view; and the browser log has no error. Screenshots:
target/dashboard-*.png.
"""

import http.server
import json
import os
import sys
import threading
import urllib.request

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from chromium import chromium
from selenium.webdriver.support.ui import Select, WebDriverWait

GW = os.environ["GW"]
KEY = os.environ["KEY"]
SHOTS = os.environ.get("SHOTS", "target")
SESSION = "dash"
SUBJECT = "Ops <b>team</b> & co"
RENAMED = "Ops renamed <img src=x onerror=alert(1)>"
MEMBERS = ["12025550101@c.us", "12025550102@c.us"]


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: 500 while `failing` is set, then 200; keeps every body it got."""

    failing = threading.Event()
    got = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with Receiver.lock:
            Receiver.got.append(json.loads(body))
        status = 500 if Receiver.failing.is_set() else 200
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

    @classmethod
    def ids(cls):
        with cls.lock:
            return [e.get("id") for e in cls.got]


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(GW + path, data=data, method=method,
                                 headers={"X-Api-Key": KEY, "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def browser():
    return chromium("1280,1000", logs=True)


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"  ok: {what}")


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, f"dashboard-{name}.png"))


def set_up(hook_url):
    api("POST", "/api/sessions", {"name": SESSION, "config": {"webhooks": [{
        "url": hook_url, "events": ["*"],
        "retries": {"policy": "constant", "delaySeconds": 0, "attempts": 1}}]}})
    group = api("POST", f"/api/{SESSION}/groups",
                {"name": SUBJECT, "participants": [{"id": m} for m in MEMBERS]})
    return group["id"]


def key_steps(driver, wait):
    """No key, then a wrong one: the API's own 401 message is shown; then the right key."""
    driver.get(GW + "/dashboard")
    notice = wait.until(ec.visibility_of_element_located((By.ID, "notice")))
    wait.until(lambda d: "send the API key" in notice.text)
    field = driver.find_element(By.ID, "key-input")
    field.send_keys("not-the-key")
    driver.find_element(By.ID, "key-save").click()
    wait.until(lambda d: "the API key is wrong" in notice.text)
    check("401" in notice.text and "the API key is wrong" in notice.text,
          f"a wrong key shows the API's 401 message: {notice.text!r}")
    shot(driver, "wrong-key")
    # The only errors so far are the refused requests themselves, logged by Chromium.
    errors = severe(driver)
    check(all(e["source"] == "network" and "401" in e["message"] for e in errors),
          f"the browser logged only the two 401 answers ({len(errors)} entries)")
    driver.find_element(By.ID, "key-input").send_keys(KEY)
    driver.find_element(By.ID, "key-save").click()
    wait.until(ec.invisibility_of_element_located((By.ID, "notice")))


def keyboard_steps(driver, wait, gid):
    """Tab moves through real controls, the focused one outlined; Enter on a tab opens it."""
    driver.find_element(By.ID, "key-input").click()
    for want in ["key-save", "key-forget", "tab-sessions", "tab-groups"]:
        driver.switch_to.active_element.send_keys(Keys.TAB)
        focused = driver.switch_to.active_element
        check(focused.get_attribute("id") == want, f"Tab reaches #{want}")
        style = driver.execute_script(
            "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
        check(style[0] == "solid" and style[1] != "0px", f"#{want} shows its focus: {style}")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"section[data-group='{gid}']"))
    check(True, "Enter on the Groups tab shows the groups")


def session_cells(driver):
    """The session's row, found afresh: the view redraws it when the session changes."""
    row = driver.find_element(By.CSS_SELECTOR, f"#sessions-table tr[data-session='{SESSION}']")
    return {td.get_attribute("data-label"): td.text for td in row.find_elements(By.TAG_NAME, "td")}


def sessions_steps(driver, wait):
    wait.until(lambda d: session_cells(d)["Groups"] == "1")
    cells = session_cells(driver)
    check(cells["Status"] == "WORKING", "the session is listed as WORKING")
    check("@c.us" in cells["Account"], f"its account is shown: {cells['Account']!r}")
    check("127.0.0.1" in cells["Webhooks"], "its webhook is shown")
    for verb in ["start", "stop", "restart"]:
        driver.find_element(By.CSS_SELECTOR,
                            f"tr[data-session='{SESSION}'] button[data-action='{verb}']")
    check(True, "start, stop and restart are real buttons")
    shot(driver, "sessions")


def groups_steps(driver, wait, gid):
    sessions_steps(driver, wait)
    driver.find_element(By.CSS_SELECTOR, f"tr[data-session='{SESSION}'] a[href^='#groups/']").click()
    card = wait.until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, f"section[data-group='{gid}']")))
    check(card.find_element(By.TAG_NAME, "h3").text == SUBJECT,
          "the group's subject is shown as text, markup and all")
    check("3 members" in card.text and "superadmin" in card.text, "its size and the session's role")
    badges = card.find_element(By.CSS_SELECTOR, "[data-part='settings']").text
    check("admins add" in badges and "everyone sends" in badges, f"its settings: {badges!r}")
    card.find_element(By.XPATH, ".//button[normalize-space()='Participants']").click()
    rows = wait.until(lambda d: card.find_elements(By.CSS_SELECTOR, "tr[data-participant]"))
    roles = {r.get_attribute("data-participant"): r.find_elements(By.TAG_NAME, "td") for r in rows}
    check(len(roles) == 3, "three participants")
    for m in MEMBERS:
        check(roles[m][1].text == m and roles[m][2].text == "participant",
              f"{m}: its pn and role participant")
    check(sum(1 for r in roles.values() if r[2].text == "superadmin") == 1, "one superadmin")
    card.find_element(By.XPATH, ".//button[normalize-space()='Invite link']").click()
    link = wait.until(lambda d: card.find_element(By.CSS_SELECTOR, ".invite a"))
    code = api("GET", f"/api/{SESSION}/groups/{gid}/invite-code")
    check(link.text == f"https://chat.whatsapp.com/{code}", "the invite link of the group")
    shot(driver, "groups")


def dead_row(driver, event):
    rows = driver.find_elements(By.CSS_SELECTOR, "table[data-list='dead'] tr[data-delivery]")
    for r in rows:
        if r.find_element(By.CSS_SELECTOR, "td[data-label='Event']").text == event:
            return r
    return None


def deliveries_steps(driver, wait):
    """With the receiver failing, a dead delivery with its error; retried once it answers 200."""
    driver.find_element(By.ID, "tab-deliveries").click()
    wait.until(lambda d: dead_row(d, "group.v2.join") is not None)
    row = dead_row(driver, "group.v2.join")
    cells = {td.get_attribute("data-label"): td.text for td in row.find_elements(By.TAG_NAME, "td")}
    check(cells["Last error"] == "HTTP 500", f"a dead delivery with its last error: {cells!r}")
    check(cells["Attempts"] == "2", "tried once and retried once")
    event_id = cells["Event id"]
    dead = lambda d: d.find_element(By.CSS_SELECTOR, "[data-count='dead']").text  # noqa: E731
    wait.until(lambda d: dead(d) == str(len(
        api("GET", f"/api/{SESSION}/webhooks/deliveries?state=dead"))))
    before = int(dead(driver))
    check(before >= 2, f"the dead count is shown: {before}")
    shot(driver, "deliveries")
    Receiver.failing.clear()
    row.find_element(By.CSS_SELECTOR, "button[data-action='retry']").click()
    wait.until(lambda d: event_id in Receiver.ids())
    check(True, f"the receiver got {event_id} once retried")
    wait.until(lambda d: dead_row(d, "group.v2.join") is None)
    check(True, "the row left the dead list")
    wait.until(lambda d: dead(d) == str(before - 1))
    check(True, f"the dead count went from {before} to {before - 1}")
    wait.until(lambda d: all(x["eventId"] != event_id for x in api(
        "GET", f"/api/{SESSION}/webhooks/deliveries?state=pending")))
    check(True, "and it is not pending either: delivered")
    shot(driver, "deliveries-retried")


def visible_events(driver):
    return [li for li in driver.find_elements(By.CSS_SELECTOR, "#events-list > li")
            if li.is_displayed()]


def events_steps(driver, wait, gid):
    """A change made through the API appears in the tail; filters and the JSON view work."""
    driver.find_element(By.ID, "tab-events").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events-list li[data-event='group.v2.join']"))
    api("PUT", f"/api/{SESSION}/groups/{gid}/subject", {"subject": RENAMED})
    update = f"#events-list li[data-event='group.v2.update'][data-group='{gid}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, update))
    check(True, "the rename appeared in the events tail")
    Select(driver.find_element(By.ID, "filter-event")).select_by_value("group.v2.update")
    shown = visible_events(driver)
    check(len(shown) == 1 and shown[0].get_attribute("data-event") == "group.v2.update",
          "filtered by event name: only the update")
    shown[0].find_element(By.TAG_NAME, "summary").click()
    pre = wait.until(lambda d: shown[0].find_element(By.TAG_NAME, "pre"))
    wait.until(lambda d: pre.is_displayed())
    envelope = json.loads(pre.text)
    check(envelope["payload"]["group"]["subject"] == RENAMED,
          "its envelope opens as JSON with the new subject")
    shot(driver, "events")
    Select(driver.find_element(By.ID, "filter-event")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-group")).select_by_value(gid)
    shown = visible_events(driver)
    check(shown and all(li.get_attribute("data-group") == gid for li in shown),
          f"filtered by group: {len(shown)} events of the group, no session.status")


def restart_steps(driver, wait):
    """Restart asks first: Cancel does nothing, Confirm restarts and says so."""
    driver.find_element(By.ID, "tab-sessions").click()
    wait.until(lambda d: session_cells(d)["Status"] == "WORKING")
    restart = f"tr[data-session='{SESSION}'] button[data-action='restart']"
    before = len(api("GET", f"/api/{SESSION}/events?limit=1000"))
    driver.find_element(By.CSS_SELECTOR, restart).click()
    dialog = wait.until(ec.visibility_of_element_located((By.ID, "confirm")))
    check(f'"{SESSION}"' in dialog.text, f"a confirmation names the session: {dialog.text!r}")
    driver.find_element(By.ID, "confirm-cancel").click()
    wait.until(ec.invisibility_of_element_located((By.ID, "confirm")))
    check(len(api("GET", f"/api/{SESSION}/events?limit=1000")) == before, "Cancel changed nothing")
    driver.find_element(By.CSS_SELECTOR, restart).click()
    wait.until(ec.visibility_of_element_located((By.ID, "confirm")))
    driver.find_element(By.ID, "confirm-ok").click()
    notice = wait.until(ec.visibility_of_element_located((By.ID, "notice")))
    wait.until(lambda d: "is WORKING" in notice.text)
    check(len(api("GET", f"/api/{SESSION}/events?limit=1000")) > before,
          f"Confirm restarted the session: {notice.text!r}")


def phone_steps(driver, wait, gid):
    """A phone-sized window: every view fits the width (tables become cards)."""
    driver.set_window_size(390, 844)
    views = [("sessions", f"#sessions-table tr[data-session='{SESSION}']"),
             (f"groups/{SESSION}", f"section[data-group='{gid}']"),
             (f"deliveries/{SESSION}", "table[data-list='dead'] tr[data-delivery]"),
             (f"events/{SESSION}", "#events-list li")]
    for view, ready in views:
        driver.get(f"{GW}/dashboard#{view}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
        sizes = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        check(sizes[0] <= sizes[1], f"#{view}: no horizontal overflow on a phone: {sizes}")
        shot(driver, "phone-" + view.split("/")[0])
        if view.startswith("deliveries"):
            wait.until(lambda d: d.find_element(
                By.CSS_SELECTOR, "[data-count='pending']").text == "0")
            pending = driver.find_element(By.CSS_SELECTOR, "table[data-list='pending']")
            check(not pending.is_displayed(), "an empty list of pending deliveries is not shown")


def main() -> int:
    Receiver.failing.set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gid = set_up(f"http://127.0.0.1:{server.server_address[1]}/hook")
    driver = browser()
    wait = WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException])
    try:
        key_steps(driver, wait)
        groups_steps(driver, wait, gid)
        deliveries_steps(driver, wait)
        events_steps(driver, wait, gid)
        restart_steps(driver, wait)
        keyboard_steps(driver, wait, gid)
        phone_steps(driver, wait, gid)
        errors = severe(driver)
        check(not errors, f"no error in the browser log: {errors}")
        print("dashboard: 1 passed, 0 failed")
        return 0
    except Exception:
        shot(driver, "failure")
        for e in driver.get_log("browser"):
            print("  browser:", e)
        raise
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
