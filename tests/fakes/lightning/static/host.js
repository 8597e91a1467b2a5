// The fake Lightning page: a few records, a utility bar with the softphone in an iframe,
// and the Salesforce side of Open CTI: it answers each method with the documented
// {success, returnValue, errors}, reports every call to its server (the test reads them
// there), and fires the click-to-dial and navigation listeners when someone clicks.

const API_VERSION = 57;
const API_TYPE = "opencti";

const config = await (await fetch("/lightning/config")).json();
const frame = document.querySelector("[data-testid=sf-softphone]");
const panel = document.querySelector("[data-testid=sf-panel]");
const utility = document.querySelector("[data-testid=sf-utility]");
const pageEl = document.querySelector("[data-testid=sf-page]");
const registered = new Set(); // listener methods the softphone registered
let clickToDial = false;
let current = null; // the record on screen

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "testid") node.dataset.testid = value;
    else if (key === "on") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const tail = (number) => String(number ?? "").replace(/\D/g, "").slice(-9);
const recordUrl = (r) => `/lightning/r/${r.object}/${r.id}/view`;

// -- the Salesforce UI -------------------------------------------------------------------

function showRecord(record, { notify = true } = {}) {
  current = record;
  pageEl.dataset.page = "record";
  pageEl.dataset.recordId = record.id;
  delete pageEl.dataset.search;
  const phones = record.phones.map(({ label, number }) =>
    el(
      "li",
      {},
      `${label}: `,
      clickToDial
        ? el("a", { href: "#", class: "phone", testid: "sf-phone", on: (e) => dialled(e, number) }, number)
        : el("span", { testid: "sf-phone-text" }, number),
    ),
  );
  pageEl.replaceChildren(
    el("p", { class: "kicker" }, record.object),
    el("h1", { testid: "sf-record-name" }, record.name),
    el("ul", { class: "phones" }, ...phones),
  );
  if (notify) {
    fire("onNavigationChange", {
      url: `${location.origin}${recordUrl(record)}`,
      recordId: record.id,
      recordName: record.name,
      objectType: record.object,
    });
  }
}

/** The records with a phone number ending like `number`'s. */
function byNumber(number) {
  const wanted = tail(number);
  return config.records.filter((r) => r.phones.some((p) => tail(p.number) === wanted));
}

/** Salesforce's search page: every record that matches (whatever the softphone layout
 *  searches), each a link; its navigation event carries only the page's URL. */
function showSearch(text) {
  current = null;
  pageEl.dataset.page = "search";
  pageEl.dataset.search = text;
  delete pageEl.dataset.recordId;
  const results = byNumber(text).map((r) =>
    el("li", {},
      el("a", { href: "#", testid: "sf-search-result", "data-record-id": r.id,
        on: (e) => { e.preventDefault(); showRecord(r); } }, r.name),
      ` · ${r.object}`),
  );
  pageEl.replaceChildren(
    el("h1", { testid: "sf-search-title" }, `Search results for “${text}”`),
    el("ul", { class: "results", testid: "sf-search-results" }, ...results),
  );
  fire("onNavigationChange", { url: `${location.origin}/lightning/search?q=${encodeURIComponent(text)}` });
}

function showNewModal(entityName, defaults) {
  pageEl.dataset.page = "new";
  delete pageEl.dataset.recordId;
  delete pageEl.dataset.search;
  const fields = Object.entries(defaults ?? {}).map(([k, v]) => el("li", {}, `${k}: ${v}`));
  pageEl.replaceChildren(el("h1", { testid: "sf-new-title" }, `New ${entityName}`), el("ul", {}, ...fields));
}

function dialled(event, number) {
  event.preventDefault();
  const r = current;
  fire("onClickToDial", { number, recordId: r.id, recordName: r.name, objectType: r.object });
}

function renderNav() {
  const nav = document.querySelector("[data-testid=sf-records]");
  nav.replaceChildren(
    ...config.records.map((r) =>
      el("a", { href: "#", testid: `sf-nav-${r.id}`, on: (e) => { e.preventDefault(); showRecord(r); } },
        `${r.name} (${r.object})`),
    ),
  );
}

