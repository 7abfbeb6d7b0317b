#!/usr/bin/python3
"""The dashboard in a real headless Chromium (docs/dashboard.md).

Starts its own redis-server on a free port, seeds two queues forq does not consume (so nothing
runs the seeded jobs away), starts `forq serve` twice (one with an api_token, one with --ui
read-only) and drives Debian's chromium through chromedriver and python3-selenium:

  the overview shows the seeded queues, their counts and their last hour by the minute (jobs
  and pick-up latency, drawn); a job is found by id; pause and resume
  change the queue in Redis; a bulk retry of two selected dead jobs moves those two back and
  nothing else, and so does a retry of the dead jobs matching a filter; the token is asked for once and a wrong one is refused in words; a read-only
  dashboard shows no action and refuses one a page sends anyway; a cross-origin POST is refused;
  the files carry the security headers and an ETag; a queue, a job id and a schedule with every
  character they may have open from the page (links, the Find box, Pause/Resume, Run now); lists
  show a line of a 200 KB result or a 2 KiB error (the API sends 300 bytes) and the job page all
  of it; text that would be script as HTML runs nothing; a page that fails takes the previous
  page's place; the icon is served.

Run: dashboard_test.py FORQ_BINARY [SCREENSHOT_DIR]. With SCREENSHOT_DIR, a PNG of each page is
written there (scripts/screenshots.sh).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import redis
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

FORQ = sys.argv[1] if len(sys.argv) > 1 else "build/forq"
SHOTS = sys.argv[2] if len(sys.argv) > 2 else ""
TOKEN = "test-token-0123456789abcdef"
# Names and ids with every character they may have (queues and schedules: A-Z a-z 0-9 _ . : -;
# ids: any UTF-8 without control characters), and text a page must show as text.
ODD_QUEUE = "a:b.c-d_e"
ODD_ID = "caller:a/b c%20d#e?f=\u00fcber"  # a "%20" a second decoding would turn into a space
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, limit=20.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Tree:
    """One `forq serve` with its log in a file; its port read from the log."""

    def __init__(self, redis_url, data_dir, *extra):
        self.log_path = os.path.join(data_dir, "serve.log")
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
        self.proc = subprocess.Popen(
            [FORQ, "serve", "--redis", redis_url, "--listen", "127.0.0.1:0", "--workers", "1",
             "--data-dir", os.path.join(data_dir, "d"), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        text = wait_until("forq serve to listen and consume", lambda: self._consuming())
        self.port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", text).group(1))
        self.base = "http://127.0.0.1:%d" % self.port

    def _consuming(self):
        with open(self.log_path) as f:
            text = f.read()
        return text if "consuming" in text and "listening on" in text else ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def dead_job(r, queue, job_id, reason):
    now = int(time.time() * 1000)
    r.zadd("forq:{%s}:dead" % queue, {job_id: now})
    # As a consumer writes it: every attempt's error in `errors` (a JSON text), the last too.
    errors = [{"attempt": a, "at_ms": now - (3 - a) * 1000, "error": "%s (try %d)" % (reason, a)}
              for a in (1, 2, 3)]
    r.hset("forq:{%s}:dead:jobs" % queue, job_id, json.dumps(
        {"id": job_id, "handler": "mailer", "payload": '{"to":"a@example.com"}',
         "attempt": "3", "reason": reason, "last_error": errors[-1]["error"],
         "errors": json.dumps(errors)}))


def completed_job(r, queue, job_id, result):
    """A job as a consumer leaves it done: in the results index, with its result record."""
    now = int(time.time() * 1000) - 5000
    r.rpush("forq:{%s}:results" % queue, now, 1, job_id)
    r.hset("forq:{%s}:results:data" % queue, job_id, json.dumps(
        {"result": result, "attempt": 1, "finished_ms": now}))
    r.hincrby("forq:{%s}:stats" % queue, "completed", 1)
    r.hincrby("forq:{%s}:stats" % queue, "results_kept", 1)


def quote(text):
    """One path segment or hash part, percent-encoded as encodeURIComponent does."""
    return urllib.parse.quote(text, safe="-_.!~*'()")


def done_in_minute(m):
    return 100 + (m * 37) % 50


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="forq-browser-")
        port = free_port()
        cls.redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", cls.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.r = redis.Redis(port=port, decode_responses=True)
        wait_until("redis-server", lambda: cls._pings(cls.r))
        url = cls.url = "redis://127.0.0.1:%d" % port
        # Seeded: emails with three dead jobs, reports with a delayed one; both registered.
        for i in range(1, 4):
            dead_job(cls.r, "emails", "mail-%d" % i, "smtp said 550 for attempt %d" % i)
        for i, why in enumerate(("timeout talking to billing", "bad template", "timeout talking to ledger")):
            dead_job(cls.r, "reports", "rep-dead-%d" % (i + 1), why)
        cls.r.zadd("forq:{reports}:delayed", {"rep-1": int(time.time() * 1000) + 3600000})
        cls.r.hset("forq:{reports}:delayed:jobs", "rep-1",
                   json.dumps({"id": "rep-1", "handler": "report", "payload": "{}", "attempt": 0}))
        cls.r.sadd("forq:queues", "emails", "reports")
        # emails' figures by the minute, as workers would have added them over the last hour
        # (and the next two minutes, so a minute turning during the test changes nothing).
        now = int(time.time() // 60)
        for m in range(now - 70, now + 3):
            cls.r.hset("forq:{emails}:minutes", mapping={
                "%d:d" % m: done_in_minute(m), "%d:f" % m: m % 3,
                "%d:l2" % m: 90, "%d:l3" % m: 10})  # 90 picked up in 250-500 us, 10 in 0.5-1 ms
        os.makedirs(os.path.join(cls.dir, "a"))
        os.makedirs(os.path.join(cls.dir, "b"))
        cls.tree = Tree(url, os.path.join(cls.dir, "a"), "--api-token", TOKEN)
        cls.read_only = Tree(url, os.path.join(cls.dir, "b"), "--ui", "read-only")
        options = Options()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see a favicon 404
        options.binary_location = "/usr/bin/chromium"
        cls.browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        cls.browser.set_page_load_timeout(30)
        # No timed refresh under test (an action still redraws the page): an element found is
        # not replaced between finding and clicking it.
        for tree in (cls.tree, cls.read_only):
            cls.browser.get(tree.base + "/ui/")
            cls.browser.execute_script("localStorage.setItem('forq-every', '0');")

    @staticmethod
    def _pings(r):
        try:
            return r.ping()
        except redis.exceptions.ConnectionError:
            return False

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.tree.stop()
        cls.read_only.stop()
        cls.redis_proc.terminate()
        cls.redis_proc.wait(10)
        shutil.rmtree(cls.dir, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------------

    def open(self, tree, page="", title=None):
        """Goes to a page and waits until it is drawn (a hash change keeps the old page on screen
        until the new one is ready: an element found before that would be replaced)."""
        self.browser.get(tree.base + "/ui/#/" + page)
        if title:
            self.find("main h1", title)

    def type_into(self, css, text):
        for _ in range(20):
            try:
                self.find(css).send_keys(text)
                return
            except StaleElementReferenceException:
                time.sleep(0.05)
        raise AssertionError("the element kept being replaced")

    def find(self, css, text=None, limit=15):
        def look():
            try:
                for el in self.browser.find_elements(By.CSS_SELECTOR, css):
                    if text is None or text in el.text:
                        return el
            except StaleElementReferenceException:  # redrawn while looking: look again
                pass
            return None
        return WebDriverWait(self.browser, limit, poll_frequency=0.05).until(lambda _: look())

    def click(self, find):
        """Clicks what `find()` returns, finding it again if a redraw replaced it."""
        for _ in range(20):
            try:
                find().click()
                return
            except StaleElementReferenceException:
                time.sleep(0.05)
        raise AssertionError("the element kept being replaced")

    def message(self):
        return self.find("#message:not([hidden])").text

    def shot(self, name):
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            self.browser.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def row(self, queue):
        return self.find('#queues tr[data-queue="%s"]' % queue)

    def cell(self, queue, field):
        return self.row(queue).find_element(By.CSS_SELECTOR, 'td[data-field="%s"]' % field).text

    def job_row(self, list_name, job_id):
        """The row of a job in a list (ids are compared as they are, not as CSS)."""
        def look():
            try:
                for tr in self.browser.find_elements(By.CSS_SELECTOR, '#jobs[data-list="%s"] tbody tr' % list_name):
                    if tr.get_attribute("data-id") == job_id:
                        return tr
            except StaleElementReferenceException:
                pass
            return None
        return WebDriverWait(self.browser, 15, poll_frequency=0.05).until(lambda _: look())

    def api(self, method, path, body=None):
        request = urllib.request.Request(
            self.tree.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.read()

    def text_of(self, css):
        """All the text of an element, drawn or not (a clipped cell, a long value)."""
        return self.find(css).get_attribute("textContent")

    def no_script_ran(self):
        self.assertIsNone(self.browser.execute_script("return window.pwned;"))
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "main img, main script"), [])

    def odd_queue(self):
        """Queue a:b.c-d_e, seeded once: a ready job with an id of every kind of character, a dead
        job with a 2 KiB error, a dead job a schedule's slot made, and a job done with a 200 KB
        result; text that would run script if drawn as HTML in each."""
        cls = type(self)
        if getattr(cls, "odd_seeded", False):
            return
        cls.odd_seeded = True
        self.api("POST", "/v1/queues/%s/jobs" % quote(ODD_QUEUE),
                 {"id": ODD_ID, "handler": "echo", "payload": {"html": HOSTILE}})
        lines = ["  at frame %d of a long stack %s" % (i, "." * 40) for i in range(30)]
        cls.long_error = (HOSTILE + "\n" + "\n".join(lines))[:2048]
        dead_job(self.r, ODD_QUEUE, "long-error", cls.long_error)
        dead_job(self.r, ODD_QUEUE, "schedule:reports:daily:1767236400000", "the slot's job failed")
        completed_job(self.r, ODD_QUEUE, "big-result", {"html": HOSTILE, "blob": "x" * 200000})
        self.r.sadd("forq:queues", ODD_QUEUE)

    def live_workers(self):
        """Each tree's one worker says it is alive (forq:workers, forq:worker:<host>:<pid>)."""
        def live():
            names = self.r.zrange("forq:workers", 0, -1)
            return names if len(names) == 2 and all(self.r.exists("forq:worker:" + n) for n in names) else None
        return wait_until("both workers' presence in Redis", live)

    # --- the tests, in order (they share one Redis) --------------------------------------------

    def test_1_overview_shows_the_seeded_queues_and_counts(self):
        self.live_workers()
        self.open(self.tree)
        self.row("emails")
        self.assertEqual(self.cell("emails", "dead"), "3")
        self.assertEqual(self.cell("reports", "delayed"), "1")
        self.assertEqual(self.cell("reports", "dead"), "3")
        self.assertEqual(self.browser.current_url, self.tree.base + "/ui/#/")
        # Throughput and pick-up latency from the figures by the minute: the last whole minute's
        # jobs, the percentiles of 90 in 250-500 us and 10 in 0.5-1 ms, and an hour's lines.
        now = int(time.time() // 60)
        self.assertIn(self.cell("emails", "per_min"), {str(done_in_minute(m)) for m in range(now - 3, now + 1)})
        self.assertEqual(self.cell("emails", "pickup"), "0.39 ms / 0.95 ms")
        self.assertEqual(self.cell("reports", "per_min"), "0")
        self.assertEqual(self.cell("reports", "pickup"), "–")
        lines = self.row("emails").find_elements(By.CSS_SELECTOR, "svg.spark polyline")
        self.assertEqual(len(lines), 3)  # done; p99 and p50
        self.assertEqual(len(lines[0].get_attribute("points").split()), 59)  # whole minutes
        self.assertEqual(len(lines[1].get_attribute("points").split()), 60)  # p99, this one too
        self.assertIn("2 workers alive", self.find("#alive").text)
        self.shot("overview")

    def test_2_a_job_is_found_by_id(self):
        self.open(self.tree)
        self.type_into("#find-id", "mail-2")
        self.click(lambda: self.find("#find button"))
        self.assertEqual(self.find('#job dd[data-field="state"]').text, "dead")
        self.assertIn("smtp said 550 for attempt 2", self.find('#job dd[data-field="reason"]').text)
        errors = self.find('#job dd[data-field="errors"] table').find_elements(By.CSS_SELECTOR, "tbody tr")
        self.assertEqual(len(errors), 3)
        self.assertIn("(try 1)", errors[0].text)
        self.shot("job")
        self.browser.get(self.tree.base + "/ui/#/job/nobody-knows")
        self.assertIn("No queue knows a job nobody-knows", self.find("#not-found").text)
        # A producer's own `errors` field: entries that are not forq's are drawn as dashes, and a
        # list with other things in it is shown as the text it is, among the fields that are not forq's.
        odd = {"odd-1": [{"attempt": "one", "at_ms": 1e20}], "odd-2": [None, 7]}
        for job_id, errs in odd.items():
            self.r.zadd("forq:{reports}:dead", {job_id: 1})
            self.r.hset("forq:{reports}:dead:jobs", job_id, json.dumps(
                {"id": job_id, "handler": "h", "payload": "{}", "attempt": "1",
                 "errors": json.dumps(errs)}))
        try:
            self.browser.get(self.tree.base + "/ui/#/job/odd-1")
            row = self.find('#job dd[data-field="errors"] table tbody tr')
            self.assertEqual([c.text for c in row.find_elements(By.TAG_NAME, "td")][:2], ["–", "–"])
            self.browser.get(self.tree.base + "/ui/#/job/odd-2")
            self.assertIn('"errors": "[null, 7]"', self.find('#job dd[data-field="fields"]').text)
        finally:
            self.r.zrem("forq:{reports}:dead", *odd)
            self.r.hdel("forq:{reports}:dead:jobs", *odd)

    def test_3_pause_asks_for_the_token_once_and_refuses_a_wrong_one(self):
        self.open(self.tree)
        self.click(lambda: self.row("emails").find_element(By.XPATH, ".//button[text()='Pause']"))
        self.find("#token:not([hidden])")
        self.assertIn("Authorization: Bearer", self.message())
        self.find("#token-value").send_keys("wrong-token-0123456789")
        self.find("#token button[type=submit]").click()
        self.find("#token:not([hidden])")  # asked again: the wrong one was refused
        self.assertNotEqual(self.r.hget("forq:{emails}:meta", "paused"), "1")
        self.find("#token-value").send_keys(TOKEN)
        self.find("#token button[type=submit]").click()
        wait_until("emails paused in Redis", lambda: self.r.hget("forq:{emails}:meta", "paused") == "1")
        self.find('#queues tr[data-queue="emails"] .badge.paused')
        # The token is kept for the tab: resume needs no second asking.
        self.click(lambda: self.row("emails").find_element(By.XPATH, ".//button[text()='Resume']"))
        wait_until("emails resumed in Redis", lambda: self.r.hget("forq:{emails}:meta", "paused") == "0")
        self.assertTrue(self.browser.find_element(By.ID, "token").get_attribute("hidden") is not None)

    def test_4_a_bulk_retry_moves_the_selected_dead_jobs_back_and_nothing_else(self):
        self.open(self.tree, "queue/emails", "Queue emails")
        self.click(lambda: self.find('button[data-tab="dead"]'))
        for job in ("mail-1", "mail-3"):
            self.click(lambda: self.find('#jobs[data-list="dead"] input.pick[value="%s"]' % job))
        self.shot("queue")
        self.click(lambda: self.find(".actions button", "Retry selected"))
        self.assertIn("retried 2 job(s)", self.message())
        wait_until("two dead jobs retried", lambda: self.r.zcard("forq:{emails}:dead") == 1)
        self.assertEqual(self.r.zrange("forq:{emails}:dead", 0, -1), ["mail-2"])
        self.assertEqual(self.r.xlen("forq:{emails}:stream"), 2)
        ids = sorted(fields["id"] for _, fields in self.r.xrange("forq:{emails}:stream"))
        self.assertEqual(ids, ["mail-1", "mail-3"])
        self.assertEqual(self.r.zcard("forq:{reports}:delayed"), 1)  # nothing else moved

    def test_4b_lists_by_state_search_and_the_rate_limit(self):
        self.open(self.tree, "queue/reports", "Queue reports")
        self.click(lambda: self.find('button[data-tab="delayed"]'))
        self.find('#jobs[data-list="delayed"] tr[data-id="rep-1"]')
        self.open(self.tree, "queue/emails", "Queue emails")
        self.type_into("#search-text", "for attempt 2")
        self.click(lambda: self.find("#search button"))
        self.find('#jobs[data-list="found"] tr[data-id="mail-2"]')
        self.assertEqual(len(self.browser.find_elements(By.CSS_SELECTOR, '#jobs[data-list="found"] tbody tr')), 1)
        self.type_into("#rate-max", "5")
        self.click(lambda: self.find("#rate-per"))
        self.find("#rate-per").clear()
        self.type_into("#rate-per", "2000")
        self.click(lambda: self.find("#rate button[type=submit]"))
        wait_until("the rate limit in Redis", lambda: self.r.hmget("forq:{emails}:meta", "rate_max", "rate_ms") == ["5", "2000"])
        self.assertIn("rate limit of emails: 5 per 2000 ms", self.message())
        # The two retried jobs wait (nothing consumes emails): the Ready list, the page's first.
        self.open(self.tree, "queue/emails", "Queue emails")
        ready = self.find('#jobs[data-list="ready"]')
        ids = sorted(tr.get_attribute("data-id") for tr in ready.find_elements(By.CSS_SELECTOR, "tbody tr"))
        self.assertEqual(ids, ["mail-1", "mail-3"])
        self.click(lambda: self.find('button[data-tab="active"]'))
        self.assertIn("No active jobs", self.find("main p.muted", "No active jobs").text)
        # The queue's last hour, drawn big: jobs done and failed, and the pick-up percentiles.
        charts = self.find("#charts").find_elements(By.CSS_SELECTOR, "figure.chart")
        self.assertEqual(len(charts), 2)
        self.assertIn("Jobs a minute", charts[0].text)
        self.assertEqual(len(charts[0].find_elements(By.CSS_SELECTOR, "polyline")), 2)
        self.assertIn("(largest 0.95 ms)", charts[1].text)
        self.assertEqual(len(charts[1].find_elements(By.CSS_SELECTOR, "rect.hover")), 60)

    def test_4c_dead_jobs_matching_a_filter_are_retried_and_a_filter_matching_none_takes_none(self):
        self.open(self.tree, "queue/reports", "Queue reports")
        self.click(lambda: self.find('button[data-tab="dead"]'))
        self.find('#jobs[data-list="dead"] tr[data-id="rep-dead-2"]')
        self.type_into("#dead-match-text", "timeout talking")
        self.click(lambda: self.find("#dead-match button", "Retry matching"))
        self.assertIn("timeout talking", self.find("#confirm:not([hidden])").text)
        self.click(lambda: self.find("#confirm-yes"))
        self.assertIn("retried 2 job(s) (2 matched)", self.message())
        self.assertEqual(self.r.zrange("forq:{reports}:dead", 0, -1), ["rep-dead-2"])
        ids = sorted(fields["id"] for _, fields in self.r.xrange("forq:{reports}:stream"))
        self.assertEqual(ids, ["rep-dead-1", "rep-dead-3"])
        # A filter that matches nothing takes nothing (not "every dead job").
        self.find('#jobs[data-list="dead"] tr[data-id="rep-dead-2"]')
        self.type_into("#dead-match-text", "no job says this")
        self.click(lambda: self.find("#dead-match button", "Purge matching"))
        self.click(lambda: self.find("#confirm-yes"))
        self.find("#message.info", "purged 0 job(s) (0 matched)")
        self.assertEqual(self.r.zrange("forq:{reports}:dead", 0, -1), ["rep-dead-2"])

    def test_5_read_only_shows_no_action_and_refuses_one_sent_anyway(self):
        self.open(self.read_only, "queue/emails", "Queue emails")
        self.assertEqual(self.find("#mode").text, "read-only")
        self.click(lambda: self.find('button[data-tab="dead"]'))
        self.find('#jobs[data-list="dead"]')
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "main button.act"), [])
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "input.pick"), [])
        status, body = self.browser.execute_async_script(
            "const done = arguments[0];"
            "fetch('/v1/queues/emails/pause', {method: 'POST'})"
            ".then(async r => done([r.status, await r.text()]));")
        self.assertEqual(status, 403)
        self.assertIn("read-only", body)
        self.assertNotEqual(self.r.hget("forq:{emails}:meta", "paused"), "1")

    def test_6_a_cross_origin_post_is_refused(self):
        request = urllib.request.Request(
            self.read_only.base.replace("127.0.0.1", "localhost") + "/v1/queues/emails/pause",
            method="POST", data=b"", headers={"Origin": "http://evil.example"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=10)
        self.assertEqual(e.exception.code, 403)
        self.assertIn("cross-origin", e.exception.read().decode())
        # And a page from another origin cannot even get an answer it could read (no CORS).
        self.assertNotEqual(self.r.hget("forq:{emails}:meta", "paused"), "1")

    def test_7_files_carry_security_headers_and_an_etag(self):
        with urllib.request.urlopen(self.tree.base + "/ui/app.js", timeout=10) as r:
            self.assertEqual(r.headers["X-Content-Type-Options"], "nosniff")
            self.assertIn("default-src 'self'", r.headers["Content-Security-Policy"])
            self.assertIn("frame-ancestors 'none'", r.headers["Content-Security-Policy"])
            self.assertTrue(r.headers["Content-Type"].startswith("text/javascript"))
            etag = r.headers["ETag"]
        again = urllib.request.Request(self.tree.base + "/ui/app.js", headers={"If-None-Match": etag})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(again, timeout=10)
        self.assertEqual(e.exception.code, 304)
        rebound = urllib.request.Request(self.tree.base + "/v1/queues", headers={"Host": "evil.example"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(rebound, timeout=10)
        self.assertEqual(e.exception.code, 403)

    def test_8_workers_page_shows_each_live_worker_process(self):
        names = self.live_workers()
        self.open(self.tree, "workers", "Workers")
        for name in names:
            pid = int(name.rsplit(":", 1)[1])
            os.kill(pid, 0)  # a live process, not a made-up row
            row = self.find('#workers tr[data-worker="%s"]' % name)
            self.assertEqual(row.find_element(By.CSS_SELECTOR, 'td[data-field="pid"]').text, str(pid))
            link = row.find_element(By.CSS_SELECTOR, 'a[href="#/queue/default"]')  # a link, not its address as text
            self.assertEqual(link.text, "default")
            self.assertIn("default 0 / 0", row.text)
            self.assertNotIn("http", row.text)
            self.assertIn("connected", row.text)
        # A worker running a job (another host's, written here) draws it, a link to its page,
        # with how long it has run.
        now = int(time.time() * 1000)
        self.r.set("forq:worker:elsewhere:4242", json.dumps({
            "name": "elsewhere:4242", "host": "elsewhere", "pid": 4242, "slot": 1, "version": "0.1.0",
            "started_ms": now - 60000, "beat_ms": now, "state": "running", "redis": "connected",
            "concurrency": 4, "queues": [{"queue": "emails", "started": True, "running": 1, "done": 0,
                                          "failed": 0, "jobs": [{"id": "mail-9", "started_ms": now - 42000}]}]}),
                   px=30000)
        self.r.zadd("forq:workers", {"elsewhere:4242": now})
        try:
            self.open(self.tree, "", "Queues")  # away and back: drawn again, with it
            self.open(self.tree, "workers", "Workers")
            jobs = self.find('#workers tr[data-worker="elsewhere:4242"] td[data-field="jobs"]')
            # (A list knows the job's queue: its link names it, and the page reads that queue alone.)
            self.assertEqual(jobs.find_element(By.CSS_SELECTOR, 'a[href="#/job/emails/mail-9"]').text, "mail-9")
            self.assertRegex(jobs.text, r"mail-9 4[0-9] s")
            self.shot("workers")
        finally:
            self.r.delete("forq:worker:elsewhere:4242")
            self.r.zrem("forq:workers", "elsewhere:4242")

    def test_9_the_queue_list_pages_and_filters_by_name(self):
        with urllib.request.urlopen(self.tree.base + "/v1/queues?match=rep&limit=1", timeout=10) as r:
            self.assertEqual(r.headers["X-Total-Count"], "1")
            self.assertEqual([q["queue"] for q in json.loads(r.read())], ["reports"])
        with urllib.request.urlopen(self.tree.base + "/v1/queues?offset=1&limit=1", timeout=10) as r:
            self.assertEqual(r.headers["X-Total-Count"], "3")  # default (the trees'), emails, reports
            self.assertEqual([q["queue"] for q in json.loads(r.read())], ["emails"])

    def test_9b_the_schedules_page_shows_the_queues_that_have_schedules(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
        schedule = [FORQ, "schedule", "--redis", self.url, "--queue", "reports"]
        subprocess.run(schedule[:2] + ["add", "nightly"] + schedule[2:] +
                       ["--cron", "0 3 * * *", "--handler", "report", "{}"],
                       check=True, capture_output=True, timeout=30, env=env)
        try:
            # Each queue's figures count its schedules: the page asks only those that have any.
            with urllib.request.urlopen(self.tree.base + "/v1/queues", timeout=10) as r:
                counts = {q["queue"]: q["schedules"] for q in json.loads(r.read())}
            self.assertEqual(counts, {"default": 0, "emails": 0, "reports": 1})
            self.open(self.tree, "schedules", "Schedules")
            row = self.find('table.schedules tr[data-schedule="nightly"]')
            self.assertIn("0 3 * * *", row.text)
            self.assertIn("reports", row.text)
            self.assertEqual(len(self.browser.find_elements(By.CSS_SELECTOR, "table.schedules tbody tr")), 1)
        finally:
            subprocess.run(schedule[:2] + ["remove", "nightly"] + schedule[2:],
                           check=True, capture_output=True, timeout=30, env=env)

    def test_9c_names_and_ids_with_every_allowed_character_open(self):
        self.odd_queue()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
        schedule = [FORQ, "schedule", "--redis", self.url, "--queue", ODD_QUEUE]
        subprocess.run(schedule[:2] + ["add", "reports:daily"] + schedule[2:] +
                       ["--cron", "0 3 * * *", "--handler", "echo", "{}"],
                       check=True, capture_output=True, timeout=30, env=env)
        try:
            self.open(self.tree, "", "Queues")
            self.browser.execute_script("sessionStorage.setItem('forq-token', arguments[0]);", TOKEN)
            # The overview's link opens the queue's page, and the Ready list's link the job's.
            self.click(lambda: self.row(ODD_QUEUE).find_element(By.CSS_SELECTOR, "a"))
            self.find("main h1", "Queue " + ODD_QUEUE)
            self.assertEqual(self.browser.current_url, self.tree.base + "/ui/#/queue/a%3Ab.c-d_e")
            self.click(lambda: self.job_row("ready", ODD_ID).find_element(By.CSS_SELECTOR, "a[href^=\"#/job/\"]"))
            self.assertEqual(self.find('#job dd[data-field="id"]').text, ODD_ID)
            # From a list the address names the queue too: the page reads that queue alone.
            self.assertEqual(self.browser.execute_script("return location.hash;"),
                             "#/job/" + quote(ODD_QUEUE) + "/" + quote(ODD_ID))
            self.assertEqual(self.find('#job dd[data-field="state"]').text, "ready")
            self.assertIn(HOSTILE.replace('"', '\\"'), self.text_of('#job dd[data-field="payload"]'))
            self.no_script_ran()
            # The Find box takes the id as typed (encoded once in the hash, decoded once).
            self.open(self.tree, "workers", "Workers")
            self.type_into("#find-id", ODD_ID)
            self.click(lambda: self.find("#find button"))
            self.assertEqual(self.find('#job dd[data-field="id"]').text, ODD_ID)
            self.assertEqual(self.browser.execute_script("return location.hash;"), "#/job/" + quote(ODD_ID))
            # The job a schedule's slot made (schedule:<name>:<ms>), from the Dead list.
            self.open(self.tree, "queue/" + quote(ODD_QUEUE), "Queue " + ODD_QUEUE)
            self.click(lambda: self.find('button[data-tab="dead"]'))
            slot_job = "schedule:reports:daily:1767236400000"
            self.click(lambda: self.job_row("dead", slot_job).find_element(By.CSS_SELECTOR, "a[href^=\"#/job/\"]"))
            self.assertEqual(self.find('#job dd[data-field="id"]').text, slot_job)

            def schedule_state():
                got = json.loads(self.api("GET", "/v1/queues/%s/schedules" % quote(ODD_QUEUE)))
                return {x["name"]: x["state"] for x in got}.get("reports:daily")

            def schedule_button(label):
                return self.find('table.schedules tr[data-schedule="reports:daily"]').find_element(
                    By.XPATH, ".//button[text()='%s']" % label)
            # Schedule reports:daily paused and resumed from its queue's page...
            self.open(self.tree, "queue/" + quote(ODD_QUEUE), "Queue " + ODD_QUEUE)
            self.click(lambda: schedule_button("Pause"))
            self.find("#message.info", "schedule reports:daily paused")
            wait_until("the schedule paused", lambda: schedule_state() == "paused")
            self.click(lambda: schedule_button("Resume"))
            self.find("#message.info", "schedule reports:daily resumed")
            wait_until("the schedule resumed", lambda: schedule_state() == "active")
            # ... and run now from the Schedules page: its job opens from the link it leaves.
            self.open(self.tree, "schedules", "Schedules")
            self.click(lambda: schedule_button("Run now"))
            made = self.find("#message.info #made-job").text
            self.shot("schedules")
            self.assertTrue(made.startswith("schedule:reports:daily:"), made)
            self.click(lambda: self.find("#made-job"))
            self.assertEqual(self.find('#job dd[data-field="id"]').text, made)
            self.assertEqual(self.find('#job dd[data-field="queue"]').text, ODD_QUEUE)
            self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "#page-error, #not-found"), [])
        finally:
            subprocess.run(schedule[:2] + ["remove", "reports:daily"] + schedule[2:],
                           check=True, capture_output=True, timeout=30, env=env)

    def test_9d_lists_show_a_line_of_a_long_value_and_the_job_page_all_of_it(self):
        self.odd_queue()
        # The list answers carry 300 bytes of each long value, not 200 KB; the job all of it.
        body = self.api("GET", "/v1/queues/%s/jobs?state=completed" % quote(ODD_QUEUE))
        self.assertLess(len(body), 2000)
        self.assertEqual(json.loads(body)[0]["truncated"], ["result"])
        self.assertEqual(len(json.loads(self.api("GET", "/v1/jobs/big-result"))["result"]["blob"]), 200000)
        body = self.api("GET", "/v1/queues/%s/jobs?state=dead" % quote(ODD_QUEUE))
        long_one = [j for j in json.loads(body) if j["id"] == "long-error"][0]
        self.assertEqual(long_one["truncated"], ["last_error", "reason", "errors"])
        self.assertEqual(long_one["reason"], self.long_error[:300])
        self.assertLess(len(body), 6000)
        self.open(self.tree, "queue/" + quote(ODD_QUEUE), "Queue " + ODD_QUEUE)
        # An hour without failures draws no red line along the baseline.
        jobs_chart = self.find("#charts figure.chart")
        self.assertEqual(jobs_chart.find_elements(By.CSS_SELECTOR, "polyline.failed, circle.failed"), [])
        self.assertIn("failed: none", jobs_chart.text)
        # Each list's row is one line high, its long value cut with an ellipsis.
        self.click(lambda: self.find('button[data-tab="completed"]'))
        row = self.job_row("completed", "big-result")
        self.assertLess(row.size["height"], 80)
        self.assertTrue(row.find_element(By.CSS_SELECTOR, ".clip").get_attribute("textContent").endswith("…"))
        self.assertEqual(row.find_element(By.CSS_SELECTOR, ".badge.state-completed").text, "completed")
        self.assertLess(self.browser.execute_script("return document.documentElement.scrollHeight;"), 2000)
        self.shot("queue-completed")
        self.click(lambda: self.find('button[data-tab="dead"]'))
        row = self.job_row("dead", "long-error")
        self.assertLess(row.size["height"], 80)
        self.assertIn(HOSTILE, row.find_element(By.CSS_SELECTOR, ".clip").get_attribute("title"))
        self.assertNotEqual(row.find_element(By.CSS_SELECTOR, ".badge.state-dead").value_of_css_property("color"),
                            self.find(".card.state-completed").value_of_css_property("border-top-color"))
        self.no_script_ran()
        # Select all ticks every dead job of the page, and clears them.
        self.click(lambda: self.find("#pick-all"))
        boxes = self.browser.find_elements(By.CSS_SELECTOR, "input.pick")
        self.assertEqual([b.is_selected() for b in boxes], [True, True])
        self.click(lambda: self.find("#pick-all"))
        self.assertEqual([b.is_selected() for b in self.browser.find_elements(By.CSS_SELECTOR, "input.pick")], [False, False])
        self.type_into("#search-text", "onerror")
        self.click(lambda: self.find("#search button"))
        for job in ("long-error", "big-result"):
            self.assertLess(self.job_row("found", job).size["height"], 80)
        self.no_script_ran()
        self.shot("queue-long-values")
        # The job page has the whole value: a long one shown on demand, a 2 KiB one at once.
        self.open(self.tree, "job/big-result", "Job big-result")
        result = '#job dd[data-field="result"]'
        self.assertLess(len(self.text_of(result + " pre")), 5000)
        self.shot("job-long-value")
        self.click(lambda: self.find(result + " button.show-all"))
        self.assertGreater(len(self.text_of(result + " pre")), 200000)
        self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, result + " button.show-all"), [])
        # Labels as people read them, times as dates and how long ago.
        labels = [dt.text for dt in self.browser.find_elements(By.CSS_SELECTOR, "#job dt")]
        self.assertIn("Finished at", labels)
        self.assertNotIn("finished_ms", labels)
        self.assertRegex(self.find('#job dd[data-field="finished_ms"]').text, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \d+ (s|min) ago$")
        self.no_script_ran()
        self.open(self.tree, "job/long-error", "Job long-error")
        self.assertEqual(self.text_of('#job dd[data-field="reason"]'), self.long_error)
        self.assertIn("Died at", [dt.text for dt in self.browser.find_elements(By.CSS_SELECTOR, "#job dt")])
        self.no_script_ran()
        self.shot("job-long-error")

    def test_9f_a_waiting_job_is_cancelled_from_its_page(self):
        at = int(time.time() * 1000) + 3600000
        self.r.zadd("forq:{reports}:delayed", {"rep-cancel": at})
        self.r.hset("forq:{reports}:delayed:jobs", "rep-cancel",
                    json.dumps({"id": "rep-cancel", "handler": "report", "payload": "{}", "attempt": "0"}))
        # Read-only: no Cancel button.
        self.browser.get(self.read_only.base + "/ui/#/job/reports/rep-cancel")
        self.find('#job dd[data-field="state"]')
        self.assertFalse([b for b in self.browser.find_elements(By.CSS_SELECTOR, ".actions button")
                          if b.text == "Cancel"])
        self.open(self.tree, "job/reports/rep-cancel")
        self.assertEqual(self.find('#job dd[data-field="state"]').text, "delayed")
        self.click(lambda: self.find(".actions button", "Cancel"))
        self.assertIn("It will not run", self.find("#confirm:not([hidden])").text)
        self.click(lambda: self.find("#confirm-yes"))
        wait_until("the job cancelled in Redis",
                   lambda: self.r.zscore("forq:{reports}:cancelled", "rep-cancel") is not None)
        self.assertIn("job rep-cancel cancelled", self.message())
        self.assertEqual(self.find('#job dd[data-field="state"]', "cancelled").text, "cancelled")
        self.assertEqual(self.find('#job dd[data-field="cancelled_by"]').text, "api")
        self.assertIsNone(self.r.zscore("forq:{reports}:delayed", "rep-cancel"))
        # From the Delayed list: each row has its Cancel.
        self.r.zadd("forq:{reports}:delayed", {"rep-cancel-2": at})
        self.r.hset("forq:{reports}:delayed:jobs", "rep-cancel-2",
                    json.dumps({"id": "rep-cancel-2", "handler": "report", "payload": "{}", "attempt": "0"}))
        self.open(self.tree, "queue/reports", "Queue reports")
        self.click(lambda: self.find('button[data-tab="delayed"]'))
        row = self.find('#jobs[data-list="delayed"] tr[data-id="rep-cancel-2"]')
        self.click(lambda: row.find_element(By.CSS_SELECTOR, "button.act"))
        self.click(lambda: self.find("#confirm-yes"))
        wait_until("the second job cancelled in Redis",
                   lambda: self.r.zscore("forq:{reports}:cancelled", "rep-cancel-2") is not None)
        # The queue's Cancelled list shows both.
        self.open(self.tree, "queue/reports", "Queue reports")
        self.click(lambda: self.find('button[data-tab="cancelled"]'))
        self.find('#jobs[data-list="cancelled"] tr[data-id="rep-cancel"]')
        self.find('#jobs[data-list="cancelled"] tr[data-id="rep-cancel-2"]')

    def test_9g_a_queue_s_events_show_live_and_escaped(self):
        self.open(self.tree, "queue/reports", "Queue reports")
        self.assertIn("forq events reports --on", self.find("#events-off").text)
        self.r.hset("forq:{reports}:meta", "events", 1000)
        self.browser.refresh()  # the same address: reloaded, not redrawn by a hash change
        self.find("#events")
        time.sleep(1.2)  # the API's producer looks at the queue's events setting once a second
        self.api("POST", "/v1/queues/reports/jobs", {"handler": "echo", "delay_ms": 3600000, "id": "rep-ev"})
        row = self.find('#events li[data-event="added"]', "rep-ev")
        self.assertIn("runs ", row.text)
        self.assertIn("(in ", row.text)
        self.api("POST", "/v1/queues/reports/jobs/rep-ev/cancel", {"reason": "<img src=x onerror=\"window.pwned=1\">"})
        row = self.find('#events li[data-event="cancelled"]', "rep-ev")
        self.assertIn('by api: <img src=x onerror="window.pwned=1">', row.text)
        self.no_script_ran()
        # Its link opens the job.
        self.click(lambda: self.find('#events li[data-event="cancelled"] a.job-id', "rep-ev"))
        self.assertEqual(self.find('#job dd[data-field="state"]', "cancelled").text, "cancelled")
        self.r.hdel("forq:{reports}:meta", "events")

    def test_9e_a_page_that_fails_takes_the_previous_ones_place_and_the_icon_is_served(self):
        for page, why in (("queue/no%20such%20queue!", "is not allowed"), ("job/100%", "percent-encoded")):
            self.open(self.tree, "queue/emails", "Queue emails")
            self.find("#charts")
            self.browser.get(self.tree.base + "/ui/#/" + page)
            self.assertIn(why, self.find("#page-error").text)
            self.assertEqual(self.browser.find_elements(By.CSS_SELECTOR, "#jobs, #charts"), [])
            self.assertIsNotNone(self.browser.find_element(By.ID, "message").get_attribute("hidden"))
            self.shot("page-error")
        self.assertEqual(self.find("main h1").text, "Job 100%")
        for path in ("/favicon.ico", "/ui/favicon.svg"):
            with urllib.request.urlopen(self.tree.base + path, timeout=10) as r:
                self.assertEqual(r.headers["Content-Type"], "image/svg+xml")
                self.assertIn(b"<svg", r.read())
        self.assertEqual([e for e in self.browser.get_log("browser") if "favicon" in e["message"]], [])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
