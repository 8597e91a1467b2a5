// Screen pop on a call card: what the CRM lookup found for the caller, and what the agent
// can do about it (seed 002): one match → "Open", several → a chooser, none → "New".
// `popPlan` is pure; `CrmStrip` is the card's CRM section; `RecordForm` creates a record.

import { formatNumber, initials } from "./calls.js";
import { h, icon, setAttr } from "./ui.js";

const OBJECT_LABELS = { Contact: "Contact", Lead: "Lead", Account: "Account" };

const FIELD_LABELS = {
  phone: "Phone",
  mobile_phone: "Mobile",
  other_phone: "Other phone",
  Phone: "Phone",
  MobilePhone: "Mobile",
  OtherPhone: "Other phone",
  HomePhone: "Home phone",
  AssistantPhone: "Assistant",
};

/** "Mobile" for `mobile_phone` or `MobilePhone`; other names as given. */
export function fieldLabel(name) {
  if (!name) return "";
  return FIELD_LABELS[name] ?? name.replace(/_/g, " ");
}

/** "Contact", "Lead", "Account" (custom objects as named). */
export function objectLabel(name) {
  return OBJECT_LABELS[name] ?? String(name ?? "Record").replace(/__c$/, "");
}

/**
 * What the CRM part of a card shows: {kind, ...}. Kinds: hidden (internal calls, no CRM,
 * no number), pending, error, single ({record}), many ({matches}), none, chosen ({record}).
 * `choice` is the record the agent already chose for this call (or null).
 */
export function popPlan(card, choice = null) {
  if (!card || card.direction === "internal") return { kind: "hidden" };
  const crm = card.crm;
  const number = crm?.number ?? card.remote_number ?? null;
  if (choice) return { kind: "chosen", record: choice, number, matches: crm?.matches ?? [] };
  if (!crm || crm.status === "skipped") return { kind: "hidden" };
  if (crm.status === "pending") return { kind: "pending", number };
  if (crm.status === "error") return { kind: "error", number, message: crm.message ?? "" };
  const matches = crm.matches ?? [];
  if (matches.length === 1) return { kind: "single", record: matches[0], number, matches };
  if (matches.length > 1) return { kind: "many", matches, number };
  return { kind: "none", number };
}

/** A record as the CRM routes name it: {object, id, name, ...}. */
export function recordRef(record) {
  const ref = { object: record.object, id: record.id, name: record.name, url: record.url ?? null };
  for (const key of ["matched_field", "number", "account_name"]) {
    if (record[key]) ref[key] = record[key];
  }
  return ref;
}

function sameRecord(a, b) {
  return Boolean(a && b) && a.object === b.object && a.id === b.id;
}

function recordAvatar(record) {
  const letters = record.object === "Account" ? "" : initials(record.name);
  return h(
    "span",
    { class: "crm-avatar", data: { object: record.object }, attrs: { "aria-hidden": "true" } },
    letters || icon(record.object === "Account" ? "building" : "user"),
  );
}

/** "Contact · Mobile · 07700 900123" (the number as the CRM stores it). */
function matchMeta(record) {
  const parts = [objectLabel(record.object)];
  if (record.matched_field) parts.push(fieldLabel(record.matched_field));
  if (record.number) parts.push(record.number);
  return parts.join(" · ");
}

function button(text, { testid, primary = false, iconName = null, onClick }) {
  return h(
    "button",
    {
      class: `button button--small${primary ? " button--accent" : ""}`,
      type: "button",
      data: { testid },
      on: { click: onClick },
    },
    iconName ? icon(iconName) : null,
    h("span", { class: "button__text", text }),
  );
}

/**
 * The CRM section of one call card. `actions`: open(record), choose(record),
 * create(object, fields) → Promise<record>; `home` formats numbers.
 */
export class CrmStrip {
  constructor(actions) {
    this.actions = actions;
    this.el = h("div", { class: "crm", data: { testid: "crm" }, attrs: { hidden: "" } });
    this.key = null;
    this.form = null;
    this.changing = false;
  }

