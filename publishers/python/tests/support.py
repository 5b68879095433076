"""Test support: the environment the e2e harness passes, a schema validator for the subset of
JSON Schema openapi.yaml uses, and a fault-injecting proxy in front of the real runner."""

import json
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def env(name):
    """A required environment variable, failing loudly (the e2e harness sets all of them)."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set; run these tests through cargo test (tests/e2e/publishers.rs)")
    return value


_spec = None


def openapi():
    """openapi.yaml as JSON (COMET_OPENAPI_JSON, written by the e2e harness)."""
    global _spec
    if _spec is None:
        with open(env("COMET_OPENAPI_JSON"), encoding="utf-8") as f:
            _spec = json.load(f)
    return _spec


def _resolve(node):
    for _ in range(32):
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref}")
        node = openapi()
        for key in ref[2:].split("/"):
            node = node[key.replace("~1", "/").replace("~0", "~")]
    raise ValueError("$ref chain too long")


def _type_of(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate(schema, value, path="$"):
    """Errors of ``value`` against ``schema`` (type/required/properties/additionalProperties/
    items/enum/const/oneOf/allOf/$ref, bounds, pattern)."""
    schema = _resolve(schema)
    errors = []
    if "type" in schema:
        want = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        got = _type_of(value)
        if got not in want and not (got == "integer" and "number" in want):
            return [f"{path}: expected {'|'.join(want)}, got {got}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    if _type_of(value) in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: does not match {schema['pattern']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{path}: missing {key}" for key in schema.get("required", []) if key not in value]
        for key, sub in value.items():
            if key in properties:
                errors += validate(properties[key], sub, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected property {key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(schema["items"], item, f"{path}[{i}]")
    for sub in schema.get("allOf", []):
        errors += validate(sub, value, path)
    if "oneOf" in schema:
        matching = sum(1 for sub in schema["oneOf"] if not validate(sub, value, path))
        if matching != 1:
            errors.append(f"{path}: matches {matching} of oneOf's {len(schema['oneOf'])} schemas")
    return errors


def response_schema(method, path, status):
    """The JSON schema openapi.yaml documents for ``method path`` answering ``status``."""
    response = _resolve(openapi()["paths"][path][method]["responses"][str(status)])
    return response["content"]["application/json"]["schema"]


def assert_documented(method, path, status, body):
    """Raises AssertionError unless ``body`` matches the documented answer."""
    errors = validate(response_schema(method, path, status), body)
    if errors:
        raise AssertionError(f"{method.upper()} {path} {status} body does not match openapi.yaml:\n"
                             + "\n".join(errors) + "\n" + json.dumps(body))


def assert_error_code(code, status):
    """Raises AssertionError unless ``code`` is a documented ErrorCode with ``x-status`` ``status``."""
    codes = openapi()["components"]["schemas"]["ErrorCode"]
    if code not in codes["enum"]:
        raise AssertionError(f"{code} is not in openapi.yaml ErrorCode")
    if codes["x-status"][code] != status:
        raise AssertionError(f"{code}: status {status}, openapi.yaml says {codes['x-status'][code]}")


def get_json(url):
    """``GET url`` without the helper: (status, parsed body)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class FaultProxy:
    """A proxy to ``target`` that plays ``plan``, one step per request (the last step repeats):
    ``"forward"``; ``(status, headers, body)`` (answer without forwarding); ``"forward-then-503"``
    (forward, then answer 503 store_unavailable: the stored message's answer is lost);
    ``"forward-then-drop"`` (forward, then cut the connection). Counts requests."""

    def __init__(self, target, plan):
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, headers, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self):
                step = plan[min(proxy.requests, len(plan) - 1)]
                proxy.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                if isinstance(step, tuple):
                    return self._answer(*step)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                request = urllib.request.Request(target + self.path, data=data, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=10) as r:
                        status, body = r.status, json.loads(r.read())
                except urllib.error.HTTPError as e:
                    status, body = e.code, json.loads(e.read())
                if step == "forward-then-drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif step == "forward-then-503":
                    self._answer(503, {"Retry-After": "1"}, {"error": {"code": "store_unavailable", "message": "injected"}})
                else:
                    self._answer(status, {}, body)

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
