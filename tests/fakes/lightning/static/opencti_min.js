/*
 * A stand-in for Salesforce's Lightning Open CTI library (opencti_min.js, API 57), served by
 * the fake Lightning host at the library's path. Written for ctibridge's tests from the
 * behaviour described in docs (salesforce reference §2.2 and its addendum); it is not
 * Salesforce's code. It keeps the rules an adapter can trip over:
 *
 * - initialisation reads `mode` and `sfdcIframeOrigin` from location.search, split by hand
 *   and decoded with decodeURIComponent (a repeated key becomes a list and fails); the origin
 *   must be a Salesforce origin (or one the fake host trusts, see TRUSTED below) and start
 *   with this page's own protocol; otherwise it throws a *string* and installs no listener;
 * - every call is posted to `parent` (never `top`), targeted at sfdcIframeOrigin, as
 *   {methodName, callId, apiVersion: 57, apiType: "opencti", isCallbackRegistered,
 *   isListenerRegistered, args}, with one callId counter from 0 for all methods;
 * - replies count only with apiVersion === 57 (a number), apiType === "opencti" and
 *   event.origin === sfdcIframeOrigin; a callback runs once, listeners on every event;
 * - methods take exactly one non-empty object; some need `callback`, `listener` or `value`.
 */
(function () {
  "use strict";

  var API_VERSION = 57;
  var API_TYPE = "opencti";
  /* The fake host's origin, written in when it serves this file (tests only). */
  var TRUSTED = /*@trusted-origins@*/ [];
  var SALESFORCE_SUFFIX =
    /^https?:\/\/[\w.-]+(\.(my-)?visualforce\.com|\.force\.com|\.my-lightning\.com|\.(my-)?salesforce\.com|\.(salesforce|crmforce)\.(mil|ms))(:\d+)?$/;
  var FAILED =
    "Failed to initialize Open CTI. Ensure that it is loaded from the right frame with correct URL parameters";

  var origin = null;
  var nextCallId = 0;
  var callbacks = {};
  var listeners = {};
  var channels = new Map();

  function decoded(value) {
    return value ? decodeURIComponent(value) : null;
  }

  function parseQuery(search) {
    var out = {};
    var text = typeof search === "string" ? search.replace(/^\?/, "") : "";
    if (!text) return out;
    text.split("&").forEach(function (pair) {
      var parts = pair.split("=");
      var key = parts[0];
      if (!key) return;
      var value = decoded(parts[1]);
      if (!(key in out)) out[key] = value;
      else if (Array.isArray(out[key])) out[key].push(value);
      else out[key] = [out[key], value];
    });
    return out;
  }

  function accepted(candidate) {
    if (typeof candidate !== "string") return false;
    var known = SALESFORCE_SUFFIX.test(candidate) || TRUSTED.indexOf(candidate) >= 0;
    return known && candidate.indexOf(window.location.protocol) === 0;
  }

  function listenerKey(method, eventName) {
    return eventName ? method + "/" + eventName : method;
  }

  function send(method, args, callback, listener) {
    var message = {
      methodName: method,
      callId: nextCallId++,
      apiVersion: API_VERSION,
      apiType: API_TYPE,
      isCallbackRegistered: false,
      isListenerRegistered: false,
      args: args,
    };
    if (typeof callback === "function") {
      callbacks[method + "#" + message.callId] = callback;
      message.isCallbackRegistered = true;
    }
    if (typeof listener === "function") {
      var key = listenerKey(method, args.eventName);
      (listeners[key] = listeners[key] || []).push(listener);
      message.isListenerRegistered = true;
    }
    parent.postMessage(message, origin);
  }

  function receive(event) {
    var data = event.data;
    if (!data || data.apiVersion !== API_VERSION || data.apiType !== API_TYPE) return;
    if (event.origin !== origin) return;
    if (data.shouldExecuteCallback === true) {
      var key = data.methodName + "#" + data.callId;
      var callback = callbacks[key];
      delete callbacks[key];
      if (callback) callback(data.response);
    }
    if (data.shouldExecuteListener === true) {
      (listeners[listenerKey(data.methodName, data.eventName)] || []).slice().forEach(function (fn) {
        fn(data.response);
      });
    }
  }

  function oneObject(args, optional) {
    if (optional && args.length === 0) return;
    var arg = args[0];
    if (args.length !== 1 || typeof arg !== "object" || arg === null || !Object.keys(arg).length) {
      throw new Error("Must pass in only one object which holds arguments to this API method call.");
    }
  }

  function need(arg, name, what) {
    if (!arg || typeof arg[name] !== what) {
      throw new Error("Missing the required argument `" + name + "`!");
    }
  }

  function callbackOf(arg) {
    return arg ? arg.callback : undefined;
  }

  /* A plain method: validate, then send the named fields of the argument. */
  function simple(method, fields, optional) {
    return function (arg) {
      oneObject(arguments, optional);
      var args = {};
      (fields || []).forEach(function (field) {
        args[field] = arg[field];
      });
      send(method, args, callbackOf(arg));
    };
  }

  function needingCallback(method) {
    return function (arg) {
      oneObject(arguments);
      need(arg, "callback", "function");
      send(method, {}, arg.callback);
    };
  }

  function listenerMethod(method) {
    return function (arg) {
      oneObject(arguments);
      need(arg, "listener", "function");
      send(method, {}, undefined, arg.listener);
    };
  }

  var api = {
    SCREENPOP_TYPE: {
      URL: "url",
      SOBJECT: "sobject",
      OBJECTHOME: "objecthome",
      LIST: "list",
      SEARCH: "search",
      NEW_RECORD_MODAL: "newRecord",
      FLOW: "flow",
    },
    CALL_TYPE: { INBOUND: "inbound", OUTBOUND: "outbound", INTERNAL: "internal" },

    initialize: function () {
      var query = parseQuery(window.location.search);
      if (!query.mode || !accepted(query.sfdcIframeOrigin)) throw FAILED;
      origin = query.sfdcIframeOrigin;
      window.addEventListener("message", receive, false);
    },

    notifyInitializationComplete: function (arg) {
      send("notifyInitializationComplete", {}, callbackOf(arg));
    },
    screenPop: simple("screenPop", ["type", "params"]),
    searchAndScreenPop: simple("searchAndScreenPop", [
      "searchParams",
      "callType",
      "queryParams",
      "defaultFieldValues",
      "deferred",
      "params",
    ]),
    saveLog: function (arg) {
      oneObject(arguments);
      if (!arg || typeof arg.value !== "object" || arg.value === null) {
        throw new Error("Missing the required argument `value object`!");
      }
      send("saveLog", { object: arg.value }, callbackOf(arg));
    },
    runApex: simple("runApex", ["apexClass", "methodName", "methodParams"]),
    refreshView: simple("refreshView", [], true),
    enableClickToDial: simple("enableClickToDial", [], true),
    disableClickToDial: simple("disableClickToDial", [], true),
    onClickToDial: listenerMethod("onClickToDial"),
    onNavigationChange: listenerMethod("onNavigationChange"),
    getAppViewInfo: needingCallback("getAppViewInfo"),
    getCallCenterSettings: needingCallback("getCallCenterSettings"),
    getSoftphoneLayout: needingCallback("getSoftphoneLayout"),
    isSoftphonePanelVisible: needingCallback("isSoftphonePanelVisible"),
    setSoftphonePanelVisibility: simple("setSoftphonePanelVisibility", ["visible"]),
    setSoftphonePanelHeight: simple("setSoftphonePanelHeight", ["heightPX"]),
    setSoftphonePanelWidth: simple("setSoftphonePanelWidth", ["widthPX"]),
    setSoftphoneItemLabel: simple("setSoftphoneItemLabel", ["label"]),
    setSoftphonePanelLabel: simple("setSoftphonePanelLabel", ["label"]),
    setSoftphoneItemIcon: simple("setSoftphoneItemIcon", ["key"]),
    setSoftphonePanelIcon: simple("setSoftphonePanelIcon", ["key"]),

    subscribe: function (arg) {
      oneObject(arguments);
      need(arg, "listener", "function");
      need(arg, "channelName", "string");
      var subscription = Object.freeze({});
      channels.set(subscription, { channel: arg.channelName, listener: arg.listener });
      var args = { eventName: arg.channelName, subscription: subscription };
      send("subscribe", args, callbackOf(arg), arg.listener);
    },
    unsubscribe: function (arg) {
      oneObject(arguments);
      var entry = arg && channels.get(arg.subscription);
      if (!entry) return;
      channels.delete(arg.subscription);
      var key = listenerKey("subscribe", entry.channel);
      listeners[key] = (listeners[key] || []).filter(function (fn) {
        return fn !== entry.listener;
      });
      if (!listeners[key].length) send("unsubscribe", { eventName: entry.channel }, callbackOf(arg));
    },
    publish: function (arg) {
      oneObject(arguments);
      need(arg, "channelName", "string");
      var message = arg.message === undefined ? undefined : JSON.parse(JSON.stringify(arg.message));
      send("publish", { eventName: arg.channelName, message: message }, callbackOf(arg));
    },
    hvs: {
      onWorkStart: listenerMethod("onWorkStart"),
      completeWork: simple("completeWork", ["workId", "attributes"]),
    },
  };

  window.sforce = window.sforce || {};
  window.sforce.opencti = api;
  api.initialize();
})();