  /** Show `plan` (from popPlan); `live` is false once the call has ended. */
  update(plan, { live, home }) {
    const key = JSON.stringify([plan.kind, plan.record?.id, plan.matches?.length, plan.number,
      live, this.changing, Boolean(this.form)]);
    if (key === this.key) return;
    this.key = key;
    this.home = home;
    setAttr(this.el, "data-crm", plan.kind);
    this.el.hidden = plan.kind === "hidden";
    if (this.form && (plan.kind !== "none" || !live)) this.form = null;
    this.el.replaceChildren(...this.render(plan, live));
  }

  render(plan, live) {
    switch (plan.kind) {
      case "pending":
        return [this.line("crm__looking", "Looking up the caller…", true)];
      case "error":
        return [this.line("crm__problem", "The CRM could not be searched.", false)];
      case "single":
        return [this.single(plan.record, "Found in the CRM")];
      case "chosen":
        if (this.changing && live && plan.matches.length > 1) return this.chooser(plan, live);
        return [this.chosen(plan, live)];
      case "many":
        return this.chooser(plan, live);
      case "none":
        return this.none(plan, live);
      default:
        return [];
    }
  }

  line(cls, text, busy) {
    return h(
      "p",
      { class: `crm__line ${cls}` },
      busy
        ? h("span", { class: "spinner spinner--small", attrs: { "aria-hidden": "true" } })
        : null,
      text,
    );
  }

  recordBlock(record, label) {
    return h(
      "div",
      { class: "crm-record", data: { testid: "crm-record", recordId: record.id } },
      recordAvatar(record),
      h(
        "div",
        { class: "crm-record__text" },
        h("div", { class: "crm-record__label", text: label }),
        h("div", { class: "crm-record__name", text: record.name }),
        h("div", { class: "crm-record__meta", text: matchMeta(record) }),
      ),
    );
  }

  single(record, label) {
    return h(
      "div",
      { class: "crm__row crm__row--stack" },
      this.recordBlock(record, label),
      button(`Open ${record.name}`, {
        testid: "crm-open",
        primary: true,
        iconName: "open",
        onClick: () => this.actions.open(record),
      }),
    );
  }

  chosen(plan, live) {
    const change =
      live && plan.matches.length > 1
        ? button("Change", { testid: "crm-change", onClick: () => this.setChanging(true) })
        : null;
    return h(
      "div",
      { class: `crm__row${change ? " crm__row--stack" : ""}`, data: { testid: "crm-chosen" } },
      this.recordBlock(plan.record, live ? "Logging to" : "Logged to"),
      h(
        "div",
        { class: "crm__buttons" },
        change,
        button("Open", {
          testid: "crm-open",
          iconName: "open",
          onClick: () => this.actions.open(plan.record),
        }),
      ),
    );
  }

  setChanging(changing) {
    this.changing = changing;
    this.key = null;
    this.actions.refresh();
  }

  chooser(plan, live) {
    const count = plan.matches.length;
    const head = h(
      "p",
      { class: "crm__title" },
      h("strong", { text: `${count} records match` }),
      live ? " · choose the one for this call" : "",
    );
    const items = plan.matches.map((record) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            class: "crm-choice",
            type: "button",
            disabled: !live,
            data: { testid: "crm-choice", recordId: record.id, object: record.object },
            on: { click: () => this.pick(record) },
          },
          recordAvatar(record),
          h(
            "span",
            { class: "crm-choice__text" },
            h("span", { class: "crm-choice__name", text: record.name }),
            h("span", { class: "crm-choice__meta", text: matchMeta(record) }),
            record.account_name
              ? h("span", { class: "crm-choice__account", text: record.account_name })
              : null,
          ),
          h("span", { class: "crm-choice__go" }, icon("chevronRight")),
        ),
      ),
    );
    return [head, h("ul", { class: "crm-choices", data: { testid: "crm-chooser" } }, items)];
  }

  pick(record) {
    this.changing = false;
    this.actions.choose(record);
  }

  none(plan, live) {
    const number = formatNumber(plan.number, this.home);
    if (this.form) return [this.form.el];
    const row = h(
      "div",
      { class: "crm__row" },
      h(
        "p",
        { class: "crm__line crm__none" },
        h("strong", { text: "No CRM record" }),
        ` for ${number}`,
      ),
      live
        ? button("New record", {
            testid: "crm-new",
            iconName: "plus",
            onClick: () => this.openForm(plan.number),
          })
        : null,
    );
    return [row];
  }

  openForm(number) {
    this.form = new RecordForm({
      number,
      compact: true,
      submitText: "Create and link",
      onSubmit: (object, fields) => this.actions.create(object, fields),
      onCancel: () => {
        this.form = null;
        this.key = null;
        this.actions.refresh();
      },
    });
    this.key = null;
    this.actions.refresh();
    this.form.focus();
  }
}

