"""The web console end to end, in headless Chromium (scripts/console-check starts the gateway).

Every scenario signs in as the role it needs, works only through the pages (clicks and typing), and
checks what the page shows and what the API then holds. Every page visited is saved as a screenshot
at desktop width and at a 390 px phone width.
"""
import hashlib
import json
import os
import re
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["CONSOLE_URL"]
TOKEN = os.environ["CONSOLE_TOKEN"]
SHOTS = os.environ.get("CONSOLE_SHOTS", "console-screenshots")
PASSWORD = "a-long-password-for-the-console-1"


def api(method, path, body=None, expect=(200, 201, 202)):
    """The admin API with the bootstrap token: seeding and checking what the console did."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + "/api/v1" + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + TOKEN)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    if status not in expect:
        raise AssertionError(f"{method} {path}: {status} {text}")
    return json.loads(text) if text else None


def browser(width=1280, height=900, phone=False):
    options = webdriver.ChromeOptions()
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}", "--lang=en-US"]:
        options.add_argument(argument)
    if phone:
        # A window cannot be narrower than 500 px; the phone is emulated (viewport and touch).
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1}})
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    return driver


class Console(unittest.TestCase):
    operators = {}

    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        for name, role in [("ada", "admin"), ("mara", "marketer"), ("otto", "analyst")]:
            api("POST", "/operators", {"name": name, "role": role, "password": PASSWORD}, expect=(201, 200, 409))
        cls.driver = browser()
        cls.phone = browser(390, 844, phone=True)
        cls.signed_in = {"driver": None, "phone": None}

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.phone.quit()

    # -- helpers ---------------------------------------------------------------------------------

    def sign_in(self, name, driver=None):
        driver = driver or self.driver
        key = "driver" if driver is self.driver else "phone"
        if self.signed_in[key] == name:
            return
        driver.delete_all_cookies()
        driver.get(BASE + "/console")
        self.assertIn("/console/login", driver.current_url, "without a session the console shows the sign-in page")
        driver.find_element(By.ID, "name").send_keys(name)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form.login button").click()
        self.wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "header.top")))
        self.signed_in[key] = name

    def wait(self, driver=None, seconds=15):
        # A page or list replaced while a condition reads it (a form's script navigating, the tags
        # re-rendered) is read again. Chromedriver reports a node replaced between the find and the read
        # as a plain WebDriverException ("Node with given id does not belong to the document"), not as
        # a stale element; it is retried too, and a condition that never holds still times out.
        return WebDriverWait(driver or self.driver, seconds, ignored_exceptions=[StaleElementReferenceException, WebDriverException])

    def shot(self, name):
        """This page at desktop width, and the same address on the phone (signed in as the same operator)."""
        self.driver.save_screenshot(os.path.join(SHOTS, f"{name}-desktop.png"))
        self.assertLessEqual(self.driver.execute_script("return document.documentElement.scrollWidth"), 1280, f"{name} fits the desktop width")
        self.sign_in(self.signed_in["driver"], self.phone)
        self.phone.get(self.driver.current_url)
        self.phone.save_screenshot(os.path.join(SHOTS, f"{name}-phone.png"))
        self.assertLessEqual(self.phone.execute_script("return document.documentElement.scrollWidth"), 400, f"{name} fits a 390 px phone")

    def text(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def notice(self):
        return self.wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.flash"))).text

    # -- scenarios -------------------------------------------------------------------------------

    def test_a_marketer_finds_a_customer_and_tags_them(self):
        seeded = api("POST", "/events", {"events": [{"id": "console-find-1", "type": "web.visit", "identities": [
            {"type": "email", "value": "li.wei@example.com", "verified": True}, {"type": "phone", "value": "+8613800138001"}]}]})
        customer = seeded["results"][0]["customer"]
        self.sign_in("mara")
        self.driver.get(BASE + "/console/customers")
        self.shot("customers-search")
        box = self.driver.find_element(By.ID, "q")
        box.send_keys("+8613800138001")
        box.send_keys(Keys.ENTER)
        link = self.wait().until(EC.element_to_be_clickable((By.CSS_SELECTOR, f'a[href="/console/customers/{customer}"]')))
        self.assertIn("li.wei@example.com", self.text("table.list"), "the result shows the customer's identities")
        link.click()
        self.wait().until(EC.presence_of_element_located((By.ID, "add-tag"))).send_keys("expo-2026-visitor")
        self.driver.find_element(By.ID, "add-tag").send_keys(Keys.ENTER)
        self.wait().until(EC.text_to_be_present_in_element((By.ID, "tags"), "expo-2026-visitor"))
        self.assertIn("Tag added", self.notice())
        self.assertIn("expo-2026-visitor", api("GET", f"/customers/{customer}")["tags"], "the tag is stored")
        self.shot("customer-360")

        # A bad tag name is refused by the API and shown next to the form, which keeps the input.
        field = self.driver.find_element(By.ID, "add-tag")
        field.send_keys("no spaces allowed")
        field.send_keys(Keys.ENTER)
        error = self.wait().until(EC.visibility_of_element_located((By.CSS_SELECTOR, "form .form-error")))
        self.assertTrue(error.text, "the API's reason is shown")
        self.assertEqual(self.driver.find_element(By.ID, "add-tag").get_attribute("value"), "no spaces allowed")

    def test_a_marketer_builds_an_audience_and_the_count_follows_the_typing(self):
        ids = []
        for i in range(3):
            seeded = api("POST", "/events", {"events": [{"id": f"console-aud-{i}", "type": "web.visit",
                                                          "identities": [{"type": "email", "value": f"aud{i}@example.com", "verified": True}]}]})
            ids.append(seeded["results"][0]["customer"])
        api("POST", "/tags", {"name": "webinar-dec"}, expect=(200, 201))
        api("POST", "/tags/webinar-dec/customers", {"customerIds": ids})
        api("POST", "/tags", {"name": "churned"}, expect=(200, 201))
        api("POST", "/tags/churned/customers", {"customerIds": ids[:1]})
        self.sign_in("mara")
        self.driver.get(BASE + "/console/audiences")
        area = self.driver.find_element(By.ID, "expr")
        count = lambda: self.driver.find_element(By.CSS_SELECTOR, "[data-count]").text
        area.send_keys("webinar-dec")
        self.wait().until(lambda d: count() == "3")
        area.send_keys(" & !churned")
        self.wait().until(lambda d: count() == "2")
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, "[data-sample] a")), 2, "the sample lists who is selected")
        area.send_keys(" & (")
        error = self.wait().until(EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-expr-error]")))
        self.assertRegex(error.text, r"at position \d+", "a broken expression says where")
        self.assertEqual(area.get_attribute("aria-invalid"), "true")
        self.shot("audiences")
        # Saved as a segment: listed, opened again, and a campaign started from it.
        area.clear()
        area.send_keys("webinar-dec & !churned")
        self.driver.find_element(By.CSS_SELECTOR, "form.audience button[type=submit]").click()
        name = self.wait().until(EC.visibility_of_element_located((By.ID, "seg-name")))
        name.send_keys("webinar-loyal")
        self.driver.find_element(By.ID, "seg-desc").send_keys("Came to the December webinar, still with us")
        self.driver.find_element(By.CSS_SELECTOR, "form[data-save-segment] button[type=submit]").click()
        self.wait().until(lambda d: "segment=webinar-loyal" in d.current_url)
        self.assertEqual(api("GET", "/segments/webinar-loyal")["expression"], "webinar-dec & !churned")
        self.wait().until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-count]").text == "2")
        row = self.driver.find_element(By.CSS_SELECTOR, "tr[data-segment=webinar-loyal]")
        self.shot("audience-segment")
        row.find_element(By.PARTIAL_LINK_TEXT, "Campaign").click()
        self.wait().until(lambda d: "/console/campaigns/new" in d.current_url)
        self.assertEqual(self.driver.find_element(By.ID, "expr").get_attribute("value"), "webinar-dec & !churned")

    def seed_expo_visitors(self, tag, n=6, phones=None):
        ids = []
        for i in range(n):
            phone = f"+86139{sum(map(ord, tag)) % 10000:04d}{i:04d}"
            if phones is not None:
                phones.append(phone)
            seeded = api("POST", "/events", {"events": [{"id": f"{tag}-{i}", "type": "expo.scan", "identities": [
                {"type": "phone", "value": phone}]}]})
            customer = seeded["results"][0]["customer"]
            api("PATCH", f"/customers/{customer}", {"consent": {"sms": "granted"}, "profile": {"name": f"Guest {i}"} if i else {}})
            ids.append(customer)
        api("POST", "/tags", {"name": tag}, expect=(200, 201))
        api("POST", f"/tags/{tag}/customers", {"customerIds": ids})
        return ids

    def test_a_marketer_previews_starts_a_sandbox_campaign_watches_it_finish_and_reads_the_report(self):
        phones = []
        self.seed_expo_visitors("expo-dec-sms", phones=phones)
        self.sign_in("mara")
        self.driver.get(BASE + "/console/campaigns")
        self.driver.find_element(By.LINK_TEXT, "New campaign").click()
        self.driver.find_element(By.ID, "c-name").send_keys("Expo reminder")
        self.driver.find_element(By.ID, "expr").send_keys("expo-dec-sms")
        self.wait().until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-count]").text == "6")
        self.driver.find_element(By.ID, "sms-text").send_keys("Hi {{profile.name}}, see you at booth A")
        self.driver.find_element(By.ID, "on-b").click()
        self.driver.find_element(By.ID, "vb").send_keys("B")
        self.driver.find_element(By.ID, "vb-sms").send_keys("{{profile.name}}: booth A, free coffee")
        self.driver.find_element(By.CSS_SELECTOR, "button[data-preview]").click()
        preview = self.wait().until(EC.presence_of_element_located((By.ID, "preview")))
        self.assertEqual(len(preview.find_elements(By.CSS_SELECTOR, "[data-preview-channel]")), 2, "one preview per variant and channel")
        self.assertEqual(self.driver.find_element(By.ID, "c-name").get_attribute("value"), "Expo reminder", "the form keeps what was typed")
        rendered = preview.text
        self.assertTrue("Hi Guest" in rendered or "lacks" in rendered, rendered)
        self.shot("campaign-new-preview")
        self.driver.find_element(By.CSS_SELECTOR, "form.campaign button:not([data-preview])").click()
        self.wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, 'button[data-action="start"]')))
        self.assertIn("Campaign created", self.notice())
        campaign = self.driver.current_url.rsplit("/", 1)[1]
        self.assertEqual(api("GET", f"/campaigns/{campaign}")["state"], "draft")
        self.driver.find_element(By.CSS_SELECTOR, 'button[data-action="start"]').click()
        # The page follows the campaign by itself (polling, then a reload when its state changes).
        state = lambda d: d.execute_script("const e = document.querySelector('[data-state]'); return e && e.dataset.state")
        self.wait(seconds=60).until(lambda d: state(d) == "completed")
        self.assertEqual(self.driver.find_element(By.CSS_SELECTOR, "[data-progress]").get_attribute("value"), "100", "the bar reaches 100%")
        # Guest 0 has no name: the template needs one, so that recipient is skipped with the reason.
        self.assertEqual(self.driver.find_element(By.CSS_SELECTOR, '[data-metric="sent"]').text, "5")
        self.assertEqual(self.driver.find_element(By.CSS_SELECTOR, '[data-metric="skipped"]').text, "1")
        report = self.driver.find_element(By.CSS_SELECTOR, "section.report")
        self.assertTrue(report.find_elements(By.CSS_SELECTOR, "svg.chart"), "the report draws its chart")
        self.assertIn("missing_variable:profile.name", report.text)
        self.shot("campaign-report")
        sandbox = api("GET", "/sandbox/messages?limit=100")
        sent_to = sorted(m["to"] for m in sandbox["messages"] if m["to"] in phones)
        self.assertEqual(sent_to, sorted(phones[1:]), "each named recipient messaged once, in the sandbox")

    def test_an_analyst_sees_no_start_button_and_cannot_start_a_campaign(self):
        self.seed_expo_visitors("expo-dec-analyst", n=1)
        created = api("POST", "/campaigns", {"name": "Analyst cannot", "audience": "expo-dec-analyst", "channels": [{"channel": "sms", "text": "Hi"}]}, expect=(201,))
        self.sign_in("otto")
        self.driver.get(BASE + f"/console/campaigns/{created['id']}")
        self.assertIn("Analyst cannot", self.text("h1"))
        self.assertFalse(self.driver.find_elements(By.CSS_SELECTOR, 'button[data-action="start"]'), "the analyst has no start button")
        self.assertFalse(self.driver.find_elements(By.LINK_TEXT, "New campaign"))
        # The same call, made by the analyst's own browser session, is refused by the API.
        status = self.driver.execute_script("""
            const csrf = document.querySelector('meta[name="csrf"]').content;
            const r = await fetch('/api/v1/campaigns/' + arguments[0] + '/start', {method: 'POST', headers: {'X-CSRF-Token': csrf}});
            return r.status;""", created["id"])
        self.assertEqual(status, 403)
        self.assertEqual(api("GET", f"/campaigns/{created['id']}")["state"], "draft")

    def test_a_marketer_creates_and_activates_the_expo_journey(self):
        self.sign_in("mara")
        self.driver.get(BASE + "/console/journeys")
        self.driver.find_element(By.LINK_TEXT, "New journey").click()
        editor = self.driver.find_element(By.ID, "yaml")
        self.assertIn("Expo 2026", editor.get_attribute("value"), "the editor starts with the expo journey")
        # A mistake first: a wait with a duration that is not ISO 8601. The API's reason is shown; the text stays.
        good = editor.get_attribute("value")
        self.driver.execute_script("arguments[0].value = arguments[1]", editor, good.replace("offset: -P3D", "offset: three days"))
        self.driver.find_element(By.CSS_SELECTOR, "form.editor button").click()
        error = self.wait().until(EC.visibility_of_element_located((By.CSS_SELECTOR, "form .form-error")))
        self.assertIn("wait-3d", error.text + " " + self.driver.find_element(By.ID, "yaml").get_attribute("value"))
        self.assertTrue(error.text, "the validation error is shown")
        self.assertIn("three days", self.driver.find_element(By.ID, "yaml").get_attribute("value"))
        self.shot("journey-new-error")
        self.driver.execute_script("arguments[0].value = arguments[1]", self.driver.find_element(By.ID, "yaml"), good)
        self.driver.find_element(By.CSS_SELECTOR, "form.editor button").click()
        refused = lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, "form .form-error") if e.text and "three days" not in e.text]
        self.wait().until(lambda d: d.find_elements(By.CSS_SELECTOR, 'button[data-action="activate"]') or refused(d))
        self.assertFalse(refused(self.driver), "the expo journey as the editor offers it is accepted")
        self.assertIn("Journey created", self.notice())
        journey = self.driver.current_url.rsplit("/", 1)[1]
        self.assertTrue(self.driver.find_elements(By.CSS_SELECTOR, "svg.flow"), "the flow diagram is drawn")
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, "section table.list tbody tr")), 9, "one row per step")
        self.driver.find_element(By.CSS_SELECTOR, 'button[data-action="activate"]').click()
        self.wait().until(lambda d: d.execute_script("const e = document.querySelector('[data-state]'); return e && e.dataset.state") == "active")
        self.assertEqual(api("GET", f"/journeys/{journey}")["state"], "active")
        self.shot("journey")

    def test_an_admin_replays_a_dead_letter_and_finds_it_in_the_audit_log(self):
        # The SMTP sink refuses reject-* for good: the message is dead-lettered with the server's answer.
        sent = api("POST", "/messages", {"channel": "email", "to": "reject-console@example.com", "subject": "Expo", "text": "See you"}, expect=(202,))
        deadline = time.time() + 30
        letter = None
        while time.time() < deadline and letter is None:
            letter = next((d for d in api("GET", "/deadletters?limit=100")["deadLetters"] if d["messageId"] == sent["id"]), None)
            time.sleep(0.3)
        self.assertIsNotNone(letter, f"the refused message is dead-lettered: {api('GET', '/messages/' + sent['id'])}")
        self.sign_in("ada")
        self.driver.get(BASE + "/console/operations")
        card = self.driver.find_element(By.CSS_SELECTOR, f'[data-dead-letter="{letter["id"]}"]')
        for summary in card.find_elements(By.TAG_NAME, "summary"):
            summary.click()
        self.assertIn("550", card.text, "the provider's answer is shown")
        self.shot("operations-dead-letters")
        card.find_element(By.CSS_SELECTOR, 'button[data-action="replay"]').click()
        self.assertIn("Queued again", self.notice())
        self.driver.find_element(By.LINK_TEXT, "Audit log").click()
        audit = self.wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "table[data-audit]")))
        first = audit.find_element(By.CSS_SELECTOR, "tbody tr").text
        self.assertIn("operator:ada", first, "newest first: the replay, by the admin")
        self.assertIn(f"/api/v1/deadletters/{{id}}/replay", first)
        self.assertIn(letter["id"], first)
        self.shot("operations-audit")
        for page in ["/console/operations/keys", "/console/operations/system", "/console"]:
            self.driver.get(BASE + page)
            if page.endswith("/system"):
                # The Redis the gateway runs on, node by node (scrmctl redis status shows the same).
                redis = self.driver.find_element(By.CSS_SELECTOR, "[data-redis]")
                node = redis.find_element(By.CSS_SELECTOR, "tbody tr[data-node]")
                self.assertIn("standalone", node.text)
                self.assertIn("up", node.text)
            self.shot("operations-" + page.strip("/").replace("/", "-"))

    def test_a_marketer_imports_a_csv_after_a_dry_run_and_sees_the_rejected_lines(self):
        rows = ["phone,email,profile.city,tags"] + [f"+8613700{i:06d},imp{i}@example.com,Shanghai,expo-import" for i in range(40)]
        rows += ["not-a-phone,,Beijing,expo-import", "+8613799999999,not-an-email,,expo-import"]
        path = os.path.join(tempfile.mkdtemp(), "visitors.csv")
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        self.sign_in("mara")
        self.driver.get(BASE + "/console/imports")
        self.driver.find_element(By.ID, "csv").send_keys(path)
        self.driver.find_element(By.CSS_SELECTOR, "button[data-dry-run]").click()
        dry = self.wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "[data-import-result] [data-dry-run]")))
        self.assertIn("valid 40", dry.text)
        self.assertIn("rejected 2", dry.text)
        self.assertEqual(api("GET", "/tags/expo-import/customers", expect=(404,)), {"error": {"code": "not_found", "message": "tag not found"}}, "a dry run stores nothing")
        self.shot("imports-dry-run")
        self.driver.find_element(By.CSS_SELECTOR, "button[data-import-now]").click()
        self.wait().until(EC.url_contains("/console/imports/"))
        state = lambda d: d.execute_script("const e = document.querySelector('[data-state]'); return e && e.dataset.state")
        self.wait(seconds=60).until(lambda d: state(d) == "completed")
        rejected = self.driver.find_element(By.CSS_SELECTOR, "table[data-rejections]").text
        self.assertIn("line 42", rejected)
        self.assertIn("line 43", rejected)
        self.assertEqual(api("GET", "/tags/expo-import/customers?limit=1000")["count"], 40, "the valid rows are customers")
        self.shot("import-job")

    def test_b_a_marketer_makes_a_booth_qr_code_and_its_welcome(self):
        self.sign_in("mara")
        self.driver.get(BASE + "/console/channels?account=demo")
        self.driver.find_element(By.ID, "qr-scene").send_keys("console-booth-d")
        self.driver.find_element(By.ID, "qr-tags").send_keys("source:expo-2026, booth:d")
        self.driver.find_element(By.ID, "qr-owner").send_keys("mara")
        self.driver.find_element(By.CSS_SELECTOR, "form[data-qr-create] button[type=submit]").click()
        self.assertIn("QR code created", self.notice())
        row = self.wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-scene="console-booth-d"]')))
        image = row.find_element(By.CSS_SELECTOR, "img.qr")
        self.wait().until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0)
        # A picture for replies: uploaded as WeChat media (the sandbox here), its id shown to paste.
        picture = os.path.join(tempfile.mkdtemp(), "floor-plan.png")
        with open(picture, "wb") as f:
            f.write(bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(200))
        self.driver.find_element(By.ID, "media-file").send_keys(picture)
        self.driver.find_element(By.CSS_SELECTOR, "form[data-media] button[type=submit]").click()
        media = self.wait().until(EC.presence_of_element_located((By.CSS_SELECTOR, "[data-media-result] code")))
        self.assertTrue(media.text.startswith("sandbox-image-"), media.text)
        # The booth's own welcome, saved as the API's JSON.
        rules = {"welcome": {"type": "text", "text": "Welcome!"},
                 "sceneWelcomes": {"console-booth-d": {"type": "text", "text": "You are at booth D"}}}
        box = self.driver.find_element(By.ID, "replies-json")
        box.clear()
        box.send_keys(json.dumps(rules))
        earlier = self.driver.find_element(By.CSS_SELECTOR, "p.flash")
        self.driver.find_element(By.CSS_SELECTOR, "form[data-replies] button[type=submit]").click()
        self.wait().until(EC.staleness_of(earlier))  # the same page again, with the new notice
        self.assertIn("Replies saved", self.notice())
        # A visitor scans it and follows: counted on the page, tagged and owned.
        now = int(time.time())
        self.wechat_callback(f"<xml><ToUserName><![CDATA[gh_demo]]></ToUserName><FromUserName><![CDATA[oBoothD1]]></FromUserName>"
                             f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"
                             f"<EventKey><![CDATA[qrscene_console-booth-d]]></EventKey></xml>")
        self.driver.get(BASE + "/console/channels?account=demo")
        cells = self.driver.find_elements(By.CSS_SELECTOR, 'tr[data-scene="console-booth-d"] td')
        self.assertEqual([c.text for c in cells[3:7]], ["1", "1", "0", "1"], "scans, follows, unfollows, net")
        customer = api("GET", "/customers/lookup?account=demo&openid=oBoothD1")
        self.assertEqual(customer["owner"], "mara")
        self.assertIn("booth:d", customer["tags"])
        self.shot("channels")

    def test_c_a_marketer_replies_to_a_follower_inside_the_window(self):
        # The follower writes: the customer's page shows the conversation with a reply box.
        now = int(time.time())
        self.wechat_callback(f"<xml><ToUserName><![CDATA[gh_demo]]></ToUserName><FromUserName><![CDATA[oReplyC1]]></FromUserName>"
                             f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[Where is booth C?]]></Content>"
                             f"<MsgId>{now}01</MsgId></xml>")
        customer = api("GET", "/customers/lookup?account=demo&openid=oReplyC1")["id"]
        self.sign_in("mara")
        self.driver.get(f"{BASE}/console/customers/{customer}")
        self.assertIn("Where is booth C?", self.text("#h-sessions + h3 + ol"), "the conversation is shown")
        box = self.driver.find_element(By.CSS_SELECTOR, "form.reply textarea[name=text]")
        box.send_keys("Hall 2, next to the entrance")
        self.driver.find_element(By.CSS_SELECTOR, "form.reply button[type=submit]").click()
        self.assertIn("Reply queued", self.notice())
        self.driver.execute_script("document.getElementById('h-sessions').scrollIntoView()")
        self.shot("customer-reply")
        # It went out as a customer-service message (the sandbox records what WeChat would get).
        deadline = time.time() + 15
        while time.time() < deadline:
            sent = [m for m in api("GET", "/sandbox/messages?channel=wechat")["messages"] if m["to"] == "oReplyC1"]
            if sent:
                break
            time.sleep(0.2)
        self.assertTrue(sent, "the reply reached the sandbox")
        self.assertEqual(sent[0]["renders"], "wechat-custom")
        self.assertIn("Hall 2, next to the entrance", sent[0]["request"])

    def wechat_callback(self, xml):
        """A plain-mode callback to the demo account, signed as WeChat signs it (SHA-1 of the sorted token, timestamp, nonce)."""
        timestamp, nonce = str(int(time.time())), "n" + str(time.time_ns())
        signature = hashlib.sha1("".join(sorted(["scrmdemotoken", timestamp, nonce])).encode()).hexdigest()
        request = urllib.request.Request(f"{BASE}/webhooks/wechat/demo?signature={signature}&timestamp={timestamp}&nonce={nonce}",
                                         data=xml.encode(), method="POST", headers={"Content-Type": "text/xml"})
        with urllib.request.urlopen(request, timeout=10) as response:
            self.assertEqual(response.status, 200)

    def test_z_the_dashboard_shows_today_and_follows_it(self):
        self.sign_in("mara")
        self.driver.get(BASE + "/console")
        tile = lambda: self.driver.execute_script("const e = document.querySelector('[data-tile=inbound]'); return e && e.textContent")
        before = int(tile().replace(",", ""))
        for i in range(3):
            now = int(time.time())
            self.wechat_callback(f"<xml><ToUserName><![CDATA[gh_demo]]></ToUserName><FromUserName><![CDATA[oDash{i}]]></FromUserName>"
                                 f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>")
        # Counted in memory, added to Redis within seconds, redrawn by the page every 5 s: no reload.
        self.wait(seconds=30).until(lambda d: int(tile().replace(",", "")) >= before + 3)
        followers = self.driver.find_element(By.CSS_SELECTOR, "[aria-labelledby=h-followers]").text
        self.assertIn("demo", followers)
        sends = self.driver.find_element(By.CSS_SELECTOR, "[aria-labelledby=h-sends]").text
        self.assertIn("sms", sends, "the campaign's sends are counted by channel")
        self.assertTrue(self.driver.find_elements(By.CSS_SELECTOR, "svg.spark"), "sparklines are drawn")
        self.shot("dashboard")
        # The operator switches the language; every page follows (a cookie).
        from selenium.webdriver.support.ui import Select
        Select(self.driver.find_element(By.ID, "pref-lang")).select_by_value("zh-Hans")
        self.wait().until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "概览")
        self.driver.get(BASE + "/console/campaigns")
        self.assertEqual(self.driver.find_element(By.TAG_NAME, "h1").text, "营销活动")
        self.shot("campaigns-zh")
        Select(self.driver.find_element(By.ID, "pref-lang")).select_by_value("ja")
        self.wait().until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "キャンペーン")
        Select(self.driver.find_element(By.ID, "pref-lang")).select_by_value("en")
        self.wait().until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Campaigns")
        self.shot("campaigns")
        self.driver.get(BASE + "/console/journeys")
        self.shot("journeys")
        # Signed out, every page is the sign-in page.
        self.driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
        self.wait().until(EC.url_contains("/console/login"))
        self.signed_in["driver"] = None
        self.driver.get(BASE + "/console/campaigns")
        self.assertIn("/console/login", self.driver.current_url)
        self.driver.save_screenshot(os.path.join(SHOTS, "login-desktop.png"))
        self.phone.delete_all_cookies()
        self.signed_in["phone"] = None
        self.phone.get(BASE + "/console/login")
        self.phone.save_screenshot(os.path.join(SHOTS, "login-phone.png"))


if __name__ == "__main__":
    unittest.main()
