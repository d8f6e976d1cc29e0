// Browser journeys through Keel's clinician web UI, against a running `keel demo`
// (scripts/test-browser.sh starts one). Headless Debian chromium driven by playwright-core;
// every page checked with axe-core (no serious or critical violation). Screenshots go to
// KEEL_SCREENSHOTS (default .test-output/browser).
//
// Environment: KEEL_UI (http://host:port), KEEL_TPP_FAULTS (the TPP-style simulator's
// /_admin/faults URL), KEEL_PATIENTS (NHS numbers, comma-separated: EMIS-style first, then a
// TPP-style one), CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const base = process.env.KEEL_UI;
const tppFaults = process.env.KEEL_TPP_FAULTS;
const [emisPatient, tppPatient] = (process.env.KEEL_PATIENTS || "").split(",");
const shots = process.env.KEEL_SCREENSHOTS || ".test-output/browser";
mkdirSync(shots, { recursive: true });
assert.ok(base && tppFaults && emisPatient && tppPatient, "KEEL_UI, KEEL_TPP_FAULTS and KEEL_PATIENTS are needed");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
let failures = 0;

async function accessible(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
  }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), [], `${name}: axe violations`);
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

async function signIn(context, role, organisationIndex) {
  const page = await context.newPage();
  await page.goto(`${base}/ui/`);
  await accessible(page, `sign-in`);
  await page.check(`#user-${role}`);
  const options = await page.locator("#organisation option").evaluateAll((os) => os.map((o) => o.value));
  await page.selectOption("#organisation", options[organisationIndex]);
  await page.click("button[type=submit]");
  return page;
}

async function journey(name, body) {
  const context = await browser.newContext();
  try {
    await body(context);
    console.log(`ok   ${name}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}\n${e.stack || e}`);
  } finally {
    await context.close();
  }
}

const sectionState = (page, section) =>
  page.locator(`section[data-section=${section}] [data-state]`).first().getAttribute("data-state");

await journey("a GP finds a patient by NHS number and sees the record with provenance and trends", async (context) => {
  const page = await signIn(context, "gp", 0);
  assert.match(page.url(), /\/ui\/search$/);
  await accessible(page, "gp-search");
  await page.fill("#nhs", emisPatient);
  await page.click("form:has(#nhs) button");
  await page.waitForSelector("[data-testid=search-result]");
  assert.match(await page.textContent("[data-testid=search-results]"), /Exact match/);
  await accessible(page, "gp-search-results");
  await page.click("[data-testid=search-result] a");
  await page.waitForSelector("[data-testid=demographics]");
  assert.match(await page.textContent("[data-testid=demographics]"), new RegExp(emisPatient.slice(0, 3)));
  const problems = await page.textContent("section[data-section=problems]");
  assert.match(problems, /via EMIS-style/);
  assert.match(problems, /retrieved/);
  assert.ok(await page.locator("svg#bp-chart").count() + await page.locator("svg#hba1c-chart").count() > 0, "a trend chart");
  await accessible(page, "gp-record");
});

await journey("a GP searches by demographics and is never taken to an uncertain match", async (context) => {
  const page = await signIn(context, "gp", 0);
  // The patient's details as PDS holds them, from a search by NHS number.
  await page.fill("#nhs", emisPatient);
  await page.click("form:has(#nhs) button");
  const cells = await page.locator("[data-testid=search-result] td").allTextContents();
  const words = cells[0].split(" ");
  const [given, family, birthdate] = [words[0], words[words.length - 1], cells[2]];

  // Both names and the date of birth, the last name misspelt: possible matches, best first,
  // each with its certainty; the user stays on the results and chooses.
  await page.goto(`${base}/ui/search`);
  await page.fill("#family", family.slice(0, -1) + (family.endsWith("X") ? "Y" : "X"));
  await page.fill("#given", given);
  await page.fill("#birthdate", birthdate);
  await page.click("form:has(#family) button");
  assert.match(page.url(), /\/ui\/search\?/);
  const results = await page.textContent("main");
  assert.match(results, /possible match|No patient found/);
  if (/possible match/.test(results)) {
    assert.match(results, /Nothing is opened for you/);
    assert.doesNotMatch(results, /Exact match/, "a misspelt name is not an exact match");
    assert.match(results, /Check details and open record/);
  }
  await accessible(page, "gp-search-demographics");

  // The same details spelt right find the patient.
  await page.fill("#family", family);
  await page.click("form:has(#family) button");
  assert.match(page.url(), /\/ui\/search\?/);
  assert.match(await page.textContent("[data-testid=search-results]"), new RegExp(emisPatient.slice(6)));

  // Nobody by these details.
  await page.fill("#family", "Zzzznotaname");
  await page.fill("#given", "Nobody");
  await page.fill("#birthdate", "1970-01-01");
  await page.click("form:has(#family) button");
  assert.match(await page.textContent("main"), /No patient found/);

  // What PDS needs is asked for, field by field, before it is asked.
  await page.fill("#given", "");
  await page.fill("#birthdate", "01/01/1970");
  await page.click("form:has(#family) button");
  const errors = await page.textContent(".nhsuk-error-summary");
  assert.match(errors, /both names, or one name with the gender and postcode/);
  assert.match(errors, /date of birth as YYYY-MM-DD/);
  await accessible(page, "gp-search-errors");
});

