#!/usr/bin/env node
// FHIRPath oracle for crates/keel-fhir/tests/fhirpath_oracle.rs.
//
// Evaluates every R4 SearchParameter expression on every HL7 R4 example resource with
// FHIRPath.js (npm `fhirpath`, MIT; the HL7 project's JavaScript engine), independently of Keel's
// own evaluator, and prints one JSON object per (example file, search parameter) on stdout:
//
//   {"file":"Patient-example.json","resourceType":"Patient","code":"family","url":"...",
//    "expression":"Patient.name.family","resolve":false,"result":["Chalmers","Windsor"]}
//
// or, when FHIRPath.js cannot evaluate the expression, "error":"<message>" instead of "result".
//
// Usage: node scripts/fhirpath-oracle.mjs <examples package dir> [<node dir>]
//   <examples package dir>  .test-assets/hl7.fhir.r4.examples/package
//   <node dir>              where `fhirpath` is installed (default: $KEEL_TEST_ASSETS/node,
//                           else <repo>/.test-assets/node); scripts/fetch-test-assets.sh installs it.
//
// Jobs: every example file that is not a conformance resource, times every SearchParameter of
// Bundle-searchParams.json (same package) with an expression whose base is the file's
// resource type, `Resource`, or `DomainResource` for domain resources; composite and special
// parameters are skipped (Keel does not index them).
//
// resolve(): FHIRPath.js resolves references by fetching them from a FHIR server. Expressions
// that use resolve() are evaluated against a stub server that stands for "a server holding
// every resource a reference names": a read of `[base/]Type/id[/_history/v]` for an R4 resource
// type answers `{"resourceType":Type,"id":id}`, anything else is not found (and a canonical
// search finds nothing). Contained (`#id`) references FHIRPath.js resolves by itself. Such jobs
// carry "resolve":true.
//
// `as` on a collection: FHIRPath.js follows FHIRPath in raising an error when the left operand
// of `as` holds more than one item, but R4 search parameters use `(X as T)` as a filter over a
// collection (`Observation.component.value as Quantity`), which FHIR R5 spells `X.ofType(T)`.
// When FHIRPath.js raises that error the job is evaluated again with every `(X as T)` and
// `X.as(T)` rewritten to `X.ofType(T)`, and the job carries "rewritten":"<that expression>".
//
// Results are normalised to plain JSON: FHIRPath.js is run with resolveInternalTypes (its
// default), so dates and other FP types come back as strings and decimals as numbers.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FHIRPATH_VERSION = '5.2.2';

const SKIPPED_TYPES = new Set([
  'StructureDefinition', 'SearchParameter', 'ValueSet', 'CodeSystem', 'ConceptMap',
  'OperationDefinition', 'CapabilityStatement', 'ImplementationGuide', 'NamingSystem',
  'CompartmentDefinition', 'StructureMap', 'GraphDefinition', 'MessageDefinition',
  'TerminologyCapabilities',
]);

const STUB_SERVER = 'https://fhir.stub.invalid/r4';

function fail(message) {
  process.stderr.write(`fhirpath-oracle: ${message}\n`);
  process.exit(2);
}

const [pkgDir, nodeDirArg] = process.argv.slice(2);
if (!pkgDir) {
  fail('usage: node scripts/fhirpath-oracle.mjs <examples package dir> [<node dir>]');
}
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nodeDir = path.resolve(
  nodeDirArg || path.join(process.env.KEEL_TEST_ASSETS || path.join(repoRoot, '.test-assets'), 'node'));
const fetchHint = 'run scripts/fetch-test-assets.sh (it needs npm)';

const fhirpathPackageJson = path.join(nodeDir, 'node_modules', 'fhirpath', 'package.json');
if (!fs.existsSync(fhirpathPackageJson)) {
  fail(`fhirpath@${FHIRPATH_VERSION} is not installed in ${nodeDir}: ${fetchHint}`);
}
const installed = JSON.parse(fs.readFileSync(fhirpathPackageJson, 'utf8')).version;
if (installed !== FHIRPATH_VERSION) {
  fail(`${nodeDir} holds fhirpath@${installed}, not ${FHIRPATH_VERSION}: ${fetchHint}`);
}
if (!fs.existsSync(path.join(pkgDir, 'Bundle-searchParams.json'))) {
  fail(`${pkgDir} is not the hl7.fhir.r4.examples package (no Bundle-searchParams.json): ${fetchHint}`);
}

const require = createRequire(path.join(nodeDir, 'package.json'));
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');

function isResourceType(name) {
  const parent = r4.type2Parent[name];
  return parent === 'Resource' || parent === 'DomainResource';
}

// ------------------------------------------------------------------ the stub FHIR server

function stubResponse(status, body) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/fhir+json' },
  });
}

