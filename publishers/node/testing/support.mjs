// Test support, outside test/ so `node --test test/` does not count it as a test file:
// the environment the e2e harness passes, a schema validator for the subset of JSON Schema
// openapi.yaml uses, and a fault-injecting proxy in front of the real runner.

import http from 'node:http';
import { readFileSync } from 'node:fs';

/** Reads a required environment variable, failing loudly (the e2e harness sets all of them). */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run these tests through cargo test (tests/e2e/publishers.rs)`);
  return value;
}

let spec;
/** openapi.yaml as JSON (COMET_OPENAPI_JSON, written by the e2e harness). */
export function openapi() {
  spec ??= JSON.parse(readFileSync(env('COMET_OPENAPI_JSON'), 'utf8'));
  return spec;
}

function resolve(node) {
  let seen = 0;
  while (node && typeof node.$ref === 'string') {
    if (!node.$ref.startsWith('#/') || ++seen > 32) throw new Error(`unsupported $ref ${node.$ref}`);
    const target = node.$ref.slice(2).split('/').reduce((at, key) => at?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], openapi());
    if (target === undefined) throw new Error(`dangling $ref ${node.$ref}`);
    node = target;
  }
  return node;
}

function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Errors of `value` against `schema` (type/required/properties/additionalProperties/items/enum/const/oneOf/allOf/$ref, bounds, pattern). */
export function validate(schema, value, path = '$') {
  schema = resolve(schema);
  const errors = [];
  if (schema.type !== undefined) {
    const want = [].concat(schema.type);
    const got = typeOf(value);
    if (!want.includes(got) && !(got === 'integer' && want.includes('number'))) {
      return [`${path}: expected ${want.join('|')}, got ${got}`];
    }
  }
  if (schema.const !== undefined && value !== schema.const) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: ${value} < ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: ${value} > ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${path}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: does not match ${schema.pattern}`);
  }
  if (typeOf(value) === 'object') {
    for (const key of schema.required ?? []) if (!(key in value)) errors.push(`${path}: missing ${key}`);
    for (const [key, sub] of Object.entries(value)) {
      if (schema.properties?.[key]) errors.push(...validate(schema.properties[key], sub, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property ${key}`);
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => errors.push(...validate(schema.items, item, `${path}[${i}]`)));
  for (const sub of schema.allOf ?? []) errors.push(...validate(sub, value, path));
  if (schema.oneOf) {
    const matching = schema.oneOf.filter((sub) => validate(sub, value, path).length === 0).length;
    if (matching !== 1) errors.push(`${path}: matches ${matching} of oneOf's ${schema.oneOf.length} schemas`);
  }
  return errors;
}

/** The JSON schema openapi.yaml documents for `method path` answering `status`. */
export function responseSchema(method, path, status) {
  const response = resolve(openapi().paths[path]?.[method]?.responses?.[String(status)]);
  const schema = response?.content?.['application/json']?.schema;
  if (!schema) throw new Error(`openapi.yaml documents no JSON ${status} answer for ${method.toUpperCase()} ${path}`);
  return schema;
}

/** Throws unless `body` matches the documented answer of `method path` with `status`. */
export function assertDocumented(method, path, status, body) {
  const errors = validate(responseSchema(method, path, status), body);
  if (errors.length) throw new Error(`${method.toUpperCase()} ${path} ${status} body does not match openapi.yaml:\n${errors.join('\n')}\n${JSON.stringify(body)}`);
}

/** Throws unless `code` is a documented ErrorCode whose `x-status` is `status`. */
export function assertErrorCode(code, status) {
  const codes = openapi().components.schemas.ErrorCode;
  if (!codes.enum.includes(code)) throw new Error(`${code} is not in openapi.yaml ErrorCode`);
  if (codes['x-status'][code] !== status) throw new Error(`${code}: status ${status}, openapi.yaml says ${codes['x-status'][code]}`);
}

/**
 * A proxy to `target` that plays `plan`, one step per request (the last step repeats):
 * `'forward'`; `{status, headers?, body}` (answer without forwarding); `{forwardThen: 503}`
 * (forward, then answer 503 store_unavailable: the stored message's answer is lost);
 * `{forwardThen: 'drop'}` (forward, then cut the connection). Counts requests.
 */
export async function faultProxy(target, plan) {
  const proxy = { requests: 0, url: '' };
  const server = http.createServer((req, res) => {
    play(req, res).catch((e) => {
      // Say so in the test's failure instead of an unhandled rejection after it ended.
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'proxy_failed', message: String(e) } }));
    });
  });
  async function play(req, res) {
    const step = plan[Math.min(proxy.requests, plan.length - 1)];
    proxy.requests++;
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    if (step.status) {
      res.writeHead(step.status, { 'content-type': 'application/json', ...step.headers });
      res.end(JSON.stringify(step.body));
      return;
    }
    const headers = { ...req.headers };
    // fetch refuses hop-by-hop headers; it sets host and length itself.
    for (const name of ['host', 'content-length', 'connection', 'keep-alive', 'transfer-encoding']) delete headers[name];
    const upstream = await fetch(target + req.url, {
      method: req.method,
      headers,
      body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
    });
    const text = await upstream.text();
    if (step.forwardThen === 'drop') {
      req.socket.destroy();
    } else if (step.forwardThen === 503) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { code: 'store_unavailable', message: 'injected' } }));
    } else {
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      res.end(text);
    }
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.close = () => new Promise((resolve) => server.close(resolve));
  return proxy;
}