const FORM_OBJECTS = ["Contact", "Lead"];

function input(name, label, { value = "", required = false, type = "text" } = {}) {
  return h(
    "label",
    { class: `field field--${name}` },
    h("span", { class: "field__label", text: required ? `${label} *` : label }),
    h("input", {
      class: "field__input",
      name,
      type,
      value,
      autocomplete: "off",
      attrs: { required: required ? "" : null, "data-testid": `field-${name}` },
    }),
  );
}

/**
 * A small "new Contact / Lead" form pre-filled with a number. `onSubmit(object, fields)`
 * returns a promise (its rejection's message is shown); `onCancel()` closes it.
 */
export class RecordForm {
  constructor({ number = "", onSubmit, onCancel, compact = false, submitText = "Create" }) {
    this.onSubmit = onSubmit;
    this.object = FORM_OBJECTS[0];
    this.message = h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true });
    this.kinds = h(
      "div",
      { class: "segmented", attrs: { role: "radiogroup", "aria-label": "Record type" } },
      FORM_OBJECTS.map((name) =>
        h("button", {
          class: "segmented__item",
          type: "button",
          text: objectLabel(name),
          data: { object: name, testid: `new-${name.toLowerCase()}` },
          attrs: { role: "radio", "aria-checked": String(name === this.object) },
          on: { click: () => this.setObject(name) },
        }),
      ),
    );
    this.company = input("company", "Company");
    this.submit = h("button", {
      class: "button button--small button--accent",
      type: "submit",
      text: submitText,
      data: { testid: "crm-create" },
    });
    this.el = h(
      "form",
      {
        class: `record-form${compact ? " record-form--compact" : ""}`,
        data: { testid: "crm-new-form" },
        attrs: { novalidate: "" },
        on: { submit: (event) => this.submitted(event) },
      },
      h("div", { class: "record-form__head" }, h("span", { text: "New" }), this.kinds),
      h(
        "div",
        { class: "record-form__grid" },
        input("first_name", "First name"),
        input("last_name", "Last name", { required: true }),
        this.company,
        input("phone", "Phone", { value: number ?? "", type: "tel" }),
      ),
      this.message,
      h(
        "div",
        { class: "record-form__actions" },
        h("button", {
          class: "button button--small",
          type: "button",
          text: "Cancel",
          on: { click: () => onCancel() },
        }),
        this.submit,
      ),
    );
    this.setObject(this.object);
  }

  setObject(name) {
    this.object = name;
    for (const item of this.kinds.children) {
      item.setAttribute("aria-checked", String(item.dataset.object === name));
    }
    this.company.hidden = name !== "Lead";
  }

  focus() {
    window.setTimeout(() => this.el.elements.first_name?.focus({ preventScroll: true }), 0);
  }

  fields() {
    const form = this.el.elements;
    const fields = {};
    for (const name of ["first_name", "last_name", "phone", "company"]) {
      const value = form[name].value.trim();
      if (name === "company" && this.object !== "Lead") continue;
      if (value) fields[name] = value;
    }
    return fields;
  }

  async submitted(event) {
    event.preventDefault();
    const fields = this.fields();
    if (!fields.last_name) {
      this.showError("Enter a last name.");
      this.el.elements.last_name.focus();
      return;
    }
    this.submit.disabled = true;
    this.showError(null);
    try {
      await this.onSubmit(this.object, fields);
    } catch (exc) {
      this.showError(exc.message || "The record could not be created.");
    } finally {
      this.submit.disabled = false;
    }
  }

  showError(message) {
    this.message.hidden = !message;
    this.message.textContent = message ?? "";
  }
}

export { sameRecord };
