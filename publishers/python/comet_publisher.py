"""Publish to Comet from a backend (Python >= 3.9, standard library only).

Every publish carries an idempotency ``id`` (generated when the caller gives none) and keeps
it on every retry, so a retry after a lost answer is recognised by the server
(``duplicate: true``) instead of storing the message twice. That is what makes retrying
network errors, 429 and 5xx safe. The protocol is in ../../docs/protocol.md and
../../openapi.yaml.
"""

import base64
import hashlib
import hmac
import http.client
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, Iterable, List, Optional

__all__ = ["CometError", "Publisher", "mint_token"]
__version__ = "0.1.0"

# Codes that mean "fix the deployment", not "try again": retrying them only adds delay.
_PERMANENT_5XX = {"publishing_disabled", "bad_configuration"}


class CometError(Exception):
    """An error answer from Comet (``{"error":{"code","message"}}``), or ``network_error`` (status 0).

    ``code`` is the stable code from openapi.yaml ``ErrorCode``; ``status`` the HTTP status;
    ``retry_after`` the ``Retry-After`` seconds, if any; ``attempts`` how many were made.
    """

    def __init__(self, code: str, status: int, message: str,
                 retry_after: Optional[int] = None, attempts: int = 1):
        super().__init__(f"{code} ({status}): {message}")
        self.code = code
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.attempts = attempts


class Publisher:
    """A client for one Comet deployment.

    ``retries`` counts retries after the first attempt; back-off is full-jitter exponential
    from ``min_delay`` to ``max_delay`` seconds, or the server's ``Retry-After`` (capped at
    ``max_delay``). ``timeout`` is per attempt; a timeout counts as a network error.
    """

    def __init__(self, url: str, publish_key: Optional[str] = None, retries: int = 5,
                 min_delay: float = 0.2, max_delay: float = 10.0, timeout: float = 10.0):
        if not url:
            raise ValueError("Publisher: url is required")
        self.url = url.rstrip("/")
        self.publish_key = publish_key
        self.retries = retries
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.timeout = timeout

    def publish(self, channel: str, data: Any, id: Optional[str] = None) -> Dict[str, Any]:
        """Publishes one message; returns the server's ``PublishResult``."""
        return self._post({"channel": channel, "data": data, "id": id or str(uuid.uuid4())})

    def publish_batch(self, messages: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
        """Publishes ``[{"channel", "data", "id"?}]`` in one request, in order; returns ``{"results": [...]}``.

        Ids are filled in before the first attempt, so a retried batch is de-duplicated per message.
        """
        batch = [{"channel": m["channel"], "data": m["data"], "id": m.get("id") or str(uuid.uuid4())}
                 for m in messages]
        if not batch:
            raise ValueError("publish_batch: at least one message is required")
        return self._post(batch)

    def history(self, channel: str, since: Optional[int] = None, limit: Optional[int] = None,
                token: Optional[str] = None) -> Dict[str, Any]:
        """``GET /v1/history/{channel}``: messages with ``seq > since``, oldest first."""
        query = {k: v for k, v in (("since", since), ("limit", limit), ("token", token)) if v is not None}
        return self._get("/v1/history/" + urllib.parse.quote(channel, safe=""), query)

    def channel(self, channel: str, token: Optional[str] = None) -> Dict[str, Any]:
        """``GET /v1/channels/{channel}``: ``channel, epoch, last_seq, retained_count, first_seq``."""
        query = {"token": token} if token is not None else {}
        return self._get("/v1/channels/" + urllib.parse.quote(channel, safe=""), query)

    def _post(self, body: Any) -> Dict[str, Any]:
        if not self.publish_key:
            raise ValueError("Publisher: publish_key is required to publish")
        headers = {"Authorization": "Bearer " + self.publish_key, "Content-Type": "application/json"}
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._request("POST", "/v1/publish", data, headers)

    # Reads send no Authorization header: the server takes a bearer there as a subscribe token,
    # so the publish key would be refused as `invalid_token`. Private channels take `token`.
    def _get(self, path: str, query: Dict[str, Any]) -> Dict[str, Any]:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self._request("GET", path, None, {})

    def _request(self, method: str, path: str, data: Optional[bytes], headers: Dict[str, str]) -> Dict[str, Any]:
        last: Optional[CometError] = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last))
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                last = _error_from(e, attempt + 1)
                if not _retryable(last):
                    raise last from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                # Refused, reset, timed out, or cut mid-body: no answer, so try again.
                last = CometError("network_error", 0, str(getattr(e, "reason", e)), attempts=attempt + 1)
        assert last is not None
        raise last

    def _delay(self, attempt: int, error: Optional[CometError]) -> float:
        if error is not None and error.retry_after is not None:
            return min(float(error.retry_after), self.max_delay)
        return random.uniform(0, min(self.max_delay, self.min_delay * 2 ** (attempt - 1)))


def _retryable(error: CometError) -> bool:
    return error.status == 429 or (error.status >= 500 and error.code not in _PERMANENT_5XX)


def _error_from(e: urllib.error.HTTPError, attempts: int) -> CometError:
    try:
        text = e.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    code, message = f"http_{e.code}", text[:200]
    try:
        body = json.loads(text)
        if isinstance(body.get("error", {}).get("code"), str):
            code, message = body["error"]["code"], str(body["error"].get("message", ""))
    except (ValueError, AttributeError):
        pass  # Not Comet's JSON (a proxy's page): keep the status-derived code.
    header = (e.headers.get("Retry-After") or "").strip() if e.headers else ""
    retry_after = int(header) if header.isdigit() else None
    return CometError(code, e.code, message, retry_after=retry_after, attempts=attempts)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def mint_token(secret: str, channels: List[str], ttl: int = 3600, exp: Optional[int] = None,
               nbf: Optional[int] = None, sub: Optional[str] = None) -> str:
    """Mints a subscribe token (HS256 JWT) the server accepts for private channels.

    ``channels`` are exact names or ``prefix*``; ``exp`` (Unix seconds) defaults to now + ``ttl``.
    """
    if not secret:
        raise ValueError("mint_token: secret is required")
    if isinstance(channels, str) or not channels:
        raise ValueError("mint_token: channels must be a non-empty list")
    claims: Dict[str, Any] = {"channels": list(channels), "exp": int(exp if exp is not None else time.time() + ttl)}
    if sub is not None:
        claims["sub"] = sub
    if nbf is not None:
        claims["nbf"] = int(nbf)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    signing_input = header + "." + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(signature)
