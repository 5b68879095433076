"""comet_publisher against a real `comet up` (started by tests/e2e/publishers.rs, which passes
COMET_URL, COMET_PUBLISH_KEY, COMET_TOKEN_SECRET and COMET_OPENAPI_JSON). Every body the helper
returns is checked against openapi.yaml."""

import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from comet_publisher import CometError, Publisher, mint_token  # noqa: E402
from support import (FaultProxy, assert_documented, assert_error_code, env,  # noqa: E402
                     get_json)

URL = env("COMET_URL")
KEY = env("COMET_PUBLISH_KEY")
SECRET = env("COMET_TOKEN_SECRET")


def fresh(prefix="py"):
    return f"{prefix}-{uuid.uuid4()}"


class PublisherTest(unittest.TestCase):
    def setUp(self):
        self.comet = Publisher(URL, publish_key=KEY)

    def history(self, channel, **kwargs):
        body = self.comet.history(channel, **kwargs)
        assert_documented("get", "/v1/history/{channel}", 200, body)
        return body

    def assert_refused(self, fn, code, status):
        with self.assertRaises(CometError) as caught:
            fn()
        self.assertEqual((caught.exception.code, caught.exception.status), (code, status), str(caught.exception))
        assert_error_code(code, status)
        return caught.exception

    def test_publish_one_then_history_shows_it(self):
        channel = fresh()
        # README: publish
        result = self.comet.publish(channel, {"text": "hello"})
        assert_documented("post", "/v1/publish", 200, result)
        self.assertEqual((result["seq"], result["duplicate"]), (1, False))
        messages = self.history(channel, since=0, limit=100)["messages"]
        self.assertEqual(len(messages), 1)
        self.assertEqual(messages[0]["data"], {"text": "hello"})
        self.assertEqual(messages[0]["seq"], result["seq"])

    def test_batch_of_n_in_order(self):
        channel = fresh()
        n = 7
        body = self.comet.publish_batch([{"channel": channel, "data": {"i": i}} for i in range(n)])
        assert_documented("post", "/v1/publish", 200, body)
        self.assertEqual([r["seq"] for r in body["results"]], list(range(1, n + 1)))
        messages = self.history(channel)["messages"]
        self.assertEqual([m["data"]["i"] for m in messages], list(range(n)))
        self.assertEqual([m["seq"] for m in messages], list(range(1, n + 1)))
        self.assertEqual([m["seq"] for m in self.history(channel, since=5, limit=1)["messages"]], [6])

    def test_same_id_twice_stores_one_message(self):
        channel = fresh()
        first = self.comet.publish(channel, "once", id="order-17")
        again = self.comet.publish(channel, "once", id="order-17")
        assert_documented("post", "/v1/publish", 200, again)
        self.assertFalse(first["duplicate"])
        self.assertTrue(again["duplicate"])
        self.assertEqual(again["seq"], first["seq"])
        self.assertEqual(len(self.history(channel)["messages"]), 1)

    def test_429_retry_after_is_waited_out_and_delivered_once(self):
        channel = fresh()
        limited = (429, {"Retry-After": "1"}, {"error": {"code": "rate_limited", "message": "injected"}})
        with FaultProxy(URL, [limited, "forward"]) as proxy:
            started = time.monotonic()
            result = Publisher(proxy.url, publish_key=KEY, min_delay=0.01).publish(channel, "x")
            elapsed = time.monotonic() - started
            assert_documented("post", "/v1/publish", 200, result)
            self.assertGreaterEqual(elapsed, 0.95, "retried before Retry-After")
            self.assertEqual(proxy.requests, 2)
            self.assertFalse(result["duplicate"])
        self.assertEqual(len(self.history(channel)["messages"]), 1)

    def test_lost_answer_is_retried_with_the_same_id(self):
        channel = fresh()
        with FaultProxy(URL, ["forward-then-503", "forward"]) as proxy:
            result = Publisher(proxy.url, publish_key=KEY, min_delay=0.01).publish(channel, "y")
            self.assertEqual(proxy.requests, 2)
            self.assertTrue(result["duplicate"], "the retry reached the server with the first attempt's id")
            self.assertEqual(result["seq"], 1)
        self.assertEqual(len(self.history(channel)["messages"]), 1)

    def test_cut_connection_after_storing_a_batch_is_retried(self):
        channel = fresh()
        with FaultProxy(URL, ["forward-then-drop", "forward"]) as proxy:
            body = Publisher(proxy.url, publish_key=KEY, min_delay=0.01).publish_batch(
                [{"channel": channel, "data": "a"}, {"channel": channel, "data": "b"}])
            assert_documented("post", "/v1/publish", 200, body)
            self.assertEqual(proxy.requests, 2)
            self.assertEqual([(r["seq"], r["duplicate"]) for r in body["results"]], [(1, True), (2, True)])
        self.assertEqual([m["data"] for m in self.history(channel)["messages"]], ["a", "b"])

    def test_retries_give_up_with_the_last_error(self):
        down = (503, {}, {"error": {"code": "store_unavailable", "message": "injected"}})
        with FaultProxy(URL, [down]) as proxy:
            publisher = Publisher(proxy.url, publish_key=KEY, retries=2, min_delay=0.005)
            error = self.assert_refused(lambda: publisher.publish(fresh(), 1), "store_unavailable", 503)
            self.assertEqual(error.attempts, 3)
            self.assertEqual(proxy.requests, 3)

    def test_errors_carry_code_and_status_and_client_errors_are_not_retried(self):
        with FaultProxy(URL, ["forward"]) as proxy:
            wrong_key = Publisher(proxy.url, publish_key="not-the-key", min_delay=0.005)
            self.assert_refused(lambda: wrong_key.publish(fresh(), 1), "unauthorized", 401)
            self.assertEqual(proxy.requests, 1)
        self.assert_refused(lambda: self.comet.publish("bad channel!", 1), "invalid_channel", 400)
        self.assert_refused(lambda: self.comet.history("bad channel!"), "invalid_channel", 400)
        self.assert_refused(lambda: self.comet.publish(fresh(), 1, id="has space"), "invalid_message_id", 400)
        self.assert_refused(lambda: self.comet.history(fresh(), limit=5000), "invalid_limit", 400)

    def test_channel_info_reports_what_was_published(self):
        channel = fresh()
        empty = self.comet.channel(channel)
        assert_documented("get", "/v1/channels/{channel}", 200, empty)
        self.assertEqual((empty["last_seq"], empty["retained_count"]), (0, 0))
        self.comet.publish_batch([{"channel": channel, "data": d} for d in (1, 2, 3)])
        # README: channel info
        info = self.comet.channel(channel)
        assert_documented("get", "/v1/channels/{channel}", 200, info)
        self.assertEqual({k: info[k] for k in ("channel", "last_seq", "retained_count", "first_seq")},
                         {"channel": channel, "last_seq": 3, "retained_count": 3, "first_seq": 1})
        self.assertEqual(info["epoch"], self.history(channel)["epoch"])

    def test_minted_token_opens_its_private_channel_and_only_that_one(self):
        channel = fresh("private-py")
        # README: token
        token = mint_token(SECRET, [channel], ttl=3600, sub="user-42")
        status, body = get_json(f"{URL}/v1/poll?channel={channel}&token={token}&timeout=0&from=start")
        self.assertEqual(status, 200, body)
        assert_documented("get", "/v1/poll", 200, body)

        self.comet.publish(channel, "secret")
        self.assertEqual([m["data"] for m in self.history(channel, token=token)["messages"]], ["secret"])
        self.assertEqual(self.comet.channel(channel, token=token)["last_seq"], 1)

        other = mint_token(SECRET, [fresh("private-other")])
        status, body = get_json(f"{URL}/v1/poll?channel={channel}&token={other}&timeout=0")
        assert_documented("get", "/v1/poll", 403, body)
        self.assertEqual((status, body["error"]["code"]), (403, "channel_not_allowed"))
        self.assert_refused(lambda: self.comet.history(channel, token=other), "channel_not_allowed", 403)
        self.assert_refused(lambda: self.comet.history(channel), "token_required", 403)
        forged = mint_token("wrong-secret", [channel])
        self.assert_refused(lambda: self.comet.history(channel, token=forged), "invalid_token", 401)
        expired = mint_token(SECRET, [channel], exp=1_000_000)
        self.assert_refused(lambda: self.comet.history(channel, token=expired), "token_expired", 401)
        prefix = mint_token(SECRET, ["private-py-*"])
        self.assertEqual(len(self.history(channel, token=prefix)["messages"]), 1)

    def test_mint_token_matches_the_servers_known_token(self):
        self.assertEqual(
            mint_token("test-secret", ["private-a"], exp=1_800_000_060),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJwcml2YXRlLWEiXSwiZXhwIjoxODAwMDAwMDYwfQ"
            ".0R0ZwMoVZDOItLh-Xw7ciUAaXKvA0JKHKMz9uJx18Wg",
        )


    def test_readme_snippet_runs_as_written(self):
        readme_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
        with open(readme_path, encoding="utf-8") as f:
            readme = f.read()
        block = readme.split("## Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
        code = block.replace('"http://127.0.0.1:3000"', repr(URL))
        self.assertNotEqual(code, block, "the snippet names the default URL")
        channel = fresh("readme")
        exec(compile(code, "publishers/README.md", "exec"), {"channel": channel, "secret": SECRET})
        self.assertEqual([m["data"] for m in self.history(channel)["messages"]], [{"text": "hello"}, "once", "a", "b"])


if __name__ == "__main__":
    unittest.main()