globalThis.fetch = async (input) => {
  const url = new URL(typeof input === 'string' ? input : input.url);
  if (url.search) {
    // A search by canonical url: nothing is found.
    return stubResponse(200, { resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] });
  }
  const segments = url.pathname.split('/').filter((s) => s !== '');
  const n = segments.length;
  const [type, id] = n >= 4 && segments[n - 2] === '_history'
    ? [segments[n - 4], segments[n - 3]]
    : [segments[n - 2], segments[n - 1]];
  if (type && id && isResourceType(type)) {
    return stubResponse(200, { resourceType: type, id: decodeURIComponent(id) });
  }
  return stubResponse(404, {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'not-found' }],
  });
};

// ------------------------------------------------------------------ jobs

const searchParams = JSON.parse(fs.readFileSync(path.join(pkgDir, 'Bundle-searchParams.json'), 'utf8'))
  .entry.map((e) => e.resource)
  .filter((sp) => sp && sp.expression && sp.type !== 'composite' && sp.type !== 'special');

function paramsFor(resourceType) {
  const domain = r4.type2Parent[resourceType] === 'DomainResource';
  return searchParams
    .filter((sp) => sp.base.includes(resourceType) || sp.base.includes('Resource')
      || (domain && sp.base.includes('DomainResource')))
    .sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
}

const compiled = new Map();
function compiledExpression(expression) {
  let fn = compiled.get(expression);
  if (!fn) {
    const usesResolve = /\bresolve\s*\(/.test(expression);
    const options = usesResolve ? { async: true, fhirServerUrl: STUB_SERVER } : {};
    try {
      const evaluate = fhirpath.compile(expression, r4, options);
      fn = { usesResolve, evaluate };
    } catch (e) {
      fn = { usesResolve, error: `compile: ${e.message}` };
    }
    compiled.set(expression, fn);
  }
  return fn;
}

const SINGLETON_AS = /Expected singleton on left side of 'as'/;

/** `(X as T)` and `X.as(T)` -> `X.ofType(T)`, as FHIR R5 writes these expressions. */
function asToOfType(expression) {
  return expression
    .replace(/\(([^()]+?)\s+as\s+([A-Za-z]+)\)/g, '$1.ofType($2)')
    .replace(/\.as\(\s*([A-Za-z]+)\s*\)/g, '.ofType($1)');
}

async function run(expression, resource) {
  const { evaluate, error } = compiledExpression(expression);
  if (error) {
    throw new Error(error);
  }
  return (await evaluate(resource)).map(normalise);
}

function normalise(item) {
  // With resolveInternalTypes the items are plain JSON already; a round trip through
  // JSON.stringify turns anything else (FP types, Dates) into its JSON form.
  return item === undefined ? null : JSON.parse(JSON.stringify(item));
}

const files = fs.readdirSync(pkgDir)
  .filter((f) => f.endsWith('.json') && f !== 'package.json' && f !== '.index.json')
  .sort();

const out = [];
let jobs = 0;
for (const file of files) {
  // The package names its files `<resourceType>-<id>.json`: conformance resources (most of
  // its 190 MB) are skipped without parsing them. Every other file's resourceType is read.
  if (SKIPPED_TYPES.has(file.split('-')[0])) {
    continue;
  }
  const text = fs.readFileSync(path.join(pkgDir, file), 'utf8');
  let resource;
  try {
    resource = JSON.parse(text);
  } catch (e) {
    fail(`${file}: not JSON: ${e.message}`);
  }
  const resourceType = resource.resourceType;
  if (typeof resourceType !== 'string' || SKIPPED_TYPES.has(resourceType)) {
    continue;
  }
  const asParsed = JSON.stringify(resource);
  for (const sp of paramsFor(resourceType)) {
    const job = {
      file, resourceType, code: sp.code, url: sp.url, expression: sp.expression,
      resolve: compiledExpression(sp.expression).usesResolve,
    };
    try {
      job.result = await run(sp.expression, resource);
    } catch (e) {
      const message = String(e && e.message ? e.message : e);
      const rewritten = asToOfType(sp.expression);
      if (SINGLETON_AS.test(message) && rewritten !== sp.expression) {
        job.rewritten = rewritten;
        try {
          job.result = await run(rewritten, resource);
        } catch (e2) {
          job.error = String(e2 && e2.message ? e2.message : e2);
        }
      } else {
        job.error = message;
      }
    }
    out.push(JSON.stringify(job));
    jobs += 1;
    if (out.length >= 1000) {
      process.stdout.write(out.join('\n') + '\n');
      out.length = 0;
    }
  }
  // One parse serves every expression of a file; make sure FHIRPath.js left it as it was.
  if (JSON.stringify(resource) !== asParsed) {
    fail(`${file}: FHIRPath.js changed the resource it evaluated`);
  }
}
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
process.stderr.write(`fhirpath-oracle: ${jobs} jobs evaluated with fhirpath@${FHIRPATH_VERSION}\n`);
