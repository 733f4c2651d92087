#!/usr/bin/env node
// validate.mjs -- checks real HTTP answers against openapi.yaml.
//
//   node validate.mjs OPENAPI.yaml RECORDS.json
//
// RECORDS.json is an array of {method, path, status, content_type, body,
// etag} as a client received them (body decoded from any gzip; path is the
// raw request target).  Each is matched to its operation (path template,
// method; HEAD is GET), then to the response of its status code, then to
// the media type of its Content-Type, and its body is validated with ajv
// (JSON Schema 2020-12, the dialect of OpenAPI 3.1):
//   application/json      the body against the media type's schema;
//   application/x-ndjson  each line against the media type's x-item-schema;
//   other media types     only that the operation declares them.
// A status the operation does not declare, a media type it does not
// declare, a body where none is declared, or a path outside the contract
// answered with anything but the Error schema, is a failure too.
//
// Prints {"checked": N, "failures": [{"index", "request", "problem"}]} on
// standard output; exit 0 when it could check (failures are data), 2 on
// bad input.
import fs from 'node:fs';
import YAML from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';

const [specPath, recordsPath] = process.argv.slice(2);
if (!specPath || !recordsPath) {
  process.stderr.write('usage: validate.mjs OPENAPI.yaml RECORDS.json\n');
  process.exit(2);
}
const spec = YAML.parse(fs.readFileSync(specPath, 'utf8'));
const records = JSON.parse(fs.readFileSync(recordsPath, 'utf8'));
const ROOT = 'openapi.json';

// The whole document is one schema resource, so that every "#/components/..."
// reference inside an operation resolves against it; subschemas are then
// compiled by JSON pointer.  strict off: OpenAPI adds keywords (example,
// discriminator...) that are annotations here.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
ajv.addSchema({ ...spec, $id: ROOT });

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const validators = new Map();
function validatorAt(pointer) {
  if (!validators.has(pointer)) {
    const v = ajv.getSchema(ROOT + '#' + pointer);
    if (!v) throw new Error('no schema at ' + pointer);
    validators.set(pointer, v);
  }
  return validators.get(pointer);
}

// Follows a local $ref; returns [object, its JSON pointer].
function deref(obj, pointer) {
  while (obj && typeof obj.$ref === 'string' && obj.$ref.startsWith('#/')) {
    pointer = obj.$ref.slice(1);
    obj = pointer.split('/').slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((o, k) => (o ? o[k] : undefined), spec);
  }
  return [obj, pointer];
}

// Path templates as regular expressions: {ip} may hold an encoded slash
// (a CIDR block) and so takes anything; other parameters one segment.
const templates = Object.keys(spec.paths).map((t) => {
  const re = t.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
    .replace(/\{ip\}/g, '.+').replace(/\{[^}]+\}/g, '[^/]+');
  return { t, re: new RegExp('^' + re + '$'), literal: !t.includes('{') };
});
function findPath(path) {
  const exact = templates.find((x) => x.literal && x.t === path);
  return exact || templates.find((x) => !x.literal && x.re.test(path));
}

function describe(errors) {
  return (errors || []).slice(0, 5)
    .map((e) => `${e.instancePath || '(root)'} ${e.message}` +
      (e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''))
    .join('; ');
}

function checkJson(text, pointer, problems, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    problems.push(`${what}: not JSON (${e.message})`);
    return;
  }
  const v = validatorAt(pointer);
  if (!v(value)) problems.push(`${what}: ${describe(v.errors)}`);
}

const errorPointer = '/components/schemas/Error';
const etagPointer = '/components/headers/ETag/schema';

function check(r) {
  const problems = [];
  const path = String(r.path).split('?')[0];
  const method = String(r.method).toLowerCase() === 'head' ? 'get' : String(r.method).toLowerCase();
  const ctype = String(r.content_type || '').split(';')[0].trim().toLowerCase();
  const body = r.body || '';
  if (r.etag) {
    const v = validatorAt(etagPointer);
    if (!v(r.etag)) problems.push(`ETag ${JSON.stringify(r.etag)}: ${describe(v.errors)}`);
  }
  const tp = findPath(path);
  const op = tp && spec.paths[tp.t][method];
  if (!op) {
    // Outside the contract: only an error answer is right (405 or 404;
    // 400 for a path with a NUL byte, 401 and 413 before any routing).
    const expect = [tp ? 405 : 404, 400, 401, 413];
    if (!expect.includes(r.status) && method !== 'options')
      problems.push(`${tp ? 'method' : 'path'} not in openapi.yaml, yet status ${r.status}`);
    if (body && method !== 'options') {
      if (ctype !== 'application/json') problems.push(`content type ${ctype} for an error`);
      else checkJson(body, errorPointer, problems, 'error body');
    }
    return problems;
  }
  const opPointer = `/paths/${esc(tp.t)}/${method}`;
  let [resp, respPointer] = deref(op.responses[String(r.status)],
    `${opPointer}/responses/${r.status}`);
  if (!resp) {
    problems.push(`status ${r.status} is not declared for ${method.toUpperCase()} ${tp.t}`);
    return problems;
  }
  if (!resp.content) {
    if (body) problems.push(`a body where status ${r.status} declares none`);
    return problems;
  }
  if (!body && r.method.toUpperCase() === 'HEAD') return problems;
  const media = resp.content[ctype];
  if (!media) {
    problems.push(`content type "${ctype}" is not declared for status ${r.status}` +
      ` (declared: ${Object.keys(resp.content).join(', ')})`);
    return problems;
  }
  const mPointer = `${respPointer}/content/${esc(ctype)}`;
  if (ctype === 'application/json') {
    checkJson(body, `${mPointer}/schema`, problems, 'body');
  } else if (ctype === 'application/x-ndjson' && media['x-item-schema']) {
    const lines = body.split('\n').filter((l) => l.length);
    lines.forEach((l, i) => {
      if (problems.length < 5) checkJson(l, `${mPointer}/x-item-schema`, problems, `line ${i + 1}`);
    });
  }
  return problems;
}

const failures = [];
records.forEach((r, index) => {
  let problems;
  try {
    problems = check(r);
  } catch (e) {
    problems = [`validator: ${e.message}`];
  }
  for (const problem of problems)
    failures.push({ index, request: `${r.method} ${String(r.path).slice(0, 200)} -> ${r.status}`, problem });
});
process.stdout.write(JSON.stringify({ checked: records.length, failures }) + '\n');