function setPanel(visible) {
  panel.dataset.visible = String(visible);
}

// -- Open CTI, the Salesforce side -------------------------------------------------------

const ok = (returnValue = null) => ({ success: true, returnValue, errors: null });
const failed = (code, description) => ({ success: false, returnValue: null, errors: [{ code, description }] });

function search(args) {
  const found = byNumber(args.searchParams);
  const result = {};
  for (const r of found) result[r.id] = { Id: r.id, Name: r.name, RecordType: r.object };
  if (args.deferred) {
    result.SCREEN_POP_DATA = { type: "search", params: { searchString: args.searchParams } };
  } else if (found.length === 1) {
    showRecord(found[0]);
  } else if (found.length > 1) {
    showSearch(args.searchParams);
  } else {
    showNewModal("Contact", args.defaultFieldValues);
  }
  return ok(result);
}

/** A record of the org: one the page was given, else asked of the fake org's server. */
async function findRecord(id) {
  const known = config.records.find((r) => r.id === id);
  if (known || !id) return known ?? null;
  const response = await fetch(`/lightning/records/${encodeURIComponent(id)}`);
  if (!response.ok) return null;
  const record = await response.json();
  config.records.push(record);
  renderNav();
  return record;
}

async function screenPop(args) {
  if (args.type === "sobject") {
    const record = await findRecord(args.params?.recordId);
    if (!record) return failed("INVALID_PARAM", `No record ${args.params?.recordId}`);
    showRecord(record);
  } else if (args.type === "newRecord") {
    showNewModal(args.params?.entityName ?? "Record", args.params?.defaultFieldValues);
  } else if (args.type === "search") {
    if (String(args.params?.searchString ?? "").length < 3) return failed("INVALID_PARAM", "searchString");
    showSearch(args.params.searchString);
  }
  return ok(null);
}

const HANDLERS = {
  notifyInitializationComplete: () => ok(),
  enableClickToDial: () => { clickToDial = true; if (current) showRecord(current, { notify: false }); return ok(); },
  disableClickToDial: () => { clickToDial = false; if (current) showRecord(current, { notify: false }); return ok(); },
  setSoftphonePanelVisibility: (args) => { setPanel(Boolean(args.visible)); return ok(); },
  isSoftphonePanelVisible: () => ok({ visible: panel.dataset.visible === "true" }),
  setSoftphoneItemLabel: (args) => { utility.textContent = args.label; return ok(); },
  setSoftphoneItemIcon: () => ok(),
  getAppViewInfo: () =>
    ok(current ? { url: recordUrl(current), recordId: current.id, recordName: current.name, objectType: current.object } : { url: "/lightning/page/home" }),
  searchAndScreenPop: search,
  screenPop,
  refreshView: () => ok(),
  saveLog: () => ok("00T000000000001AAA"),
};

function reply(message, response) {
  frame.contentWindow.postMessage(
    { apiVersion: API_VERSION, apiType: API_TYPE, methodName: message.methodName, callId: message.callId,
      shouldExecuteCallback: true, response },
    config.softphone_origin,
  );
}

function fire(methodName, payload) {
  if (!registered.has(methodName)) return;
  frame.contentWindow.postMessage(
    { apiVersion: API_VERSION, apiType: API_TYPE, methodName, shouldExecuteListener: true, response: payload },
    config.softphone_origin,
  );
}

async function report(message) {
  await fetch("/lightning/calls", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(message),
  });
}

window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow || event.origin !== config.softphone_origin) return;
  const message = event.data;
  if (!message || message.apiType !== API_TYPE) return;
  report(message);
  if (message.apiVersion !== API_VERSION) return;
  if (message.isListenerRegistered) registered.add(message.methodName);
  const failure = config.failures[message.methodName];
  const handler = HANDLERS[message.methodName];
  let response;
  if (failure) response = failed(failure.code, failure.description);
  else if (handler) response = await handler(message.args ?? {});
  else response = failed("GENERIC_ERROR", `${message.methodName} is not supported here`);
  if (message.isCallbackRegistered) reply(message, response);
});

utility.addEventListener("click", () => setPanel(panel.dataset.visible !== "true"));
renderNav();
frame.src = config.softphone_url;