await journey("a receptionist sees demographics only, with the reason for each section", async (context) => {
  const page = await signIn(context, "receptionist", 0);
  await page.goto(`${base}/ui/patient/${emisPatient}`);
  await page.waitForSelector("[data-testid=demographics]");
  for (const section of ["problems", "medications", "allergies", "observations", "immunisations", "consultations"]) {
    assert.equal(await sectionState(page, section), "not-permitted", section);
  }
  assert.match(await page.textContent("section[data-section=problems]"), /Your role does not grant this function/);
  await accessible(page, "receptionist-record");
});

await journey("a pharmacist sees medications and allergies; problems are withheld from the role", async (context) => {
  const page = await signIn(context, "pharmacist", 0);
  await page.goto(`${base}/ui/patient/${emisPatient}`);
  await page.waitForSelector("[data-testid=demographics]");
  assert.notEqual(await sectionState(page, "medications"), "not-permitted");
  assert.equal(await sectionState(page, "problems"), "not-permitted");
  await accessible(page, "pharmacist-record");
});

await journey("a practice in outage shows its sections as unavailable, not empty", async (context) => {
  const put = await fetch(tppFaults, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ outage: true }) });
  assert.ok(put.ok, `outage switched on (${put.status})`);
  try {
    const page = await signIn(context, "nurse", 0);
    await page.goto(`${base}/ui/patient/${tppPatient}`);
    await page.waitForSelector("[data-testid=demographics]");
    const states = new Set();
    for (const section of ["problems", "medications", "allergies"]) states.add(await sectionState(page, section));
    // The practice did not answer at all: unavailable (not "failed", which is a section's
    // call failing at a practice that answered), never empty.
    assert.deepEqual([...states], ["unavailable"]);
    assert.match(await page.textContent("main"), /could not be reached/);
    await accessible(page, "nurse-record-practice-down");
  } finally {
    await fetch(`${tppFaults}/reset`, { method: "POST" });
  }
});

await journey("a GP outside the PCN is refused, then uses break-glass with a reason", async (context) => {
  const page = await context.newPage();
  await page.goto(`${base}/ui/`);
  await page.check("#user-gp");
  await page.selectOption("#organisation", "Y99990");
  await page.click("button[type=submit]");
  await page.goto(`${base}/ui/patient/${emisPatient}`);
  assert.match(await page.textContent("h1"), /cannot see/);
  await accessible(page, "break-glass-offered");
  await page.click("button.nhsuk-button--warning");
  assert.match(await page.textContent(".nhsuk-error-summary"), /why you need emergency access/);
  await accessible(page, "break-glass-reason-missing");
  await page.fill("#reason", "Patient collapsed at the centre; need medication history");
  await page.selectOption("#minutes", "30");
  await page.click("button.nhsuk-button--warning");
  await page.waitForSelector("[data-testid=demographics]");
  assert.match(await page.textContent("main"), /Break-glass access in force/);
  await accessible(page, "break-glass-record");
});

await journey("the information-governance lead sees who accessed which patient, when and why", async (context) => {
  const page = await signIn(context, "ig-lead", 0);
  assert.match(page.url(), /\/ui\/audit$/);
  const audit = await page.textContent("[data-testid=audit]");
  assert.match(audit, /ui patient record/);
  assert.match(audit, /BREAK-GLASS/);
  await accessible(page, "ig-audit");
  await page.goto(`${base}/ui/search`);
  assert.equal(await page.locator("[data-state=not-permitted]").count(), 1);
});

await journey("the practices page shows each practice's system, health and capability profile", async (context) => {
  const page = await signIn(context, "pcn-manager", 0);
  await page.goto(`${base}/ui/practices`);
  assert.equal(await page.locator("[data-testid=practices] tbody tr").count(), 5);
  const text = await page.textContent("[data-testid=practices]");
  assert.match(text, /EMIS-style/);
  assert.match(text, /TPP-style/);
  assert.match(text, /operations supported/);
  await accessible(page, "practices");
});

await browser.close();
if (failures > 0) {
  console.log(`${failures} journey(s) failed; screenshots in ${shots}`);
  process.exit(1);
}
console.log(`all journeys passed; screenshots in ${shots}`);
